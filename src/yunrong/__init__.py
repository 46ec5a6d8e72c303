"""Yunrong (云融): a government-supervised cloud platform for SME financing."""

__version__ = "0.1.0"
