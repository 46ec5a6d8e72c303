"""Step 1: financing demands and their product types."""
