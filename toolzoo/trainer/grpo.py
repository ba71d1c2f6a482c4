"""The core GRPO-family update step, for an outer loop that produces rollouts.

A rollout is one token sequence with a mask over what the policy generated (a single
completion, or a whole multi-turn episode stitched from ``Message.tokens``) and a reward;
the G rollouts of one group are adjacent. ``grpo_step`` computes advantages, per-token
log-probs (one padded batch), the loss of ``losses.policy_loss`` and one optimizer step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict

from toolzoo.core import Message, ToolSpecView
from toolzoo.trainer.batching import pad_right, token_logprobs
from toolzoo.trainer.data import sequence_from_tokens, stitch_sampled, tokenize_conversation
from toolzoo.trainer.losses import (
    LossType, dynamic_sampling_mask, group_advantages, micro_batch_share, policy_loss,
)


class Rollout(BaseModel):
    input_ids: list[int]
    mask: list[int]  # 1 on tokens the policy produced
    reward: float
    logprobs: list[float] | None = None  # sampling log-probs aligned with input_ids

    @classmethod
    def from_completion(cls, prompt_ids: list[int], completion_ids: list[int], reward: float,
                        logprobs: list[float] | None = None) -> Rollout:
        return cls(
            input_ids=[*prompt_ids, *completion_ids],
            mask=[0] * len(prompt_ids) + [1] * len(completion_ids),
            reward=reward,
            logprobs=None if logprobs is None else [0.0] * len(prompt_ids) + list(logprobs),
        )

    @classmethod
    def from_messages(cls, messages: list[Message], reward: float, tokenizer=None,
                      tools: list[ToolSpecView] | None = None) -> Rollout:
        """A multi-turn episode: the sampled ids when every assistant turn carries them,
        else a re-rendering through the chat template (needs ``tokenizer``)."""
        seq = sequence_from_tokens(messages)
        if seq is None and tokenizer is not None:  # sampled ids, prompts re-rendered by the sampler
            seq = stitch_sampled(messages, tokenizer, tools)
        if seq is None:
            if tokenizer is None:
                raise ValueError("messages lack token ids; pass the tokenizer to re-render them")
            seq = tokenize_conversation(tokenizer, messages, tools)
        return cls(input_ids=seq.input_ids, mask=seq.assistant_mask, reward=reward,
                   logprobs=seq.logprobs)


class GRPOConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    loss_type: LossType = "grpo"
    group_size: int = 4
    eps_low: float = 0.2
    eps_high: float | None = None  # DAPO: 0.28
    beta: float = 0.0  # KL weight (needs a reference model)
    temperature: float = 1.0  # the sampling temperature; log-probs are recomputed at it
    normalize_std: bool | None = None  # None: True except for dr_grpo
    max_completion_length: int | None = None  # dr_grpo's normaliser; None: the padded width
    dynamic_sampling: bool = False  # DAPO: drop groups whose rewards are all equal
    old_logprobs: Literal["recompute", "sampled"] = "recompute"
    max_grad_norm: float | None = 1.0
    micro_batch: int | None = None  # sequences per forward/backward (gradient accumulation); None: all
    precision: Literal["fp32", "bf16", "auto"] = "fp32"  # bf16 autocast of the forward (auto: CUDA with bf16)
    tis_cap: float | None = None  # truncated IS weight min(pi/mu, cap) on sampler/learner mismatch


class StepStats(BaseModel):
    loss: float = 0.0
    reward_mean: float
    reward_std: float
    groups_kept: int
    tokens: int = 0
    kl: float = 0.0
    clip_fraction: float = 0.0
    grad_norm: float = 0.0  # total gradient norm before clipping
    skipped: bool = False  # nothing left after dynamic sampling
    tis_weight: float | None = None  # mean truncated-IS weight (tis_cap set)


def grpo_step(model, optimizer, rollouts: Sequence[Rollout], cfg: GRPOConfig, *,
              pad_id: int = 0, ref_model=None) -> StepStats:
    """One update on ``len(rollouts) / group_size`` groups. With ``old_logprobs="recompute"``
    (one update per batch, TRL's default) the old policy is the current one, detached, so the
    ratio is 1 and only its gradient matters; ``"sampled"`` uses the rollouts' own log-probs
    (off-policy engines such as vLLM)."""
    g = cfg.group_size
    if len(rollouts) % g:
        raise ValueError(f"{len(rollouts)} rollouts do not form groups of {g}")
    rewards = torch.tensor([r.reward for r in rollouts], dtype=torch.float)
    normalize = cfg.normalize_std if cfg.normalize_std is not None else cfg.loss_type != "dr_grpo"
    adv = group_advantages(rewards, g, normalize_std=normalize)
    keep = dynamic_sampling_mask(rewards, g) if cfg.dynamic_sampling else torch.ones(len(rollouts), dtype=torch.bool)
    stats = dict(reward_mean=rewards.mean().item(), reward_std=rewards.std().item() if len(rollouts) > 1 else 0.0,
                 groups_kept=int(keep.sum().item()) // g)
    if not keep.any():
        return StepStats(**stats, skipped=True)
    chosen = [r for r, k in zip(rollouts, keep.tolist()) if k]
    adv = adv[keep]

    device = next(model.parameters()).device
    n = len(chosen)
    micro = cfg.micro_batch or n
    # normalisers of the whole batch, so the accumulated gradient equals the one-batch gradient
    width = max(len(r.input_ids) for r in chosen) - 1
    total_tokens = float(sum(sum(r.mask[1:]) for r in chosen))
    max_len = cfg.max_completion_length or width
    eps_high = cfg.eps_low if cfg.eps_high is None else cfg.eps_high
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss_sum, clipped_sum, kl_sum, is_sum, token_sum = 0.0, 0.0, 0.0, 0.0, 0.0
    for lo in range(0, n, micro):
        part = chosen[lo:lo + micro]
        ids = pad_right([r.input_ids for r in part], pad_id, torch.long).to(device)
        attn = pad_right([[1] * len(r.input_ids) for r in part], 0, torch.long).to(device)
        mask = pad_right([r.mask for r in part], 0, torch.float).to(device)[:, 1:]
        logp = token_logprobs(model, ids, attn, cfg.temperature, precision=cfg.precision)
        sampled = None
        if all(r.logprobs is not None for r in part):
            sampled = pad_right([r.logprobs for r in part], 0.0, torch.float).to(device)[:, 1:]
        old = sampled if cfg.old_logprobs == "sampled" and sampled is not None else logp.detach()
        ref = None
        if cfg.beta != 0.0:
            if ref_model is None:
                raise ValueError("beta != 0 needs ref_model")
            with torch.no_grad():
                ref = token_logprobs(ref_model, ids, attn, cfg.temperature, precision=cfg.precision)
        per_seq_adv = adv[lo:lo + micro].to(device)
        weight = None
        if cfg.tis_cap is not None and sampled is not None and cfg.old_logprobs == "recompute":
            # truncated importance sampling (sampler -> learner mismatch): min(pi_old / mu, C)
            weight = torch.exp(logp.detach() - sampled).clamp(max=cfg.tis_cap) * mask
            is_sum += float((weight * mask).sum())
        loss = policy_loss(
            logp, old, per_seq_adv, mask, loss_type=cfg.loss_type, eps_low=cfg.eps_low,
            eps_high=cfg.eps_high, ref_logp=ref, beta=cfg.beta, max_completion_length=max_len,
            token_weight=weight,
        )
        # each micro-batch's aggregate, rescaled to its share of the whole batch's normaliser
        share = micro_batch_share(cfg.loss_type, mask, n, total_tokens)
        (loss * share).backward()
        loss_sum += float(loss.detach()) * share
        with torch.no_grad():
            ratio = torch.exp(logp.detach() - old)
            clipped_sum += float((((ratio < 1 - cfg.eps_low) | (ratio > 1 + eps_high)).float() * mask).sum())
            if ref is not None:
                d = ref - logp.detach()
                kl_sum += float(((torch.exp(d) - d - 1) * mask).sum())
            token_sum += float(mask.sum())
    # the total gradient norm before clipping (an infinite bound clips nothing)
    stats["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(
        [p for p in model.parameters() if p.requires_grad], cfg.max_grad_norm or float("inf")))
    optimizer.step()
    t = max(token_sum, 1.0)
    stats["clip_fraction"] = clipped_sum / t
    if cfg.beta != 0.0:
        stats["kl"] = kl_sum / t
    if cfg.tis_cap is not None:
        stats["tis_weight"] = is_sum / t
    return StepStats(**stats, loss=loss_sum, tokens=int(token_sum))
