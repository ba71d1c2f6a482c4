"""Episodes per second: the plain asyncio Runner vs `run --ray` with 1 and with 2 rollout workers,
measured in one process on one local Ray cluster (capped for small machines).

    python bench/ray_scaling.py [--episodes-per-length 50] [--lengths 1 2 4 8] [--cpus 2]

Ratios printed: ray1/asyncio (Ray's overhead: driver, actor hop, JSON), ray2/ray1 (scaling).
Each row is a full run, actor start included (printed separately too); the cluster itself is
started once, before the rows. On a shared 2-core box, run it when the machine is idle:
the driver, raylet, GCS and the workers all compete for the same two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time

from toolzoo.envs.run_config import RunConfig
from toolzoo.envs.runner import Runner


def config(out: str, args: argparse.Namespace) -> RunConfig:
    return RunConfig(run="ray-bench", domains=[args.domain], lengths=args.lengths,
                     tasks_per_length=args.episodes_per_length, trials=1,
                     agent={"kind": "noisy_oracle", "p": 0.1}, sandbox={"backend": "inline"},
                     concurrency=args.concurrency, output=out, report=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--domain", default="retail_orders")
    p.add_argument("--lengths", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--episodes-per-length", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    p.add_argument("--repeats", type=int, default=2, help="best of N per row")
    args = p.parse_args()

    from toolzoo.cluster.ray_runner import RayRunner
    from toolzoo.cluster.ray_setup import init_ray, shutdown_ray

    t0 = time.perf_counter()
    init_ray(None, num_cpus=args.cpus, object_store_mb=150)
    print(f"ray cluster start: {time.perf_counter() - t0:.1f}s ({args.cpus} CPUs)")
    import ray

    from toolzoo.cluster.actors import rollout_pool

    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            t = time.perf_counter()
            pool = rollout_pool(config(tmp, args), "bench", size=workers, worker_cpus=args.cpus / 2)
            ray.get([h.ping.remote() for h in pool.handles])
            print(f"start {workers} rollout actor(s): {time.perf_counter() - t:.1f}s (included in the rows below)")
            pool.shutdown()
    rows: dict[str, float] = {}
    warm: dict[str, float] = {}  # first to last episode: without process/actor start-up
    n = 0
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for name, workers in (("asyncio", 0), ("ray x1", 1), ("ray x2", 2)):
                out = os.path.join(tmp, f"{name.replace(' ', '')}-{rep}")
                cfg = config(out, args)
                stamps: list[float] = []
                mark = lambda _traj: stamps.append(time.perf_counter())  # noqa: E731
                t = time.perf_counter()
                if workers == 0:
                    summary = asyncio.run(Runner(cfg, on_episode=mark).run(progress=False))
                else:
                    summary = RayRunner(cfg, num_workers=workers, worker_cpus=args.cpus / 2,
                                        on_episode=mark).run(progress=False)
                dt = time.perf_counter() - t
                n = summary["episodes"]
                rows[name] = max(rows.get(name, 0.0), n / dt)
                warm[name] = max(warm.get(name, 0.0), (len(stamps) - 1) / (stamps[-1] - stamps[0]))
    shutdown_ray()
    print(f"{n} episodes per run ({args.domain}, lengths {args.lengths}, noisy_oracle, inline), best of {args.repeats}")
    print(f"  {'':8s} {'full run':>10s} {'warm':>10s}   episodes/s (warm: first to last episode)")
    for name in rows:
        print(f"  {name:8s} {rows[name]:10.1f} {warm[name]:10.1f}")
    for label, table in (("full run", rows), ("warm", warm)):
        print(f"{label}: ray x1 / asyncio = {table['ray x1'] / table['asyncio']:.2f} (Ray overhead)   "
              f"ray x2 / ray x1 = {table['ray x2'] / table['ray x1']:.2f} (scaling, 2 workers on {args.cpus} cores)   "
              f"ray x2 / asyncio = {table['ray x2'] / table['asyncio']:.2f}")


if __name__ == "__main__":
    main()
