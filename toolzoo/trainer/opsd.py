"""On-policy self-distillation (OPSD, Penaloza et al., arXiv 2602.04942): the student (task
alone) samples; a teacher scores the student's own tokens in the context of the same
conversation plus the privileged information; the per-token advantage is the reverse-KL
signal sg(log π_T - log π_S), optionally plus the GRPO outcome advantage, in the clipped
policy-gradient surrogate. Maximising E_{π_S}[log π_T - log π_S] is minimising
KL(π_S ‖ π_T) on the student's own distribution (mode seeking, on-policy).

The teacher is either the current weights with PI in context (``self_privileged``) or a frozen
copy of the initial policy with PI (``frozen_initial``); it is never differentiated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict

from toolzoo.trainer.losses import LossType, aggregate, group_advantages, micro_batch_share
from toolzoo.trainer.pi_distill import completion_lengths, completion_logprobs


class OPSDRollout(BaseModel):
    """One student episode in both views: the sampled tokens after the student's prompt and
    after the teacher's (the same conversation with PI)."""

    student_ids: list[int]
    student_mask: list[int]
    teacher_ids: list[int]
    teacher_mask: list[int]
    reward: float
    success: bool = False


class OPSDConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kl_coef: float = 1.0  # weight of the per-token reverse-KL advantage
    outcome_weight: float = 0.0  # weight of the group outcome advantage added to every token
    group_size: int = 4
    loss_type: LossType = "grpo"
    eps_low: float = 0.2
    eps_high: float | None = None
    temperature: float = 1.0
    normalize_std: bool | None = None
    max_grad_norm: float | None = 1.0
    teacher: Literal["self_privileged", "frozen_initial"] = "self_privileged"
    micro_batch: int | None = None  # rollouts (both views) per forward/backward (gradient accumulation); None: all
    precision: Literal["fp32", "bf16", "auto"] = "fp32"  # bf16 autocast of the forward (auto: CUDA with bf16)


class OPSDStats(BaseModel):
    loss: float = 0.0
    reward_mean: float = 0.0
    success: float = 0.0
    reverse_kl: float = 0.0  # mean of log π_S - log π_T on the student's tokens
    tokens: int = 0
    # per-token advantages over the trained tokens: is there a signal, and which way does it push
    adv_mean: float = 0.0
    adv_std: float = 0.0
    adv_min: float = 0.0
    adv_max: float = 0.0
    adv_pos: float = 0.0  # fraction of tokens the teacher prefers (advantage > 0)


def advantage_stats(adv: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Mean, std, min, max and positive fraction of ``adv`` over the masked tokens."""
    vals = adv.detach()[mask.bool()].float()
    if vals.numel() == 0:
        return {}
    return {"adv_mean": float(vals.mean()), "adv_std": float(vals.std(unbiased=False)),
            "adv_min": float(vals.min()), "adv_max": float(vals.max()), "adv_pos": float((vals > 0).float().mean())}


def opsd_advantages(logp_s: torch.Tensor, logp_t: torch.Tensor, mask: torch.Tensor, *,
                    kl_coef: float = 1.0, outcome: torch.Tensor | None = None,
                    outcome_weight: float = 0.0) -> torch.Tensor:
    """Per-token advantages (B, T): kl_coef·sg(log π_T - log π_S) + outcome_weight·A_outcome,
    zero off the mask. Detached: the advantage is a reward, not a path for gradients."""
    adv = kl_coef * (logp_t.detach() - logp_s.detach())
    if outcome is not None and outcome_weight:
        adv = adv + outcome_weight * outcome.detach().to(adv.dtype).unsqueeze(-1)
    return adv * mask


def token_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                      *, loss_type: LossType = "grpo", eps_low: float = 0.2, eps_high: float | None = None,
                      max_completion_length: int | None = None) -> torch.Tensor:
    """The clipped surrogate with per-token advantages (B, T)."""
    eps_high = eps_low if eps_high is None else eps_high
    ratio = torch.exp(logp - old_logp)
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    per_token = -torch.min(ratio * advantages, clipped * advantages)
    return aggregate(per_token, mask, loss_type, max_completion_length)


def opsd_step(model, optimizer, rollouts: Sequence[OPSDRollout], cfg: OPSDConfig, *, pad_id: int = 0,
              teacher_model=None) -> OPSDStats:
    """One update. ``teacher_model``: the frozen initial policy (``frozen_initial``); None
    scores with ``model`` itself (``self_privileged``), without gradient.

    ``cfg.micro_batch`` rollouts at a time are scored by the teacher and go through the
    student's forward and backward, the gradients accumulated: outcome advantages and the loss
    normaliser are the whole batch's (``losses.micro_batch_share``), so the update equals the
    one-batch update."""
    g = cfg.group_size
    if not rollouts or len(rollouts) % g:
        raise ValueError(f"{len(rollouts)} rollouts do not form groups of {g}")
    lengths = completion_lengths([r.student_mask for r in rollouts])
    if lengths != completion_lengths([r.teacher_mask for r in rollouts]):
        raise ValueError("teacher and student views must mask the same number of tokens")
    teacher = model if teacher_model is None else teacher_model
    rewards = torch.tensor([r.reward for r in rollouts], dtype=torch.float)
    normalize = cfg.normalize_std if cfg.normalize_std is not None else cfg.loss_type != "dr_grpo"
    outcome = group_advantages(rewards, g, normalize_std=normalize)  # over the whole batch, never a micro-batch
    n = len(rollouts)
    width, tokens = max(lengths), float(sum(lengths))  # the whole batch's normalisers (dr_grpo, dapo)
    micro = cfg.micro_batch or n
    optimizer.zero_grad(set_to_none=True)
    loss_sum = rkl_sum = token_sum = 0.0
    advs = []
    for lo in range(0, n, micro):
        part = rollouts[lo:lo + micro]
        was = teacher.training
        teacher.eval()  # no dropout in the scores (tiny models have none; real ones may)
        logp_t, _ = completion_logprobs(teacher, [r.teacher_ids for r in part], [r.teacher_mask for r in part],
                                        pad_id, cfg.temperature, grad=False, precision=cfg.precision)
        teacher.train(was)
        model.train()
        logp_s, mask = completion_logprobs(model, [r.student_ids for r in part], [r.student_mask for r in part],
                                           pad_id, cfg.temperature, precision=cfg.precision)
        logp_t = logp_t.to(logp_s.device)
        adv = opsd_advantages(logp_s, logp_t, mask, kl_coef=cfg.kl_coef,
                              outcome=outcome[lo:lo + micro].to(logp_s.device), outcome_weight=cfg.outcome_weight)
        loss = token_policy_loss(logp_s, logp_s.detach(), adv, mask, loss_type=cfg.loss_type,
                                 eps_low=cfg.eps_low, eps_high=cfg.eps_high, max_completion_length=width)
        # the micro-batch's aggregate, rescaled to its share of the whole batch's normaliser
        loss = loss * micro_batch_share(cfg.loss_type, mask, n, tokens)
        loss.backward()
        loss_sum += float(loss.detach())
        with torch.no_grad():
            rkl_sum += float(((logp_s.detach() - logp_t) * mask).sum())
            token_sum += float(mask.sum())
            advs.append(adv.detach()[mask.bool()])
    if cfg.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
    optimizer.step()
    vals = torch.cat(advs)
    return OPSDStats(loss=loss_sum, reward_mean=float(rewards.mean()),
                     success=sum(r.success for r in rollouts) / len(rollouts),
                     reverse_kl=rkl_sum / max(token_sum, 1.0),
                     tokens=int(token_sum), **advantage_stats(vals, torch.ones_like(vals)))
