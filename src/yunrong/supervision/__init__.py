"""Supervision: the hash-chained audit log (later: policy profiles, monitoring, reports)."""
