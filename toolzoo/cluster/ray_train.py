"""``toolzoo train CONFIG.yaml --ray [ADDRESS]``: training whose episodes run on Ray actors.

Every algorithm (and LoRA) runs its phases in the driver with its episodes on Ray rollout
workers, in lock-step (``cluster.ray_rollouts.RayRollouts``). GRPO on full weights with
``max_off_policy_steps`` >= 1 has the asynchronous layout below:

* **Rollout workers** (``actors.RolloutWorker``, one CPU each) run training episodes with the
  policy as an ``HFAgent``. After every learner step the new state dict reaches every worker
  through the object store (one ref, shared); each trajectory carries the policy version its
  episode started under (``meta.policy_version``).
* **One learner actor** (:class:`GRPOLearner`: the model, AdamW, ``grpo_step``), on a GPU
  when the cluster has one, takes whole groups from the :class:`TrajectoryFeed`: only groups
  whose every episode is within ``max_off_policy_steps`` of its version.
* **The driver** (this process) draws training tasks as the local trainer does, submits each as
  ``group_size`` episodes, assembles finished groups, keeps the learner fed, and is the only
  writer of the output folder: ``metrics.jsonl``, ``checkpoints/step_N``, ``eval/``, ``final/``,
  ``summary.json`` (the local trainer's layout). Evaluation is the trainer's ``evaluate`` on a
  copy of the weights in the driver.

Why a learner actor rather than the driver: on a real cluster the driver is a Job pod or the
head node and the GPU is in the learner group, and an actor's step runs while the driver keeps
collecting rollouts and starting new ones, which is what bounded staleness buys. The SFT warm-up
(``sft.steps``) needs no rollouts and runs in the driver before Ray starts.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from toolzoo.cluster.learner import VERSION_KEY, TrajectoryFeed
from toolzoo.core import Trajectory, counts_for_policy
from toolzoo.envs.episode import Limits
from toolzoo.envs.run_config import RunConfig
from toolzoo.envs.runner import Job
from toolzoo.trainer.config import TrainConfig, resolve_device
from toolzoo.trainer.schedule import make_optimizer

log = logging.getLogger("toolzoo.cluster.train")

_WEIGHT_FILES = (".safetensors", ".bin", ".pt", ".pth")  # what a state dict replaces


# --------------------------------------------------------------------------- weights on the wire


def pack_checkpoint(path: Path, *, weights: bool) -> dict[str, bytes]:
    """A checkpoint folder as {file name: bytes}, so actors on other nodes can load it;
    ``weights=False`` keeps only config and tokenizer files (the state dict travels apart)."""
    return {p.name: p.read_bytes() for p in sorted(Path(path).iterdir())
            if p.is_file() and (weights or not p.name.endswith(_WEIGHT_FILES))}


def unpack_checkpoint(files: dict[str, bytes], out: Path) -> Path:
    for name, data in files.items():
        (out / name).write_bytes(data)
    return out


def load_policy_weights(agents: Any, weights: dict[str, Any] | None, version: int) -> None:
    """A rollout worker's ``load_weights``: make sure its HF agent exists (from the driver's
    checkpoint path, or the shipped config/tokenizer files when that path is not on this node),
    then copy the policy in: the full state dict, or a LoRA run's adapter weights onto the
    worker's base model (wrapped in the same adapter on first use)."""
    if weights is None:
        return
    kind = agents.kind
    if not getattr(agents, "_tz_loaded", False):
        path = agents.config.path
        if not path or not Path(path).exists():
            if "state_dict" not in weights:
                raise RuntimeError(f"the starting checkpoint {path} is not on this node and a LoRA run ships "
                                   "adapter weights only: put the base checkpoint on every node")
            from safetensors.torch import save_file

            with tempfile.TemporaryDirectory(prefix="tzckpt-") as tmp:  # gone once the agent is loaded
                unpack_checkpoint(weights["files"], Path(tmp))
                save_file(weights["state_dict"], f"{tmp}/model.safetensors", metadata={"format": "pt"})
                agents.config.path = tmp
                kind.shared()
        agents._tz_loaded = True
    agent = kind.shared()  # built once, then the same object
    if not getattr(agent, "_tz_seeded", False):
        # Fresh processes share torch's default seed: give each worker its own stream, or two
        # workers would sample the same continuation for the same prompt (``episode_seed``
        # episodes use their own generators instead).
        agent.generator = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
        agent._tz_seeded = True
    # HFAgent decodes in a thread holding this lock: never swap weights under a running decode.
    with agent._model_lock:
        if "adapter" in weights:
            from peft import set_peft_model_state_dict

            from toolzoo.trainer.lora import LoRAConfig, apply_lora, is_peft

            if not is_peft(agent.model):
                agent.model = apply_lora(agent.model, LoRAConfig(**weights["lora"]))
            set_peft_model_state_dict(agent.model, weights["adapter"])
        else:
            agent.model.load_state_dict(weights["state_dict"])
    kind.policy_version = version  # the per-episode sampling seeds' version


# --------------------------------------------------------------------------- the learner actor


class GRPOLearner:
    """Implements ``toolzoo.cluster.learner.LearnerActor`` with ``grpo_step``."""

    def __init__(self, config_json: str, files: dict[str, bytes], sources: dict[str, str],
                 start_version: int = 0, optimizer_state: dict | None = None, scheduler_state: dict | None = None,
                 old_logprobs: str = "recompute"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from toolzoo.trainer.loop import grpo_config

        self.cfg = cfg = TrainConfig.model_validate_json(config_json)
        torch.set_num_threads(cfg.threads or 1)
        self.device = resolve_device(cfg.device)
        with tempfile.TemporaryDirectory(prefix="tzckpt-") as tmp:
            path = unpack_checkpoint(files, Path(tmp))
            self.model = AutoModelForCausalLM.from_pretrained(path).to(self.device)
            self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.files = {k: v for k, v in files.items() if not k.endswith(_WEIGHT_FILES)}
        self.sources = sources
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        self.gcfg = grpo_config(cfg, old_logprobs)
        self.ref_model = None
        if cfg.beta > 0:  # as the local trainer: KL to the policy GRPO started from
            import copy

            self.ref_model = copy.deepcopy(self.model).eval().requires_grad_(False)
        # the local trainer's GRPO phase: constant rate, no warm-up
        self.opt, self.sched = make_optimizer(self.model.parameters(), cfg.learning_rate, 0, False, cfg.steps)
        if optimizer_state is not None:
            self.opt.load_state_dict(optimizer_state)
            self.sched.load_state_dict(scheduler_state)
        self._version = start_version

    def version(self) -> int:
        return self._version

    def step(self, batch: list[Trajectory]) -> dict[str, Any]:
        """One GRPO step on whole groups (``group_size`` adjacent trajectories each)."""
        from toolzoo.trainer.grpo import grpo_step
        from toolzoo.trainer.loop import group_rollouts

        t0 = time.perf_counter()
        cfg, g = self.cfg, self.cfg.group_size
        lags = [self._version - int(t.meta.get(VERSION_KEY, 0)) for t in batch]
        rollouts, successes = [], []
        for i in range(0, len(batch), g):
            group = batch[i:i + g]
            successes += [float(t.outcome.success) for t in group]
            rollouts += group_rollouts(cfg, group, self.tokenizer, self.sources)
        lr = self.opt.param_groups[0]["lr"]
        stats = grpo_step(self.model, self.opt, rollouts, self.gcfg, pad_id=self.pad_id, ref_model=self.ref_model)
        self.sched.step()
        row = stats.model_dump()
        row.update(success=sum(successes) / max(1, len(successes)), lr=lr, policy_version=self._version,
                   lag_max=max(lags), lag_mean=sum(lags) / len(lags), episodes=len(batch),
                   learner_s=round(time.perf_counter() - t0, 4))
        self._version += 1
        return row

    def weights(self) -> dict[str, Any]:
        from toolzoo.cluster.ray_rollouts import policy_weights

        return policy_weights(self.model, self.files, self._version)

    def trainer_state(self) -> dict[str, Any]:
        """What a checkpoint needs beyond the weights (for ``--resume``)."""
        opt = self.opt.state_dict()  # its per-parameter dicts are the optimizer's own: copy, never edit
        opt["state"] = {i: {k: v.to("cpu", copy=True) if torch.is_tensor(v) else v for k, v in s.items()}
                        for i, s in opt["state"].items()}
        return {"optimizer": opt, "scheduler": self.sched.state_dict(), "version": self._version}


# --------------------------------------------------------------------------- groups into the feed


class GroupAssembler:
    """Collects a group's ``size`` episodes as they finish (any order, any worker); a whole
    group enters the feed at once, every member tagged with the group's *oldest* policy
    version, so the feed keeps or drops the group as one and never splits it. Groups with an
    infra or user-simulator failure (or an episode whose workers kept dying) are dropped: not
    the policy's doing, no signal to learn from (as the local trainer)."""

    def __init__(self, size: int, feed: TrajectoryFeed):
        self.size = size
        self.feed = feed
        self._open: dict[int, dict[int, Trajectory | None]] = {}
        self.dropped = 0
        self.by_worker: dict[str, int] = {}

    def episodes(self) -> int:
        """Finished episodes waiting for the rest of their group."""
        return sum(len(m) for m in self._open.values())

    def add(self, group: int, member: int, traj: Trajectory | None) -> bool:
        """Record one finished episode (None: it could not be run); True when its group was
        completed and went into the feed."""
        members = self._open.setdefault(group, {})
        members[member] = traj
        if traj is not None and "worker" in traj.meta:
            self.by_worker[traj.meta["worker"]] = self.by_worker.get(traj.meta["worker"], 0) + 1
        if len(members) < self.size:
            return False
        del self._open[group]
        trajs = [members[k] for k in range(self.size)]
        if not all(t is not None and counts_for_policy(t.outcome) for t in trajs):
            self.dropped += 1
            return False
        tag = min(int(t.meta.get(VERSION_KEY, 0)) for t in trajs)
        for t in trajs:
            self.feed.put(t, version=tag)
        return True


# --------------------------------------------------------------------------- driver helpers


def worker_run_config(cfg: TrainConfig, base: Path, out: Path, concurrency: int,
                      privileged: str | None = None) -> RunConfig:
    """The Run config rollout workers execute: the policy as an HF agent (sampling; its own
    seeded generator per episode with ``rollout.seed_per_episode``; the task's PI in view with
    ``privileged``), the scripted user, the Train config's sandbox section and judges, the
    training episode limits."""
    agent = {"kind": "hf", "path": str(base), "temperature": cfg.rollout.temperature,
             "max_new_tokens": cfg.rollout.max_new_tokens}
    if cfg.rollout.seed_per_episode:
        agent["episode_seed"] = cfg.seed
    if privileged:
        agent["privileged"] = privileged
    return RunConfig(
        run=cfg.train, domains=cfg.domains, lengths=cfg.lengths, generator=cfg.generator, trials=cfg.group_size,
        seed=cfg.seed, agent=agent, user={"kind": "scripted", "mode": cfg.user_mode}, sandbox=cfg.sandbox,
        judges=cfg.judges, judge_combine=cfg.judge_combine, judge_weights=cfg.judge_weights,
        limits=Limits(max_turns=cfg.max_turns, wall_time_s=cfg.episode_wall_time_s), concurrency=concurrency, output=str(out / "rollouts"), report=False)


# --------------------------------------------------------------------------- the driver


def train_on_ray(cfg: TrainConfig, *, address: str | None, resume: bool = False, progress: bool = True,
                 max_off_policy_steps: int | None = None, num_workers: int | None = None,
                 worker_cpus: float = 1.0, learner_options: dict[str, Any] | None = None,
                 num_cpus: int | None = None, object_store_mb: int | None = None) -> dict[str, Any]:
    """Train ``cfg`` with its episodes on Ray; ``address`` None starts a local cluster sized
    for this machine (``init_ray``). Returns the local trainer's summary (steps, seconds, last
    row, final eval, paths) plus a ``ray`` block.

    Every algorithm runs its own phases in this driver (``trainer.loop.train``, the one
    training driver) with :class:`~toolzoo.cluster.ray_rollouts.RayRollouts` as the rollout
    executor: lock-step, on-policy. GRPO on full weights with ``max_off_policy_steps`` >= 1
    (the default) instead trains in a learner actor fed while rollouts continue, each group
    at most that many policy versions old (bounded staleness: rollouts and updates overlap).

    ``max_off_policy_steps``: default ``cfg.max_off_policy_steps``. ``num_workers``: default
    the cluster's CPUs (less the learner's) / worker_cpus. ``learner_options``: Ray actor
    options; default one GPU when the cluster has GPUs, else no CPU reservation (it must not
    starve the rollout workers on a small machine)."""
    from toolzoo.trainer.loop import train

    if cfg.algorithm == "sft":  # nothing to roll out: Ray would add only overhead
        log.warning("algorithm sft has no rollouts: training in this process")
        return train(cfg, resume=resume, progress=progress)
    if cfg.rollout.backend != "hf":
        raise ValueError(f"--ray rollout workers sample with the hf agent; rollout.backend {cfg.rollout.backend!r} "
                         "is for training without --ray")
    max_off = max_off_policy_steps if max_off_policy_steps is not None else cfg.max_off_policy_steps
    if cfg.algorithm == "grpo" and cfg.lora is None and max_off > 0:
        return _grpo_with_learner(cfg, address=address, resume=resume, progress=progress, max_off=max_off,
                                  num_workers=num_workers, worker_cpus=worker_cpus, learner_options=learner_options,
                                  num_cpus=num_cpus, object_store_mb=object_store_mb)
    from toolzoo.cluster.ray_rollouts import RayRollouts

    def rollouts(run) -> RayRollouts:
        return RayRollouts(run, address=address, num_workers=num_workers, worker_cpus=worker_cpus,
                           num_cpus=num_cpus, object_store_mb=object_store_mb)

    return train(cfg, resume=resume, progress=progress, rollouts=rollouts, label="train (ray)")


def _grpo_with_learner(cfg: TrainConfig, *, address: str | None, resume: bool, progress: bool, max_off: int,
                       num_workers: int | None, worker_cpus: float, learner_options: dict[str, Any] | None,
                       num_cpus: int | None, object_store_mb: int | None) -> dict[str, Any]:
    """GRPO whose updates run in a learner actor while rollouts continue (bounded staleness)."""
    import ray

    from toolzoo.cluster.ray_setup import init_ray, shutdown_ray
    from toolzoo.trainer.driver import TrainRun, optimizer_state
    from toolzoo.trainer.loop import run_phase, sft_phase

    # The same setup, logging, checkpoints and summary as local training (trainer.driver);
    # only the GRPO phase's rollouts and updates run on Ray.
    run = TrainRun(cfg, resume=resume, progress=progress, label="train (ray)")
    ctx, state = run.ctx, run.state
    ray_info: dict[str, Any] = {}
    try:
        run.begin(cfg.sft.steps + cfg.steps)
        if run.step < cfg.sft.steps:
            # the local trainer's SFT phase, in the driver: same batches, optimizer and schedule
            warmup = sft_phase(ctx, cfg.sft.steps, cfg.sft.learning_rate, run.convs())
            run.step = run_phase(ctx, warmup, 0, run.step, state,
                                 lambda row, opt, sched: run.emit(row, optimizer_state(row, opt, sched)))
        if run.step < run.total:
            grpo_state = state if state is not None and state.get("phase") == "grpo" else None
            files = _packed(ctx.model, ctx.tokenizer)
            was_up = ray.is_initialized()
            info = init_ray(address, num_cpus=num_cpus, object_store_mb=object_store_mb)
            try:
                ray_info = _grpo_on_ray(cfg, ctx.model, files, ctx.tasks, ctx.rng, run.step, grpo_state, run.emit,
                                        out=run.out, base=run.start_path, max_off=max_off, num_workers=num_workers,
                                        worker_cpus=worker_cpus, learner_options=learner_options,
                                        cluster_cpus=info.cpus)
                ray_info["address"] = info.address
            finally:
                if not was_up:  # stop the local cluster we started, or leave the one we joined
                    shutdown_ray()
            run.step = run.total
        final = run.save_final()
    finally:
        run.close()
    return run.summary(final, ray=ray_info)


def _packed(model, tokenizer) -> dict[str, bytes]:
    """The model as it is now (after any SFT warm-up), as files to ship to the learner."""
    with tempfile.TemporaryDirectory(prefix="tzstart-") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        return pack_checkpoint(Path(tmp), weights=True)


def _grpo_on_ray(cfg: TrainConfig, model, files, tasks, rng, step: int, state, emit, *, out: Path, base: Path,
                 max_off: int, num_workers: int | None, worker_cpus: float, learner_options,
                 cluster_cpus: float) -> dict[str, Any]:
    import ray

    from toolzoo.cluster.actors import rollout_pool, wait_any
    from toolzoo.tools.zoo import get_domain
    from toolzoo.trainer.loop import train_job

    g, total = cfg.group_size, cfg.sft.steps + cfg.steps
    batch_eps = cfg.batch * g
    if learner_options is None:
        has_gpu = cfg.device != "cpu" and ray.cluster_resources().get("GPU", 0) >= 1
        learner_options = {"num_gpus": 1, "num_cpus": 1} if has_gpu else {"num_cpus": 0}
    if num_workers is None:
        spare = cluster_cpus - float(learner_options.get("num_cpus", 0))
        num_workers = max(1, int(spare // worker_cpus))
    feed = TrajectoryFeed(max_off, capacity=max(4096 // g, 4 * cfg.batch) * g)  # whole groups only
    groups = GroupAssembler(g, feed)
    sources = {get_domain(d).name: d for d in cfg.domains}  # the learner finds YAML domains' tools
    # Off-policy episodes: the clipped ratio against their sampling log-probs bounds the update.
    old_logprobs = "sampled" if max_off > 0 else "recompute"
    learner = ray.remote(GRPOLearner).options(max_restarts=0, **learner_options).remote(
        cfg.model_dump_json(), ray.put(files), sources, step - cfg.sft.steps,
        state["optimizer"] if state else None, state["scheduler"] if state else None, old_logprobs)
    version = int(ray.get(learner.version.remote()))
    weights_ref = learner.weights.remote()
    run_cfg = worker_run_config(cfg, base, out, concurrency=max(1, math.ceil(batch_eps * (max_off + 1) / num_workers)))
    pool = rollout_pool(run_cfg, f"{cfg.train}-train", size=num_workers, worker_cpus=worker_cpus,
                        load_weights=load_policy_weights, judge=True)
    # An async actor may start an episode queued after ``set_policy`` while that call still
    # waits for the weights to arrive; the episode would be tagged (truthfully) with the old
    # version and soon go stale. So new episodes are only started once every worker has the
    # current weights (in flight ones run on).
    syncing = [h.set_policy.remote(version, weights_ref) for h in pool.handles]
    # a replacement for a dead worker starts on the current weights, and runs nothing before
    pool.on_new_actor = lambda handle: syncing.append(handle.set_policy.remote(version, weights_ref))
    next_group = failed = submitted = 0
    step_ref, sent_wait = None, 0.0
    idle_since = last_done = time.perf_counter()

    def dispatch() -> None:
        nonlocal step_ref, sent_wait
        batch = feed.take(batch_eps, version) if step < total else None
        if batch is not None:
            sent_wait = time.perf_counter() - idle_since
            step_ref = learner.step.remote(batch)

    try:
        while step < total:
            # Episodes started now are tagged ``version``; they are usable for max_off more
            # steps, one fewer while a step is in flight. More than that would only go stale.
            budget = batch_eps * (max_off + (0 if step_ref is not None else 1))
            if syncing:
                syncing = ray.wait(syncing, num_returns=len(syncing), timeout=0)[1]
            while not syncing and pool.pending() + groups.episodes() + len(feed) + g <= budget:
                d, seed, length = train_job(cfg, tasks, rng)
                for k in range(g):  # unique trial numbers: unique episode ids across groups
                    pool.submit((next_group, k), Job(d, length, seed, next_group * g + k))
                next_group += 1
                submitted += g
            if not syncing:
                pool.fill()
            ready = wait_any(pool.refs() + ([step_ref] if step_ref is not None else []) + syncing)
            for done in pool.collect(ready):
                gid, k = done.key
                failed += done.error is not None
                groups.add(gid, k, None if done.error is not None else Trajectory.model_validate_json(done.value))
            if step_ref is None or step_ref not in ready:
                if step_ref is None:
                    dispatch()
                continue
            row = ray.get(step_ref)
            step_ref, idle_since, wait = None, time.perf_counter(), sent_wait
            version = int(ray.get(learner.version.remote()))
            weights_ref = learner.weights.remote()
            syncing = [h.set_policy.remote(version, weights_ref) for h in pool.handles]
            step += 1
            checkpoint = bool(cfg.checkpoint_every) and step % cfg.checkpoint_every == 0 and step != total
            tstate = ray.get(learner.trainer_state.remote()) if checkpoint else None
            if checkpoint or step == total or (cfg.eval.every and step % cfg.eval.every == 0):
                model.load_state_dict(ray.get(weights_ref)["state_dict"])  # the driver's copy: eval, saving
            dispatch()  # the learner's next step runs while the driver evaluates and saves
            now = time.perf_counter()
            row = {"step": step, "phase": "grpo", **row, "groups_dropped": groups.dropped,
                   "wait_s": round(wait, 4), "seconds": round(now - last_done, 4)}
            last_done = now
            emit(row, {"phase": "grpo", "optimizer": tstate["optimizer"], "scheduler": tstate["scheduler"]}
                 if tstate else None)
    finally:
        pool.shutdown()
        ray.kill(learner, no_restart=True)
    return {"workers": num_workers, "max_off_policy_steps": max_off, "old_logprobs": old_logprobs,
            "episodes_submitted": submitted, "episodes_by_worker": groups.by_worker,
            "groups_dropped": groups.dropped, "failed_rollouts": failed, "feed": feed.stats.model_dump(),
            "worker_restarts": pool.restarts, "redispatched": pool.redispatched,
            "learner_options": learner_options}


__all__ = ["GRPOLearner", "GroupAssembler", "train_on_ray", "load_policy_weights"]
