"""Organisations, users, roles, sessions, tokens, API keys and the permission matrix."""
