"""Repository tools (not shipped): make lock uses hash_requirements."""
