"""Padding token sequences into tensors and computing per-token log-probs under a model."""

from __future__ import annotations

import torch


def pad_right(rows: list[list[int]] | list[list[float]], value, dtype) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=dtype)
    return out


def token_logprobs(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """(B, L-1): log p(input_ids[:, t+1] | input_ids[:, :t+1]) at ``temperature``. Right
    padding, so positions 0..n-1 of every row are its real tokens."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[:, :-1, :]
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    targets = input_ids[:, 1:]
    # log_softmax + gather without materialising a second (B, L, V) tensor for the gradient
    return -torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none"
    ).view(targets.shape)
