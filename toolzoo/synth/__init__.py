"""Domain synthesis: the offline procedural generator, LLM synthesis with repair, validation."""
