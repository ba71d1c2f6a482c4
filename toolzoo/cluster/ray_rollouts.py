"""Any algorithm's rollouts on Ray workers: the trainer's phases unchanged, their episodes
elsewhere.

:class:`RayRollouts` is a drop-in for ``trainer.loop.LocalRollouts`` (``__call__(tasks,
privileged)`` / ``updated(model)`` / ``close()``): the phases of SFT warm-ups, GRPO, π-Distill
and OPSD, their optimizer, schedule, seeds, logs and checkpoints all stay in the driver
(``trainer.driver.TrainRun``, the one training driver); only the episodes run on rollout
workers (``actors.RolloutWorker``: the Runner's per-episode machinery, the Train config's
sandbox section, the run's scorer, so rubric rewards are computed there as in ``toolzoo run``).

Lock-step: each call first gives every worker the policy as it is now (the full state dict,
or for a LoRA run the adapter's weights only: a few MB instead of the model), then runs the
call's tasks × ``group_size`` episodes and returns them in ``run_many``'s order. With
``rollout.seed_per_episode`` every episode samples from a generator seeded from (seed, policy
version, episode id) on whichever worker runs it, so a Ray run samples the very episodes of a
local run with the same config (tested: same losses at the first steps).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from toolzoo.core import Outcome, Trajectory
from toolzoo.envs.runner import Job, episode_id

log = logging.getLogger("toolzoo.cluster.train")


def policy_weights(model, files: dict[str, bytes], version: int) -> dict[str, Any]:
    """What a worker needs to act as ``model``: a LoRA model's adapter weights and config, else
    the full state dict (CPU copies); ``files``: config and tokenizer for workers on nodes
    without the starting checkpoint."""
    from toolzoo.trainer.lora import is_peft

    if is_peft(model):
        from peft import get_peft_model_state_dict

        cfg = model.peft_config["default"]
        lora = {"r": cfg.r, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout,
                "target_modules": sorted(cfg.target_modules) if isinstance(cfg.target_modules, set)
                else cfg.target_modules}
        sd = {k: v.detach().to("cpu", copy=True) for k, v in get_peft_model_state_dict(model).items()}
        return {"files": files, "adapter": sd, "lora": lora, "version": version}
    sd = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return {"files": files, "state_dict": sd, "version": version}


class RayRollouts:
    """Rollouts on a pool of Ray rollout workers (one pool per view: with and without PI).
    ``address`` None starts a local cluster sized for this machine on the first call; a
    cluster this object started is stopped by ``close``."""

    def __init__(self, run, *, address: str | None = None, num_workers: int | None = None, worker_cpus: float = 1.0,
                 num_cpus: int | None = None, object_store_mb: int | None = None):
        self.ctx, self.base, self.out = run.ctx, Path(run.start_path), Path(run.out)
        self.address, self.num_workers, self.worker_cpus = address, num_workers, worker_cpus
        self.num_cpus, self.object_store_mb = num_cpus, object_store_mb
        self.pools: dict[bool, Any] = {}
        self.shipped: dict[bool, int] = {}  # view -> policy version its workers hold
        self._weights: tuple[int, Any] | None = None  # (version, object ref)
        self._files: dict[str, bytes] | None = None  # config and tokenizer of the starting checkpoint
        self._syncing: list = []
        self._started = self._was_up = False
        self.info: dict[str, Any] = {}
        self.failed = 0

    # -- cluster and pools ----------------------------------------------------------------------
    def _start(self) -> None:
        import ray

        from toolzoo.cluster.ray_setup import init_ray

        self._was_up = ray.is_initialized()
        info = init_ray(self.address, num_cpus=self.num_cpus, object_store_mb=self.object_store_mb)
        self._started = True
        self.info = {"address": info.address}
        if self.num_workers is None:
            self.num_workers = max(1, int(info.cpus // self.worker_cpus))
        self.info["workers"] = self.num_workers

    def _pool(self, privileged: bool):
        if privileged not in self.pools:
            from toolzoo.cluster.actors import rollout_pool
            from toolzoo.cluster.ray_train import load_policy_weights, worker_run_config

            cfg = self.ctx.config
            per_call = cfg.batch * cfg.group_size
            run_cfg = worker_run_config(cfg, self.base, self.out, concurrency=math.ceil(per_call / self.num_workers),
                                        privileged=cfg.distill.privileged if privileged else None)
            self.pools[privileged] = rollout_pool(run_cfg, f"{cfg.train}-train", size=self.num_workers,
                                                  worker_cpus=self.worker_cpus, load_weights=load_policy_weights,
                                                  name="teacher" if privileged else "rollout", judge=True)
        return self.pools[privileged]

    def _weights_ref(self):
        import ray

        from toolzoo.cluster.ray_train import pack_checkpoint

        version = self.ctx.policy_version
        if self._weights is None or self._weights[0] != version:
            if self._files is None:
                self._files = pack_checkpoint(self.base, weights=False)
            self._weights = (version, ray.put(policy_weights(self.ctx.model, self._files, version)))
        return self._weights[1]

    def _sync(self, privileged: bool, pool) -> None:
        """Every worker of ``pool`` on the current policy before any episode of this call starts."""
        import ray

        version, ref = self.ctx.policy_version, self._weights_ref()
        if self.shipped.get(privileged) != version:
            ray.get([h.set_policy.remote(version, ref) for h in pool.handles])
            self.shipped[privileged] = version
        # a replacement for a dead worker gets the current weights before it runs anything
        pool.on_new_actor = lambda handle: self._syncing.append(handle.set_policy.remote(version, ref))

    # -- the executor -----------------------------------------------------------------------------
    def __call__(self, tasks, privileged: bool) -> list[Trajectory]:
        import ray

        from toolzoo.cluster.actors import wait_any

        if not self._started:
            self._start()
        g = self.ctx.config.group_size
        pool = self._pool(privileged)
        self._sync(privileged, pool)
        for i, task in enumerate(tasks):
            for k in range(g):  # trial k as run_many numbers them: the same episode ids
                pool.submit((i, k), Job(self.ctx.tasks.source(task), task.length, task.seed, k))
        got: dict[tuple[int, int], Trajectory] = {}
        while len(got) < len(tasks) * g:
            if self._syncing:
                ray.get(self._syncing)
                self._syncing.clear()
            pool.fill()
            for done in pool.collect(wait_any(pool.refs())):
                i, k = done.key
                if done.error is not None:  # its workers kept dying: not the policy's doing
                    self.failed += 1
                    got[done.key] = Trajectory(episode_id=episode_id(tasks[i], k), task=tasks[i], trial=k,
                                               outcome=Outcome.infra(f"rollout worker: {done.error}"))
                else:
                    got[done.key] = Trajectory.model_validate_json(done.value)
        return [got[(i, k)] for i in range(len(tasks)) for k in range(g)]

    def updated(self, model) -> None:
        self.ctx.policy_version += 1  # the next call ships the new weights

    def summary(self) -> dict[str, Any]:
        pools = list(self.pools.values())
        return {"ray": {**self.info, "failed_rollouts": self.failed,
                        "worker_restarts": sum(p.restarts for p in pools),
                        "redispatched": sum(p.redispatched for p in pools)}}

    def close(self) -> None:
        for pool in self.pools.values():
            pool.shutdown()
        self.pools.clear()
        if self._started and not self._was_up:  # stop the local cluster we started
            from toolzoo.cluster.ray_setup import shutdown_ray

            shutdown_ray()
        self._started = False
