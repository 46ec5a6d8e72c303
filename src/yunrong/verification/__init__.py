"""Steps 2–3: service orders to agencies, signed attestations and the shared credit file."""
