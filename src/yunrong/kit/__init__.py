"""Framework-free building blocks: money, ids, clock, errors, pagination."""
