"""π-Distill (Penaloza et al., arXiv 2602.04942): one set of weights in two roles.

The teacher π_T = π_θ(·|x, I) sees the task x plus privileged information I and samples; the
student π_S = π_θ(·|x) sees the task alone and is trained on the teacher's tokens (teacher
forcing). The joint objective, as the authors state it (maximised):

    J = α·J_T + (1-α)·J_S
    J_T = E_{y~π_T}[R(y)] - β·KL(π_T ‖ sg[π_S])
    J_S = E_{y~π_T}[(π_S(y) / sg[π_T(y)])·R(y)] - β·KL(sg[π_T] ‖ π_S)

Implemented per token on the teacher's sampled tokens, with R replaced by the GRPO group
advantage A (G teacher rollouts per task):

- teacher: the clipped GRPO surrogate of ``losses.policy_loss`` + β·k3(log π_T, sg log π_S)
  (k3 estimates KL(π_T ‖ π_S) from π_T's samples; gradient through π_T only);
- student: -sg[min(ρ_t, c)]·R·log π_S(y_t) (R the outcome reward, or A with
  ``student_signal: advantage``) with ρ_t = π_S(y_t)/π_T(y_t) (truncated importance
  weight; below c its gradient is exactly ∇(ρ_t·A)), + β·(sg log π_T - log π_S) (the sampled
  forward KL: its gradient is the exact gradient of KL(sg π_T ‖ π_S), i.e. SFT on the
  teacher's tokens);
- each term aggregated per ``loss_type`` (``losses.aggregate``), then mixed with α.

The functions on tensors are separate from the step so they can be tested in closed form and
reused (the Ray learner calls ``pi_distill_step`` with rollouts it gathered).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict

from toolzoo.trainer.batching import pad_right, token_logprobs
from toolzoo.trainer.losses import LossType, aggregate, group_advantages, micro_batch_share, policy_loss


class DistillRollout(BaseModel):
    """One teacher episode in both views: the same sampled completion tokens, once after the
    teacher's prompt (with PI) and once after the student's (without). ``reward``: the judges'
    outcome reward; ``success``: the outcome's success flag."""

    teacher_ids: list[int]
    teacher_mask: list[int]
    student_ids: list[int]
    student_mask: list[int]
    reward: float
    success: bool = False


class PiDistillConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alpha: float = 0.5  # 1: teacher only, 0: student only
    beta: float = 0.05  # KL weight (both directions, as in the paper's J_T and J_S)
    is_clip: float = 1.0  # c: truncation of the student's importance weight
    group_size: int = 4
    loss_type: LossType = "grpo"
    eps_low: float = 0.2
    eps_high: float | None = None
    temperature: float = 1.0
    normalize_std: bool | None = None
    student_on: Literal["all", "success"] = "all"  # which teacher rollouts train the student
    # what multiplies the student's importance weight: the raw outcome reward R (the paper's
    # J_S) or the teacher's group advantage (zero when every teacher rollout succeeds)
    student_signal: Literal["reward", "advantage"] = "reward"
    max_grad_norm: float | None = 1.0
    micro_batch: int | None = None  # rollouts (both views) per forward/backward (gradient accumulation); None: all
    precision: Literal["fp32", "bf16", "auto"] = "fp32"  # bf16 autocast of the forward (auto: CUDA with bf16)


class PiDistillStats(BaseModel):
    loss: float = 0.0
    teacher_loss: float = 0.0
    student_loss: float = 0.0
    reward_mean: float = 0.0
    teacher_success: float = 0.0
    kl_teacher_student: float = 0.0  # mean of log π_T - log π_S on the teacher's tokens
    is_weight: float = 0.0  # mean truncated importance weight
    tokens: int = 0
    skipped: bool = False


# --------------------------------------------------------------------------- tensors


def student_is_loss(logp_s: torch.Tensor, logp_t: torch.Tensor, advantages: torch.Tensor,
                    mask: torch.Tensor, *, is_clip: float = 1.0, loss_type: LossType = "grpo",
                    max_completion_length: int | None = None) -> torch.Tensor:
    """-sg[min(π_S/π_T, c)]·A·log π_S per token (the truncated-IS policy gradient of
    E_{π_T}[(π_S/sg π_T)·A]); the teacher's log-probs are detached."""
    w = torch.exp(logp_s.detach() - logp_t.detach()).clamp(max=is_clip)
    per_token = -(w * advantages.to(logp_s.dtype).unsqueeze(-1)) * logp_s
    return aggregate(per_token, mask, loss_type, max_completion_length)


def forward_kl_loss(logp_s: torch.Tensor, logp_t: torch.Tensor, mask: torch.Tensor, *,
                    loss_type: LossType = "grpo", max_completion_length: int | None = None) -> torch.Tensor:
    """KL(sg π_T ‖ π_S) sampled on the teacher's tokens: sg(log π_T) - log π_S per token."""
    return aggregate(logp_t.detach() - logp_s, mask, loss_type, max_completion_length)


def teacher_loss(logp_t: torch.Tensor, old_logp_t: torch.Tensor, logp_s: torch.Tensor,
                 advantages: torch.Tensor, mask: torch.Tensor, *, beta: float, loss_type: LossType = "grpo",
                 eps_low: float = 0.2, eps_high: float | None = None,
                 max_completion_length: int | None = None) -> torch.Tensor:
    """The clipped GRPO surrogate on the teacher's tokens + β·KL(π_T ‖ sg π_S) (k3)."""
    return policy_loss(logp_t, old_logp_t, advantages, mask, loss_type=loss_type, eps_low=eps_low,
                       eps_high=eps_high, ref_logp=logp_s.detach(), beta=beta,
                       max_completion_length=max_completion_length)


def pi_distill_loss(logp_t: torch.Tensor, old_logp_t: torch.Tensor, logp_s: torch.Tensor,
                    advantages: torch.Tensor, mask: torch.Tensor, *, alpha: float, beta: float,
                    is_clip: float = 1.0, student_mask: torch.Tensor | None = None,
                    student_advantages: torch.Tensor | None = None,
                    loss_type: LossType = "grpo", eps_low: float = 0.2, eps_high: float | None = None,
                    max_completion_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(joint, teacher, student) losses to minimise. All tensors (B, T) over the teacher's
    completion tokens, aligned; ``student_mask`` (default ``mask``) restricts the student term
    (``student_on: success``); ``student_advantages`` (default ``advantages``) is what weighs
    the student's importance-sampled term (the raw reward R in the paper's J_S)."""
    kw = dict(loss_type=loss_type, max_completion_length=max_completion_length)
    lt = teacher_loss(logp_t, old_logp_t, logp_s, advantages, mask, beta=beta, eps_low=eps_low,
                      eps_high=eps_high, **kw)
    sm = mask if student_mask is None else student_mask
    sa = advantages if student_advantages is None else student_advantages
    ls = student_is_loss(logp_s, logp_t, sa, sm, is_clip=is_clip, **kw)
    if beta != 0.0:
        ls = ls + beta * forward_kl_loss(logp_s, logp_t, sm, **kw)
    return alpha * lt + (1.0 - alpha) * ls, lt, ls


# --------------------------------------------------------------------------- batches


def completion_lengths(rows_mask: Sequence[list[int]]) -> list[int]:
    """Each row's number of trained tokens: the width of its row in ``completion_logprobs``
    (a mask over input ids; position 0 has no log-prob)."""
    return [sum(m[1:]) for m in rows_mask]


def completion_logprobs(model, rows_ids: Sequence[list[int]], rows_mask: Sequence[list[int]], pad_id: int,
                        temperature: float = 1.0, grad: bool = True, *,
                        precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probs of each row's masked tokens, packed left: (B, T_c) and its 0/1 mask,
    so two views of the same completion line up column by column. Computed by
    ``batching.token_logprobs`` (chunked over positions: no (B, L, V) logits tensor)."""
    device = next(model.parameters()).device
    ids = pad_right(list(rows_ids), pad_id, torch.long).to(device)
    attn = pad_right([[1] * len(r) for r in rows_ids], 0, torch.long).to(device)
    mask = pad_right(list(rows_mask), 0, torch.long).to(device)[:, 1:].bool()
    with torch.set_grad_enabled(grad):
        logp = token_logprobs(model, ids, attn, temperature, precision=precision)
    n = mask.sum(-1)
    width = int(n.max().item()) if len(n) else 0
    # stable sort puts each row's masked positions first, in order
    order = torch.sort((~mask).to(torch.int8), dim=-1, stable=True).indices[:, :width]
    packed = torch.gather(logp, 1, order)
    pmask = (torch.arange(width, device=device).unsqueeze(0) < n.unsqueeze(-1)).float()
    return packed * pmask, pmask


def pi_distill_step(model, optimizer, rollouts: Sequence[DistillRollout], cfg: PiDistillConfig, *,
                    pad_id: int = 0) -> PiDistillStats:
    """One joint update on ``len(rollouts) / group_size`` groups of teacher rollouts (the G
    rollouts of a task adjacent). On-policy: the old teacher policy is the current one.

    ``cfg.micro_batch`` rollouts (both views) at a time go through forward and backward, the
    gradients accumulated: advantages and the loss normalisers are the whole batch's
    (``losses.micro_batch_share`` per term), so the update equals the one-batch update."""
    g = cfg.group_size
    if not rollouts or len(rollouts) % g:
        raise ValueError(f"{len(rollouts)} rollouts do not form groups of {g}")
    lengths = completion_lengths([r.teacher_mask for r in rollouts])
    if lengths != completion_lengths([r.student_mask for r in rollouts]):
        raise ValueError("teacher and student views must mask the same number of tokens")
    rewards = torch.tensor([r.reward for r in rollouts], dtype=torch.float)
    normalize = cfg.normalize_std if cfg.normalize_std is not None else cfg.loss_type != "dr_grpo"
    adv = group_advantages(rewards, g, normalize_std=normalize)  # over the whole batch, never a micro-batch
    signal = rewards if cfg.student_signal == "reward" else adv
    on = [1.0 if cfg.student_on == "all" else float(r.success) for r in rollouts]
    n = len(rollouts)
    # the whole batch's normalisers: dr_grpo's width, dapo's token counts (per term)
    width = max(lengths)
    tokens_t = float(sum(lengths))
    tokens_s = float(sum(k * o for k, o in zip(lengths, on)))
    micro = cfg.micro_batch or n
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss_sum = lt_sum = ls_sum = kl_sum = w_sum = token_sum = 0.0
    for lo in range(0, n, micro):
        part = rollouts[lo:lo + micro]
        logp_t, mask = completion_logprobs(model, [r.teacher_ids for r in part], [r.teacher_mask for r in part],
                                           pad_id, cfg.temperature, precision=cfg.precision)
        logp_s, _ = completion_logprobs(model, [r.student_ids for r in part], [r.student_mask for r in part],
                                        pad_id, cfg.temperature, precision=cfg.precision)
        device = logp_t.device
        smask = mask * torch.tensor(on[lo:lo + micro], device=device).unsqueeze(-1)
        _, lt, ls = pi_distill_loss(
            logp_t, logp_t.detach(), logp_s, adv[lo:lo + micro].to(device), mask, alpha=cfg.alpha,
            beta=cfg.beta, is_clip=cfg.is_clip, student_mask=smask,
            student_advantages=signal[lo:lo + micro].to(device), loss_type=cfg.loss_type, eps_low=cfg.eps_low,
            eps_high=cfg.eps_high, max_completion_length=width,
        )
        # each term's aggregate, rescaled to its share of the whole batch's normaliser
        lt = lt * micro_batch_share(cfg.loss_type, mask, n, tokens_t)
        ls = ls * micro_batch_share(cfg.loss_type, smask, n, tokens_s)
        loss = cfg.alpha * lt + (1.0 - cfg.alpha) * ls
        loss.backward()
        loss_sum += float(loss.detach())
        lt_sum += float(lt.detach())
        ls_sum += float(ls.detach())
        with torch.no_grad():
            d = (logp_t - logp_s).detach()
            kl_sum += float((d * mask).sum())
            w_sum += float((torch.exp(-d).clamp(max=cfg.is_clip) * mask).sum())
            token_sum += float(mask.sum())
    if cfg.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
    optimizer.step()
    t = max(token_sum, 1.0)
    return PiDistillStats(
        loss=loss_sum, teacher_loss=lt_sum, student_loss=ls_sum,
        reward_mean=float(rewards.mean()), teacher_success=sum(r.success for r in rollouts) / len(rollouts),
        kl_teacher_student=kl_sum / t, is_weight=w_sum / t, tokens=int(token_sum),
    )
