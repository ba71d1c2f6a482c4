"""The GRPO family's losses as plain functions on tensors.

Definitions follow the papers and TRL 1.16's ``GRPOTrainer._compute_loss`` (checked against
its source): GRPO (DeepSeekMath, arXiv 2402.03300), Dr. GRPO (arXiv 2503.20783), DAPO
(arXiv 2503.14476) and GSPO (arXiv 2507.18071). Shapes: ``logp``, ``old_logp``, ``ref_logp``
and ``mask`` are (B, T) over completion tokens (right-padded, mask 1 on trained tokens);
``advantages`` and ``rewards`` are (B,), with the G rollouts of one group adjacent.
"""

from __future__ import annotations

from typing import Literal

import torch

LossType = Literal["grpo", "dr_grpo", "dapo", "gspo"]
LOSS_TYPES: tuple[str, ...] = ("grpo", "dr_grpo", "dapo", "gspo")


def group_advantages(
    rewards: torch.Tensor, group_size: int, normalize_std: bool = True, eps: float = 1e-4
) -> torch.Tensor:
    """A_i = (R_i - mean_group R) / (std_group R + eps), the sample (unbiased) std as in TRL.

    ``normalize_std=False`` is Dr. GRPO's unscaled advantage. A group of one has no baseline:
    its advantage is 0 (the unbiased std of one value is undefined).

    Computed in float64 and returned in the rewards' float dtype (float32 for integers): in
    float32 a group like [1000, 1000, 999.9999] centred to [0, 0, -0.66], which no longer sums to
    zero (a hypothesis test found it)."""
    out_dtype = rewards.dtype if rewards.is_floating_point() else torch.float32
    work = torch.float32 if rewards.device.type == "mps" else torch.float64  # mps has no float64
    r = rewards.to(work).view(-1, group_size)
    centred = r - r.mean(dim=1, keepdim=True)
    if normalize_std:
        std = torch.nan_to_num(r.std(dim=1, keepdim=True), nan=0.0) if group_size > 1 else 0.0
        centred = centred / (std + eps)
    return centred.reshape(-1).to(out_dtype)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(pi || ref) per token: exp(ref-logp) - (ref-logp) - 1 >= 0."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1.0


def aggregate(
    per_token_loss: torch.Tensor,
    mask: torch.Tensor,
    loss_type: LossType,
    max_completion_length: int | None = None,
) -> torch.Tensor:
    """Reduce a (B, T) per-token loss to a scalar the way each variant does.

    grpo/gspo: mean over each sequence's tokens, then over sequences (long sequences weigh
    less per token: the length bias Dr. GRPO removes). dapo: sum over all tokens / number of
    active tokens. dr_grpo: sum / (B * max_completion_length), a constant normaliser
    (``max_completion_length`` defaults to T, the padded width)."""
    m = mask.to(per_token_loss.dtype)
    masked = per_token_loss * m
    if loss_type in ("grpo", "gspo"):
        return (masked.sum(-1) / m.sum(-1).clamp(min=1.0)).mean()
    if loss_type == "dapo":
        return masked.sum() / m.sum().clamp(min=1.0)
    if loss_type == "dr_grpo":
        length = max_completion_length if max_completion_length is not None else mask.shape[-1]
        return masked.sum() / (per_token_loss.shape[0] * length)
    raise ValueError(f"unknown loss_type {loss_type!r}; expected one of {LOSS_TYPES}")


def micro_batch_share(loss_type: LossType, mask: torch.Tensor, batch_size: int, batch_tokens: float) -> float:
    """The weight of one micro-batch's ``aggregate`` in the whole batch's, so that summing
    ``share * aggregate(micro-batch)`` over the micro-batches (gradient accumulation) gives
    ``aggregate(whole batch)``. ``mask``: the micro-batch's (b, T) mask; ``batch_size`` and
    ``batch_tokens``: the whole batch's sequences and active tokens. dapo: the micro-batch's
    share of the active tokens; grpo/gspo (a mean over sequences) and dr_grpo (sum / (B *
    max_completion_length), the whole batch's max_completion_length passed to every micro-batch):
    its share of the sequences."""
    if loss_type == "dapo":
        return float(mask.sum()) / max(float(batch_tokens), 1.0)
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown loss_type {loss_type!r}; expected one of {LOSS_TYPES}")
    return mask.shape[0] / batch_size


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    loss_type: LossType = "grpo",
    eps_low: float = 0.2,
    eps_high: float | None = None,
    ref_logp: torch.Tensor | None = None,
    beta: float = 0.0,
    max_completion_length: int | None = None,
    token_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``token_weight`` (B, T), optional: a per-token factor on the surrogate (truncated
    importance sampling for sampler/learner mismatch), applied before the KL term.

    The clipped surrogate -min(r A, clip(r, 1-eps_low, 1+eps_high) A), plus beta * k3 KL,
    aggregated per ``loss_type``. ``eps_high`` defaults to ``eps_low`` (DAPO's clip-higher
    uses 0.28). For ``gspo`` the ratio is per sequence, exp(mean token log-ratio), and clipped
    as a whole (the paper uses far smaller eps, e.g. 3e-4/4e-4; pass them explicitly)."""
    eps_high = eps_low if eps_high is None else eps_high
    m = mask.to(logp.dtype)
    log_ratio = logp - old_logp
    if loss_type == "gspo":
        log_ratio = ((log_ratio * m).sum(-1) / m.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    elif loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown loss_type {loss_type!r}; expected one of {LOSS_TYPES}")
    ratio = torch.exp(log_ratio)
    adv = advantages.to(logp.dtype).unsqueeze(-1)
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    per_token = -torch.min(ratio * adv, clipped * adv).expand_as(logp)
    if token_weight is not None:
        per_token = per_token * token_weight
    if beta != 0.0:
        if ref_logp is None:
            raise ValueError("beta != 0 needs ref_logp")
        per_token = per_token + beta * k3_kl(logp, ref_logp)
    return aggregate(per_token, m, loss_type, max_completion_length)


def dynamic_sampling_mask(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """DAPO's dynamic sampling: True for rollouts whose group has differing rewards. Groups
    whose rewards are all equal carry zero advantage, hence no gradient; the loop drops them
    (and may sample more groups to refill the batch)."""
    r = rewards.view(-1, group_size)
    keep = (r != r[:, :1]).any(dim=1)
    return keep.repeat_interleave(group_size)


def overlong_penalty(lengths: torch.Tensor, max_len: int, cache_len: int) -> torch.Tensor:
    """DAPO's soft overlong punishment, added to the reward: 0 up to max_len - cache_len,
    then falling linearly to -1 at max_len, and -1 beyond."""
    if not 0 < cache_len <= max_len:
        raise ValueError("need 0 < cache_len <= max_len")
    lengths = lengths.float()
    soft = (max_len - cache_len - lengths) / cache_len
    return torch.where(lengths <= max_len - cache_len, torch.zeros_like(lengths), soft.clamp(min=-1.0))
