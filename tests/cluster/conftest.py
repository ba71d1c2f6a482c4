"""A real local Ray cluster, capped for this 2-core machine, started once per test module."""

from __future__ import annotations

import pytest

from toolzoo.envs.run_config import RunConfig

RAY_TMP = "/tmp/tzray-test"  # short: Ray's unix socket paths live under it


@pytest.fixture(scope="module")
def ray_cluster():
    pytest.importorskip("ray")
    from toolzoo.cluster.ray_setup import init_ray, shutdown_ray

    info = init_ray(None, num_cpus=2, object_store_mb=150, temp_dir=RAY_TMP)
    yield info
    shutdown_ray()


def make_config(output: str, *, tasks_per_length: int = 50, lengths: list[int] | None = None,
                p: float = 0.2, **extra) -> RunConfig:
    """4 lengths x 50 tasks = 200 noisy-oracle episodes on retail_orders, inline sandbox."""
    return RunConfig(run="raytest", domains=["retail_orders"], lengths=lengths or [1, 2, 4, 8],
                     tasks_per_length=tasks_per_length, trials=1, agent={"kind": "noisy_oracle", "p": p},
                     sandbox={"backend": "inline"}, concurrency=8, output=output, report=False, **extra)
