"""The kubernetes tier's admin channel, against the API test double (which runs the pod's real
tool server, from the manifest the tier made): a Secret per sandbox mounted only in the tool
server's container, never in the pod's env, command or args; ``exec`` in the other container;
a client on the pod's port without the secret -- what code in the pod can be -- sees exactly the
domain's tools and cannot snapshot, reset or read the state; close deletes the Secret."""

from __future__ import annotations

import base64
import json

import pytest
from mcp import Client

from toolzoo.sandbox.base import SandboxSpec
from toolzoo.sandbox.k8s_double import FakeKubernetesAPI
from toolzoo.sandbox.k8s_manifests import CONTAINER, EXEC_CONTAINER, SECRET_KEY, SECRET_VOLUME
from toolzoo.sandbox.kubernetes import create_kubernetes
from toolzoo.tools.server import ADMIN_META_KEY
from toolzoo.tools.zoo import get_domain

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def fake_api():
    api = FakeKubernetesAPI()
    yield api
    api.close()


def _spec(**options) -> SandboxSpec:
    return SandboxSpec(backend="kubernetes", domain="bank_accounts", seed=4, run_id="adm", episode_id="e1",
                       options={"backoff_base_s": 0.01, "ready_timeout_s": 20} | options)


async def test_secret_is_mounted_only_in_the_tool_server_and_refused_without_it(fake_api):
    sb = await create_kubernetes(_spec(), api=fake_api)
    try:
        pod = fake_api.get("Pod", "toolzoo", sb.pod_name)
        secret = fake_api.get("Secret", "toolzoo", sb.secret_name)
        assert base64.b64decode(secret["data"][SECRET_KEY]).decode() == sb.admin_secret
        assert secret["metadata"]["labels"]["toolzoo.dev/run"] == "adm"
        # nowhere in the pod's spec but as a volume reference
        assert sb.admin_secret not in json.dumps(pod)
        containers = {c["name"]: c for c in pod["spec"]["containers"]}
        assert set(containers) == {CONTAINER, EXEC_CONTAINER}
        mounted = {c: {m["name"] for m in containers[c]["volumeMounts"]} for c in containers}
        assert SECRET_VOLUME in mounted[CONTAINER] and SECRET_VOLUME not in mounted[EXEC_CONTAINER]
        assert containers[EXEC_CONTAINER]["securityContext"]["runAsUser"] != 0

        # the driver's own admin calls work
        before = await sb.session.state_hash()
        snap = await sb.snapshot()
        assert set(snap) == set(get_domain("bank_accounts").spec.state)

        # code in the pod shares its network: it reaches the port, but not the admin tools
        url = f"http://127.0.0.1:{fake_api._pods[('toolzoo', sb.pod_name)].port}/mcp"
        domain_tools = {t.spec.name for t in get_domain("bank_accounts").tools.values()}
        for meta in (None, {ADMIN_META_KEY: "not-the-secret-0123456789"}):
            async with Client(url) as agent:
                listed = {t.name for t in (await agent.list_tools(meta=meta, cache_mode="bypass")).tools}
                assert listed == domain_tools
                assert (await agent.list_resources(meta=meta, cache_mode="bypass")).resources == []
                for name, args in (("_toolzoo_reset", {"seed": 0}), ("_toolzoo_snapshot", {})):
                    r = await agent.call_tool(name, args, meta=meta)
                    assert r.is_error and "unknown tool" in r.content[0].text
        assert await sb.session.state_hash() == before

        # exec and files go to the agent's container, never the tool server's
        await sb.exec(["true"])
        await sb.write_file("note.txt", b"x")
        assert fake_api.exec_containers and set(fake_api.exec_containers) == {EXEC_CONTAINER}
    finally:
        await sb.close()
    assert ("Secret", "toolzoo", sb.secret_name) not in fake_api.objects


async def test_warm_pool_pods_use_the_pools_secret(fake_api):
    from toolzoo.sandbox.k8s_manifests import POOL_SECRET, render_sandbox_pod

    template = render_sandbox_pod("bank_accounts", "warm-pool", "warm", 3600)
    fake_api.add_warm_pool("toolzoo-sandbox", "toolzoo", template)
    sb = await create_kubernetes(_spec(warm_pool="toolzoo-sandbox"), api=fake_api)
    try:
        pool = fake_api.get("Secret", "toolzoo", POOL_SECRET)
        assert sb.admin_secret == base64.b64decode(pool["data"][SECRET_KEY]).decode()
        assert sb.secret_name is None  # not ours: close must leave the pool's Secret
        assert await sb.session.state_hash()
    finally:
        await sb.close()
    assert ("Secret", "toolzoo", POOL_SECRET) in fake_api.objects


async def test_a_pod_whose_secret_is_missing_never_starts(fake_api):
    from toolzoo.sandbox.k8s_manifests import render_sandbox_pod

    template = render_sandbox_pod("bank_accounts", "warm-pool", "warm", 3600)
    fake_api.add_warm_pool("pool", "toolzoo", template)
    fake_api.delete("Secret", "toolzoo", "toolzoo-sandbox-admin")
    with pytest.raises(Exception):
        await create_kubernetes(_spec(warm_pool="pool", ready_timeout_s=5), api=fake_api)
