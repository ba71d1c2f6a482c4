"""Policies that act in episodes: scripted baselines, OpenAI-compatible endpoints, local models."""
