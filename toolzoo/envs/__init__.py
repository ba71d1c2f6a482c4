"""Task generation, user simulators, the episode loop, the gymnasium Env and the run driver."""
