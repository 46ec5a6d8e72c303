"""Parties: enterprises, investors, agencies, banks and the regulator (pure rules live here)."""
