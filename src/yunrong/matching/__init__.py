"""Step 4: investors\x27 preferences, suitability, recommendations and push."""
