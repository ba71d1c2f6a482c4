"""Judges: verifiable checks on final state and answers, and rubric judges."""
