"""Steps 5 and 6: commitments, funding, loans and notes, bank offers, auto-invest, contracts."""
