"""Start or join a Ray cluster, sized for small machines.

A local cluster on a laptop or a 2-core CI box would otherwise reserve ~30% of RAM for the
object store, start the dashboard and write under /tmp/ray with socket paths that can exceed
the 107-byte AF_UNIX limit when the temp dir is deep. toolzoo moves only small JSON
trajectories through Ray, so a 150 MB object store is plenty.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pydantic import BaseModel

DEFAULT_OBJECT_STORE_MB = 150
DEFAULT_TEMP_DIR = "/tmp/tzray"  # short: Ray puts unix sockets under <temp>/session_*/sockets/
ENV_TEMP_DIR = "TOOLZOO_RAY_TMP"


class RayInfo(BaseModel):
    address: str  # the GCS address other drivers can join with
    local: bool  # this process started the cluster
    cpus: float
    temp_dir: str | None = None


_started: RayInfo | None = None


def init_ray(address: str | None = None, *, num_cpus: int | None = None, object_store_mb: int | None = None,
             temp_dir: str | None = None) -> RayInfo:
    """Connect to the cluster at ``address`` (``host:port`` or ``ray://host:port``), or start a
    local one capped for a small machine when ``address`` is None. Calling it again returns the
    cluster already joined (the arguments of the first call win)."""
    import ray

    global _started
    if ray.is_initialized():
        if _started is None:  # somebody else (a test, a notebook) initialised Ray
            _started = _describe(local=False, temp_dir=None)
        return _started
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False, "include_dashboard": False}
    if address:
        ray.init(address=address, **quiet)
        _started = _describe(local=False, temp_dir=None)
        return _started
    tmp = temp_dir or os.environ.get(ENV_TEMP_DIR) or DEFAULT_TEMP_DIR
    os.makedirs(tmp, exist_ok=True)
    # address="local" forces a fresh cluster even when RAY_ADDRESS is set in the environment.
    ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1,
             object_store_memory=(object_store_mb or DEFAULT_OBJECT_STORE_MB) * 1024 * 1024,
             _temp_dir=tmp, **quiet)
    _started = _describe(local=True, temp_dir=tmp)
    return _started


def shutdown_ray() -> None:
    import ray

    global _started
    ray.shutdown()
    _started = None


def _describe(*, local: bool, temp_dir: str | None) -> RayInfo:
    import ray

    ctx = ray.get_runtime_context()
    return RayInfo(address=ctx.gcs_address, local=local, cpus=ray.cluster_resources().get("CPU", 0.0),
                   temp_dir=temp_dir)
