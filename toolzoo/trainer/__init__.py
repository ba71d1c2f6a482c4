"""Trainers: losses of the GRPO family, SFT and GRPO steps, tiny from-scratch models, a local
OpenAI-compatible model server. Needs the ``train`` extra (transformers, tokenizers)."""
