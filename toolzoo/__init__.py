"""toolzoo: an agentic-RL environment and sandbox harness."""

__version__ = "0.1.0"
