"""Supervised fine-tuning on tokenised conversations with the assistant-only mask."""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from pydantic import BaseModel

from toolzoo.core import Message, ToolSpecView
from toolzoo.trainer.batching import pad_right, token_logprobs
from toolzoo.trainer.data import TokenizedConversation, tokenize_conversation


class SFTConfig(BaseModel):
    steps: int = 100
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    warmup_steps: int = 10
    cosine: bool = True
    seed: int = 0


def sft_loss(model, seqs: Sequence[TokenizedConversation], pad_id: int, *, normalizer: float | None = None,
             precision: str = "fp32") -> torch.Tensor:
    """Mean negative log-likelihood over the assistant tokens of the batch (divided by
    ``normalizer`` instead when given: a micro-batch's share of a larger batch)."""
    device = next(model.parameters()).device
    ids = pad_right([s.input_ids for s in seqs], pad_id, torch.long).to(device)
    attn = pad_right([[1] * len(s.input_ids) for s in seqs], 0, torch.long).to(device)
    mask = pad_right([s.assistant_mask for s in seqs], 0, torch.float).to(device)[:, 1:]
    logp = token_logprobs(model, ids, attn, precision=precision)
    denom = mask.sum().clamp(min=1.0) if normalizer is None else normalizer
    return -(logp * mask).sum() / denom


def sft_step(model, optimizer, seqs: Sequence[TokenizedConversation], pad_id: int,
             max_grad_norm: float | None = 1.0, *, micro_batch: int | None = None,
             precision: str = "fp32") -> float:
    """One optimizer step on one batch (in micro-batches of ``micro_batch`` sequences with
    gradient accumulation: the same gradient); returns the loss before the step."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    total = float(max(1, sum(sum(s.assistant_mask[1:]) for s in seqs)))
    micro = micro_batch or len(seqs)
    loss_sum = 0.0
    for lo in range(0, len(seqs), micro):
        loss = sft_loss(model, seqs[lo:lo + micro], pad_id, normalizer=total, precision=precision)
        loss.backward()
        loss_sum += float(loss.detach())
    if max_grad_norm:
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], max_grad_norm)
    optimizer.step()
    return loss_sum


def make_optimizer(model, cfg: SFTConfig):
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if not cfg.cosine:
            return 1.0
        done = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1 + torch.cos(torch.tensor(torch.pi * min(1.0, done))).item())

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_sft(
    model, tokenizer, conversations: Sequence[tuple[list[Message], list[ToolSpecView]]],
    cfg: SFTConfig | None = None, on_step=None,
) -> list[float]:
    """SFT over ``conversations`` (messages, tools) for ``cfg.steps`` steps of random batches;
    returns the per-step losses. ``on_step(step, loss)`` is called after each step."""
    cfg = cfg or SFTConfig()
    seqs = [tokenize_conversation(tokenizer, m, t) for m, t in conversations]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    opt, sched = make_optimizer(model, cfg)
    rng = random.Random(cfg.seed)
    losses = []
    for step in range(cfg.steps):
        batch = rng.sample(seqs, min(cfg.batch_size, len(seqs)))
        losses.append(sft_step(model, opt, batch, pad_id, cfg.max_grad_norm))
        sched.step()
        if on_step:
            on_step(step, losses[-1])
    return losses
