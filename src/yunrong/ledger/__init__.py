"""The double-entry ledger: the only code that writes money."""
