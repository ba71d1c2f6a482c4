"""The trainer's optimizer and learning-rate schedule, shared by the local loop and the Ray
learner so both step the same way: AdamW without weight decay, a linear warm-up, then a
constant rate or a cosine decay to 10% of it."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch


def lr_factor(warmup: int, cosine: bool, steps: int) -> Callable[[int], float]:
    """The multiplier of the base rate at scheduler step ``i`` (a ``LambdaLR`` lambda)."""

    def factor(i: int) -> float:
        if i < warmup:
            return (i + 1) / warmup
        if not cosine:
            return 1.0
        done = min(1.0, (i - warmup) / max(1, steps - warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done))  # cosine to 10% of lr

    return factor


def make_optimizer(params: Iterable[torch.nn.Parameter], lr: float, warmup: int, cosine: bool,
                   steps: int) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """(optimizer, scheduler) for one phase of ``steps`` steps at base rate ``lr``."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(warmup, cosine, steps))
