"""The same checks against a real cluster, when KUBECONFIG is set (skipped otherwise).

Needs the toolzoo image loadable by the cluster (``spec.image`` from $TOOLZOO_K8S_IMAGE,
default toolzoo:latest) and the namespace from $TOOLZOO_K8S_NAMESPACE (default toolzoo)."""

import os

import pytest

from toolzoo.sandbox.base import SandboxSpec
from toolzoo.sandbox.kubernetes import KubernetesClientAPI, create_kubernetes, gc_kubernetes

from .checks import check_sandbox

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.k8s_real,
    pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="no Kubernetes cluster configured (set KUBECONFIG)"),
]


@pytest.fixture
def real_api():
    return KubernetesClientAPI.from_environment()


def _spec(run: str) -> SandboxSpec:
    return SandboxSpec(backend="kubernetes", domain="retail_orders", seed=1, run_id=run, episode_id="e1",
                       image=os.environ.get("TOOLZOO_K8S_IMAGE", "toolzoo:latest"),
                       options={"namespace": os.environ.get("TOOLZOO_K8S_NAMESPACE", "toolzoo"), "ready_timeout_s": 300})


async def test_real_cluster_conformance(real_api):
    sb = await create_kubernetes(_spec("toolzoo-test-conformance"), api=real_api)
    try:
        await check_sandbox(sb)
    finally:
        await sb.close()


async def test_real_cluster_gc_after_crash(real_api):
    sb = await create_kubernetes(_spec("toolzoo-test-gc"), api=real_api)
    deleted = gc_kubernetes("toolzoo-test-gc", api=real_api, namespace=sb.namespace)
    assert f"Pod/{sb.pod_name}" in deleted
    await sb.close()  # the pod is already gone: close tolerates that
