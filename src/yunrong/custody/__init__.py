"""The custodian bank: segregated escrow, bank instructions and callbacks, statements, reconciliation."""
