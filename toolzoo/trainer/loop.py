"""``toolzoo train``: the outer loop around the SFT and GRPO steps.

A run is a list of phases over one global step counter: ``algorithm: sft`` is one SFT phase;
``algorithm: grpo`` is an optional SFT warm-up (``sft.steps``) followed by GRPO. The
algorithm names map to phase builders registered one file each in ``trainer/algorithms/``.
Every step appends one JSONL row to ``output/metrics.jsonl``; evaluation rows carry an
``eval`` block (success by length and the half-life fit). Checkpoints go to
``output/checkpoints/step_N/`` (step 0 is the starting model), the end result to
``output/final/``; ``resume=True`` continues from the latest checkpoint with its optimizer,
scheduler and RNG states.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from toolzoo.agents.formats import parse_error_count
from toolzoo.agents.hf import HFAgent, SeededEpisode, episode_seed
from toolzoo.core import counts_for_policy
from toolzoo.envs.driver import Sandboxes
from toolzoo.envs.episode import Limits
from toolzoo.trainer.algorithms import algorithm_names, get_algorithm
from toolzoo.trainer.config import TrainConfig
from toolzoo.trainer.data import tokenize_conversation
from toolzoo.trainer.episodes import Tasks, domain_tools, run_many
from toolzoo.trainer.evaluate import eval_tasks, evaluate
from toolzoo.trainer.grpo import GRPOConfig, Rollout, grpo_step
from toolzoo.trainer.losses import overlong_penalty
from toolzoo.trainer.opsd import OPSDConfig, OPSDRollout, opsd_step
from toolzoo.trainer.pi_distill import DistillRollout, PiDistillConfig, pi_distill_step
from toolzoo.trainer.privileged import PrivilegedAgent, render_privileged, sequence_in_context, with_privileged
from toolzoo.trainer.schedule import make_optimizer
from toolzoo.trainer.sft import sft_step
from toolzoo.trainer.sft_data import corpus_texts, load_conversations, strip_tokens

log = logging.getLogger("toolzoo.trainer")

TRAIN_SEED_SPAN = 100_000  # training tasks use seeds config.seed .. + span; eval seeds lie beyond


@dataclass
class Phase:
    name: str
    steps: int
    lr: float
    warmup: int
    cosine: bool
    step: Callable[[torch.optim.Optimizer], dict[str, Any]]  # one optimizer step -> metrics


@dataclass
class Context:
    """What phases share: the model being trained and the run's randomness."""

    config: TrainConfig
    model: Any
    tokenizer: Any
    out: Path
    rng: random.Random
    tasks: Tasks
    generators: dict[str, torch.Generator] = field(default_factory=dict)
    backend: Any = None  # rollout engine (vLLM) when configured
    rollouts: Any = None  # where a phase's episodes run: LocalRollouts, or the Ray driver's RayRollouts
    policy_version: int = 0  # updates made by rollout phases (the per-episode sampling seeds' version)
    ref_model: Any = None
    cpu_start: float | None = None  # process CPU time when training began (cpu_budget_s)

    def out_of_budget(self) -> bool:
        b = self.config.cpu_budget_s
        return b is not None and self.cpu_start is not None and time.process_time() - self.cpu_start >= b
    _scorer: Any = None

    @property
    def scorer(self) -> Any:
        """The config's judges as `toolzoo run` builds them: rollouts are rewarded with the
        run's combined reward (rubrics included), built once."""
        if self._scorer is None:
            from toolzoo.envs.scorer import Scorer

            c = self.config
            self._scorer = Scorer.build(c.judges, self.out, combine=c.judge_combine, weights=c.judge_weights,
                                        domains=c.domains)
        return self._scorer

    @property
    def pad_id(self) -> int:
        t = self.tokenizer
        return t.pad_token_id if t.pad_token_id is not None else t.eos_token_id

    @property
    def limits(self) -> Limits:
        return Limits(max_turns=self.config.max_turns, wall_time_s=self.config.episode_wall_time_s)


# --------------------------------------------------------------------------- phases


def sft_phase(ctx: Context, steps: int, lr: float, conversations) -> Phase:
    cfg = ctx.config
    seqs = [tokenize_conversation(ctx.tokenizer, m, t) for m, t in conversations]
    if not seqs:
        raise ValueError("no SFT conversations (check sft.source and sft.min_score)")

    def step(opt) -> dict[str, Any]:
        batch = ctx.rng.sample(seqs, min(cfg.sft.batch_size, len(seqs)))
        loss = sft_step(ctx.model, opt, batch, ctx.pad_id, cfg.max_grad_norm, micro_batch=cfg.micro_batch,
                        precision=cfg.precision)
        return {"loss": loss, "tokens": sum(sum(s.assistant_mask) for s in batch)}

    return Phase("sft", steps, lr, cfg.sft.warmup_steps, True, step)


def grpo_phase(ctx: Context) -> Phase:
    cfg = ctx.config
    gcfg = grpo_config(cfg, old_logprobs="sampled" if cfg.rollout.backend == "vllm" else "recompute")
    roll = rollouts_of(ctx)

    def step(opt) -> dict[str, Any]:
        if cfg.beta > 0 and ctx.ref_model is None:
            # The KL reference is the policy as GRPO starts (after any SFT warm-up), so it is
            # copied at the phase's first step, not when the phases are built.
            import copy

            ctx.ref_model = copy.deepcopy(ctx.model).eval()
            for p in ctx.ref_model.parameters():
                p.requires_grad_(False)
        t0 = time.perf_counter()
        trajs = roll([_train_task(ctx) for _ in range(cfg.batch)], privileged=False)
        t_roll = time.perf_counter() - t0
        rollouts, successes, dropped = [], [], 0
        for g in range(cfg.batch):
            group = trajs[g * cfg.group_size:(g + 1) * cfg.group_size]
            if not all(counts_for_policy(t.outcome) for t in group):
                dropped += 1  # not the policy's doing: no signal to learn from
                continue
            successes += [float(t.outcome.success) for t in group]
            rollouts += group_rollouts(cfg, group, ctx.tokenizer, ctx.tasks.sources)
        if not rollouts:
            return {"loss": 0.0, "skipped": True, "groups_dropped": dropped, "rollout_s": t_roll}
        stats = grpo_step(ctx.model, opt, rollouts, gcfg, pad_id=ctx.pad_id, ref_model=ctx.ref_model)
        roll.updated(ctx.model)
        row = stats.model_dump()
        row.update(success=sum(successes) / max(1, len(successes)), groups_dropped=dropped,
                   rollout_s=round(t_roll, 3), **rollout_stats(trajs))
        return row

    return Phase("grpo", cfg.steps, cfg.learning_rate, 0, False, step)


def grpo_config(cfg: TrainConfig, old_logprobs: str) -> GRPOConfig:
    """The GRPO step's settings from the Train config (the local loop and the Ray learner)."""
    return GRPOConfig(
        loss_type=cfg.loss_type, group_size=cfg.group_size, eps_low=cfg.eps_low, eps_high=cfg.eps_high,
        beta=cfg.beta, temperature=cfg.rollout.temperature, max_completion_length=cfg.max_completion_length,
        dynamic_sampling=cfg.dynamic_sampling, max_grad_norm=cfg.max_grad_norm, old_logprobs=old_logprobs,
        micro_batch=cfg.micro_batch, precision=cfg.precision, tis_cap=cfg.tis_cap,
    )


def group_rollouts(cfg: TrainConfig, group, tokenizer, sources: dict[str, str]) -> list[Rollout]:
    """One kept GRPO group as rollouts: outcome rewards (plus the overlong penalty when enabled);
    the domain's tool specs for turns that must be stitched or re-rendered.
    ``sources``: domain name -> what was configured (``Tasks.sources``)."""
    rewards = [float(t.outcome.reward) for t in group]
    if cfg.overlong.enabled:
        lengths = torch.tensor([_sampled_tokens(t.messages) for t in group], dtype=torch.float)
        pen = overlong_penalty(lengths, cfg.max_completion_length, cfg.overlong.cache)
        rewards = [r + float(p) for r, p in zip(rewards, pen)]
    domain = group[0].task.domain
    tools = domain_tools(sources.get(domain, domain))  # to stitch or re-render turns (cached)
    return [Rollout.from_messages(t.messages, r, tokenizer, tools) for t, r in zip(group, rewards)]


def rollout_stats(trajs) -> dict[str, Any]:
    """Per-step rollout metrics: call-like text that did not parse, and the median time an
    episode waited for its sandbox (a cold start, or a warm pool's lease)."""
    leases = sorted(t.timing.lease_s for t in trajs)
    return {"parse_errors": sum(parse_error_count(t.messages) for t in trajs),
            "lease_s": round(leases[len(leases) // 2], 4) if leases else 0.0}


def _two_views(ctx: Context, trajs):
    """Groups of (teacher view, student view, trajectory) from ``trajs`` (task-major groups of
    ``group_size``); groups with an infra failure or a turn that cannot be stitched are
    dropped. Returns (groups, dropped, successes)."""
    cfg = ctx.config
    kept, dropped, successes = [], 0, []
    for g in range(len(trajs) // cfg.group_size):
        group = trajs[g * cfg.group_size:(g + 1) * cfg.group_size]
        if not all(counts_for_policy(t.outcome) for t in group):
            dropped += 1
            continue
        text = render_privileged(group[0].task, cfg.distill.privileged)
        tools = domain_tools(ctx.tasks.source(group[0].task))
        views = [(sequence_in_context(ctx.tokenizer, t.messages, tools, text),
                  sequence_in_context(ctx.tokenizer, t.messages, tools, None), t) for t in group]
        if any(tv is None or sv is None for tv, sv, _ in views):
            dropped += 1
            continue
        kept.append(views)
        successes += [float(t.outcome.success) for t in group]
    return kept, dropped, successes


class LocalRollouts:
    """A rollout phase's episodes in this process (``run_many``, the one episode driver): the
    policy agent shared by every episode (its turns batch), rewarded by the run's scorer.
    ``Context.rollouts`` is this or the Ray driver's ``RayRollouts``, which has the same
    ``__call__`` / ``updated`` / ``close``; the phases cannot tell them apart."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.agent = _rollout_agent(ctx)
        # One event loop for the whole run, so a warm sandbox pool (``sandbox.pool``) outlives
        # a step: its sandboxes' pipes and tasks belong to the loop that opened them.
        self._loop = asyncio.Runner()
        self.sandboxes: Sandboxes | None = None

    def __call__(self, tasks, privileged: bool):
        """Every task ``group_size`` times (task-major); ``privileged``: the policy sees each
        task's PI (the π-Distill teacher view)."""
        ctx, cfg = self.ctx, self.ctx.config
        agent, version = self.agent, ctx.policy_version

        def episode_agent(eid: str):
            a = agent
            if cfg.rollout.seed_per_episode and isinstance(agent, HFAgent):
                a = SeededEpisode(agent, episode_seed(cfg.seed, version, eid))
            return PrivilegedAgent(a, cfg.distill.privileged) if privileged else a

        async def play():
            if self.sandboxes is None and cfg.sandbox.pool > 0:
                self.sandboxes = Sandboxes(cfg.sandbox.pool, run_id="train", max_leases=cfg.batch * cfg.group_size)
            if self.sandboxes is not None:
                self.sandboxes.expect([t.seed for t in tasks for _ in range(cfg.group_size)])
            return await run_many(tasks, None, trials=cfg.group_size, user_mode=cfg.user_mode, limits=ctx.limits,
                                  concurrency=cfg.batch * cfg.group_size, sources=ctx.tasks.sources,
                                  scorer=ctx.scorer, sandbox=cfg.sandbox, sandboxes=self.sandboxes,
                                  episode_agent=episode_agent)

        return self._loop.run(play())

    def updated(self, model) -> None:
        """After an optimizer step: the sampler gets the new weights."""
        self.ctx.policy_version += 1
        if self.ctx.backend is not None:
            self.ctx.backend.sync_weights(model)

    def close(self) -> None:
        """Drain the warm pool (the reaper's registry then holds none of its sandboxes)."""
        try:
            if self.sandboxes is not None:
                self._loop.run(self.sandboxes.aclose())
                self.sandboxes = None
        finally:
            self._loop.close()
            if self.ctx.backend is not None:
                self.ctx.backend.close()
                self.ctx.backend = None


def rollouts_of(ctx: Context):
    """The run's rollout executor (local unless the Ray driver installed its own)."""
    if ctx.rollouts is None:
        ctx.rollouts = LocalRollouts(ctx)
    return ctx.rollouts


def pi_distill_phase(ctx: Context) -> Phase:
    """Teacher (PI in context) rolls out; one joint teacher/student update per step."""
    cfg, d = ctx.config, ctx.config.distill
    pcfg = PiDistillConfig(alpha=d.alpha, beta=d.beta, is_clip=d.is_clip, group_size=cfg.group_size,
                           loss_type=cfg.loss_type, eps_low=cfg.eps_low, eps_high=cfg.eps_high,
                           temperature=cfg.rollout.temperature, student_on=d.student_on,
                           student_signal=d.student_signal, max_grad_norm=cfg.max_grad_norm,
                           micro_batch=cfg.micro_batch, precision=cfg.precision)
    roll = rollouts_of(ctx)

    def step(opt) -> dict[str, Any]:
        def rollout(tv, sv, t) -> DistillRollout:
            return DistillRollout(teacher_ids=tv.input_ids, teacher_mask=tv.assistant_mask, student_ids=sv.input_ids,
                                  student_mask=sv.assistant_mask, reward=float(t.outcome.reward),
                                  success=bool(t.outcome.success))

        row, _ = _distill_update(ctx, roll, True, rollout,
                                 lambda rs: pi_distill_step(ctx.model, opt, rs, pcfg, pad_id=ctx.pad_id))
        return row

    return Phase("pi_distill", cfg.steps, cfg.learning_rate, 0, False, step)


def _distill_update(ctx: Context, roll, privileged: bool, rollout, update) -> tuple[dict[str, Any], list]:
    """One π-Distill/OPSD step: roll out (the teacher view when ``privileged``), build each kept
    episode's two views into a rollout with ``rollout(teacher_view, student_view, traj)``, and
    ``update`` on them. Returns the metrics row and the kept groups."""
    t0 = time.perf_counter()
    trajs = roll([_train_task(ctx) for _ in range(ctx.config.batch)], privileged=privileged)
    t_roll = time.perf_counter() - t0
    groups, dropped, _ = _two_views(ctx, trajs)
    rollouts = [rollout(tv, sv, t) for views in groups for tv, sv, t in views]
    if not rollouts:
        return {"loss": 0.0, "skipped": True, "groups_dropped": dropped, "rollout_s": t_roll}, groups
    stats = update(rollouts)
    roll.updated(ctx.model)
    return {**stats.model_dump(), "groups_dropped": dropped, "rollout_s": round(t_roll, 3),
            "sequences": len(rollouts), **rollout_stats(trajs)}, groups


def opsd_phase(ctx: Context) -> Phase:
    """Student rolls out; the teacher (PI in context) scores its tokens; one update per step."""
    cfg, d = ctx.config, ctx.config.distill
    ocfg = OPSDConfig(kl_coef=d.kl_coef, outcome_weight=d.outcome_weight, group_size=cfg.group_size,
                      loss_type=cfg.loss_type, eps_low=cfg.eps_low, eps_high=cfg.eps_high,
                      temperature=cfg.rollout.temperature, max_grad_norm=cfg.max_grad_norm, teacher=d.teacher,
                      micro_batch=cfg.micro_batch, precision=cfg.precision)
    frozen: list = []  # the frozen_initial teacher, copied at the phase's first step
    roll = rollouts_of(ctx)

    def step(opt) -> dict[str, Any]:
        if d.teacher == "frozen_initial" and not frozen:
            # copied here, not when the phases are built: that is before the warm-up has run
            import copy

            frozen.append(copy.deepcopy(ctx.model).eval())
            for p in frozen[0].parameters():
                p.requires_grad_(False)
        teacher = frozen[0] if frozen else None

        def rollout(tv, sv, t) -> OPSDRollout:
            return OPSDRollout(student_ids=sv.input_ids, student_mask=sv.assistant_mask, teacher_ids=tv.input_ids,
                               teacher_mask=tv.assistant_mask, reward=float(t.outcome.reward),
                               success=bool(t.outcome.success))

        row, groups = _distill_update(
            ctx, roll, False, rollout,
            lambda rs: opsd_step(ctx.model, opt, rs, ocfg, pad_id=ctx.pad_id, teacher_model=teacher))
        turns = [sum(m.role == "assistant" for m in t.messages) for views in groups for _, _, t in views]
        if turns:
            row["assistant_turns"] = sum(turns) / len(turns)
        return row

    return Phase("opsd", cfg.steps, cfg.learning_rate, 0, False, step)


def _sampled_tokens(messages) -> int:
    return sum(len(m.tokens.completion_ids) for m in messages if m.role == "assistant" and m.tokens)


def train_job(cfg: TrainConfig, tasks: Tasks, rng: random.Random) -> tuple[str, int, int]:
    """(domain, seed, length) of a training task that generates, drawn from ``rng``."""
    for _ in range(1000):
        d, length = rng.choice(cfg.domains), rng.choice(cfg.lengths)
        seed = cfg.seed + rng.randrange(TRAIN_SEED_SPAN)
        if tasks.get(d, seed, length) is not None:
            return d, seed, length
    raise RuntimeError("cannot generate training tasks for the configured domains and lengths")


def _train_task(ctx: Context):
    return ctx.tasks.get(*train_job(ctx.config, ctx.tasks, ctx.rng))  # cached by Tasks: drawn once


def _rollout_agent(ctx: Context):
    cfg = ctx.config
    if cfg.rollout.backend == "vllm":
        from toolzoo.trainer.vllm_backend import VLLMBackend

        ctx.backend = VLLMBackend(ctx.out / "vllm_weights", ctx.model, ctx.tokenizer, cfg.rollout, seed=cfg.seed)
        return ctx.backend.agent()
    agent = HFAgent(model=ctx.model, tokenizer=ctx.tokenizer, max_new_tokens=cfg.rollout.max_new_tokens,
                    temperature=cfg.rollout.temperature, seed=cfg.seed)
    ctx.generators["rollout"] = agent.generator
    return agent


def sft_conversations(ctx: Context) -> list:
    """The SFT (warm-up) conversations the config names, as (messages, tools) pairs."""
    cfg = ctx.config
    if get_algorithm(cfg.algorithm).privileged and cfg.distill.warmup_view != "plain":
        return _privileged_conversations(ctx)
    tasks = []
    if cfg.sft.source == "oracle":
        tasks = ctx.tasks.draw(cfg.domains, cfg.lengths, cfg.sft.episodes, cfg.seed)
    return load_conversations(cfg.sft.source, domains=cfg.domains, tasks=tasks,
                              min_score=cfg.sft.min_score, user_mode=cfg.user_mode, sandbox=cfg.sandbox)


def _privileged_conversations(ctx: Context):
    """Oracle conversations for the π-Distill / OPSD warm-up: with the task's PI in the system
    prompt (the teacher view), and without it too when ``warmup_view: both``."""
    cfg = ctx.config
    if cfg.sft.source != "oracle":
        raise ValueError("distill.warmup_view privileged|both needs sft.source: oracle (PI comes from the tasks)")
    from toolzoo.trainer.episodes import oracle_episodes

    tasks = ctx.tasks.draw(cfg.domains, cfg.lengths, cfg.sft.episodes, cfg.seed)
    out = []
    for t in oracle_episodes(tasks, user_mode=cfg.user_mode, sources=ctx.tasks.sources, sandbox=cfg.sandbox):
        if t.outcome is None or not t.outcome.success:
            continue
        msgs, tools = strip_tokens(t.messages), domain_tools(ctx.tasks.source(t.task))
        out.append((with_privileged(msgs, render_privileged(t.task, cfg.distill.privileged)), tools))
        if cfg.distill.warmup_view == "both":
            out.append((msgs, tools))
    return out


# algorithm name -> phases, from the registry (one file per algorithm in trainer/algorithms/)
ALGORITHMS: dict[str, Callable[[Context, Callable[[], list]], list[Phase]]] = {
    name: get_algorithm(name).phases for name in algorithm_names()}


# --------------------------------------------------------------------------- model


def base_model_path(cfg: TrainConfig, out: Path, convs: Callable[[], list]) -> Path:
    """The starting checkpoint folder: ``model.path``, or a tiny model built (once) into
    ``out/base`` from the domains and the SFT conversations."""
    if cfg.model.tiny is None:
        from toolzoo.models import resolve_model

        return resolve_model(cfg.model.path)  # a registered name is prepared into the cache once
    from toolzoo.trainer.tiny import build_tiny

    path = out / "base"
    if not (path / "config.json").exists():
        build_tiny(path, corpus_texts(cfg.domains, convs()), cfg.model.tiny)
    return path


def run_phase(ctx: Context, phase: Phase, first: int, step: int, state: dict[str, Any] | None,
              emit: Callable[[dict[str, Any], Any, Any], None]) -> int:
    """Run ``phase`` (global steps ``first+1 .. first+phase.steps``) from global ``step`` to its
    end; returns the step reached. Each step's metrics row goes to ``emit(row, opt, sched)``
    (which evaluates, logs and checkpoints). A resumed ``state`` saved inside this phase
    restores its optimizer and scheduler."""
    trainable = [p for p in ctx.model.parameters() if p.requires_grad]  # a LoRA adapter's only
    opt, sched = make_optimizer(trainable, phase.lr, phase.warmup, phase.cosine, phase.steps)
    if state is not None and state.get("phase") == phase.name and state["step"] > first:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
    while step < first + phase.steps and not ctx.out_of_budget():
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        row = phase.step(opt)
        sched.step()
        step += 1
        emit({"step": step, "phase": phase.name, **row, "lr": lr, "seconds": round(time.perf_counter() - t0, 4)},
             opt, sched)
    return step


# --------------------------------------------------------------------------- the loop


def train(config: TrainConfig, resume: bool = False, progress: bool = True, *,
          rollouts: Callable[[Any], Any] | None = None, label: str = "train") -> dict[str, Any]:
    """Run the configured training; returns a summary (steps, seconds, last metrics, final eval,
    paths). ``resume``: continue from the latest ``checkpoints/step_N``. Setup, logging,
    checkpoints and the summary are the shared driver's (``trainer.driver.TrainRun``).
    ``rollouts(run)``: where rollout phases run their episodes (default this process,
    :class:`LocalRollouts`; ``toolzoo train --ray`` passes Ray workers); its ``summary()``
    joins the returned summary."""
    from toolzoo.trainer.driver import TrainRun, optimizer_state

    run = TrainRun(config, resume=resume, progress=progress, label=label)
    ctx = run.ctx
    try:
        if rollouts is not None:
            ctx.rollouts = rollouts(run)
        phases = get_algorithm(config.algorithm).phases(ctx, run.convs)
        run.begin(sum(p.steps for p in phases))
        first = 0
        for phase in phases:
            if run.step < first + phase.steps:
                run.step = run_phase(ctx, phase, first, run.step, run.state,
                                     lambda row, opt, sched: run.emit(row, optimizer_state(row, opt, sched)))
            first += phase.steps
        final = run.save_final()
        extra = ctx.rollouts.summary() if hasattr(ctx.rollouts, "summary") else {}
    finally:
        run.close()
    return run.summary(final, **extra)


def evaluate_policy(ctx: Context, save_to: Path | None = None) -> dict[str, Any]:
    """Greedy evaluation of ``ctx.model`` on the held-out tasks (success by length, half-life);
    under ``teacher`` the same with the PI in context."""
    cfg = ctx.config
    tasks = eval_tasks(ctx.tasks, cfg.domains, cfg.eval.lengths, cfg.eval.tasks_per_length, cfg.eval.seed)
    agent = HFAgent(model=ctx.model, tokenizer=ctx.tokenizer, greedy=True, max_new_tokens=cfg.rollout.max_new_tokens)
    t0 = time.perf_counter()
    res = evaluate(agent, tasks, user_mode=cfg.user_mode, limits=ctx.limits, save_to=save_to,
                   sources=ctx.tasks.sources, sandbox=cfg.sandbox)
    teacher = cfg.eval.teacher if cfg.eval.teacher is not None else get_algorithm(cfg.algorithm).privileged
    if teacher:  # the same tasks with the PI in context: what the student is distilled towards
        res["teacher"] = evaluate(agent, tasks, user_mode=cfg.user_mode, limits=ctx.limits,
                                  sources=ctx.tasks.sources, privileged=cfg.distill.privileged, sandbox=cfg.sandbox)
    res["seconds"] = round(time.perf_counter() - t0, 3)
    return res


def print_summary(summary: dict[str, Any]) -> None:
    """The final evaluation of a training run, as ``toolzoo train`` prints it."""
    from rich.console import Console

    console = Console()
    ev = summary.get("eval") or {}
    for length, row in (ev.get("by_length") or {}).items():
        console.print(f"length {length}: success {row['rate']:.3f} ({row['successes']}/{row['n']})")
    for length, row in ((ev.get("teacher") or {}).get("by_length") or {}).items():
        console.print(f"length {length}: with PI (teacher view) {row['rate']:.3f} ({row['successes']}/{row['n']})")
    if ev.get("t50") is not None:
        console.print(f"half-life T50 = {ev['t50']:.2f} subtasks")
    console.print(f"steps {summary['steps']} in {summary['seconds']:.1f}s; final checkpoint: {summary['final']}")
