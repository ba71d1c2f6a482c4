"""The kubernetes tier's control flow against FakeKubernetesAPI, a test double of the API:
real MCP sessions to a local ``toolzoo serve-mcp --transport http`` per fake pod."""

import asyncio
import time

import pytest
from kubernetes.client.exceptions import ApiException

from toolzoo.sandbox.base import LABEL_RUN, SandboxLimits, SandboxSpec, create_sandbox
from toolzoo.sandbox.k8s_double import FakeKubernetesAPI
from toolzoo.sandbox.k8s_manifests import sandbox_pod_manifest
from toolzoo.sandbox.kubernetes import SandboxStartError, create_kubernetes, gc_kubernetes, use_api
from toolzoo.tools.session import SessionClosed

from .checks import check_sandbox

pytestmark = pytest.mark.anyio

FAST = {"backoff_base_s": 0.01, "ready_timeout_s": 20}


def _spec(run="run-a", episode="ep-1", domain="retail_orders", **options):
    return SandboxSpec(backend="kubernetes", domain=domain, seed=1, run_id=run, episode_id=episode,
                       options=FAST | options)


def _pods(api, selector="app.kubernetes.io/part-of=toolzoo"):
    return [p["metadata"]["name"] for p in api.list("Pod", "toolzoo", selector)]


async def test_create_watch_call_exec_close(fake_api):
    sb = await create_kubernetes(_spec(), api=fake_api)
    try:
        # readiness came from one watch, not from polling the pod
        methods = [m for m, what in fake_api.calls if what == f"Pod/{sb.pod_name}"]
        assert methods == ["create", "watch"]
        assert fake_api.get("Pod", "toolzoo", sb.pod_name)["status"]["phase"] == "Running"
        await check_sandbox(sb)
    finally:
        await sb.close()
    assert _pods(fake_api) == []  # close deleted the pod
    assert fake_api.pod_process("toolzoo", sb.pod_name) is None
    with pytest.raises(SessionClosed):
        await sb.exec(["true"])


async def test_create_sandbox_dispatches_to_the_tier(fake_api):
    use_api(fake_api)
    try:
        sb = await create_sandbox(_spec())
        assert (await sb.session.call_tool("get_order", {"order_id": "nope"})).is_error
        await sb.close()
    finally:
        use_api(None)


async def test_backoff_on_429_and_5xx_then_success(fake_api):
    fake_api.fail("create", 429, 500, 503)
    fake_api.fail("delete", 502)
    sb = await create_kubernetes(_spec(), api=fake_api)
    assert sb.backoff.retries == 3
    creates = [what for m, what in fake_api.calls if m == "create"]
    assert creates[:3] == [creates[0]] * 3  # the network policy was retried, then the pod made once
    await sb.close()
    assert sb.backoff.retries == 4 and _pods(fake_api) == []


async def test_retry_after_is_honoured(fake_api):
    fake_api.fail("create", 429, retry_after=0.4)
    t0 = time.monotonic()
    sb = await create_kubernetes(_spec(), api=fake_api)
    assert time.monotonic() - t0 >= 0.4
    await sb.close()


async def test_client_errors_are_not_retried_and_give_up_after_max_attempts(fake_api):
    fake_api.fail("create", 403)
    with pytest.raises(ApiException) as err:
        await create_kubernetes(_spec(), api=fake_api)
    assert err.value.status == 403 and len(fake_api.calls) == 1
    fake_api.fail("create", *[500] * 3)
    with pytest.raises(ApiException):
        await create_kubernetes(_spec(max_attempts=3), api=fake_api)
    assert _pods(fake_api) == []


async def test_failed_pod_is_an_infra_error_and_is_cleaned_up():
    api = FakeKubernetesAPI(pod_behaviour="fail")
    with pytest.raises(SandboxStartError, match="ErrImagePull"):
        await create_kubernetes(_spec(), api=api)
    assert _pods(api) == []


async def test_never_ready_pod_times_out_and_is_cleaned_up():
    api = FakeKubernetesAPI(pod_behaviour="never_ready")
    t0 = time.monotonic()
    with pytest.raises(SandboxStartError, match="not ready"):
        await create_kubernetes(_spec(ready_timeout_s=0.5), api=api)
    assert time.monotonic() - t0 < 5 and _pods(api) == []


async def test_active_deadline_kills_the_pod(fake_api):
    # long enough for the pod's server to come up on a loaded 2-core machine, short enough to wait for
    spec = _spec().model_copy(update={"limits": SandboxLimits(wall_time_s=8)})
    sb = await create_kubernetes(spec, api=fake_api)
    proc = fake_api.pod_process("toolzoo", sb.pod_name)
    for _ in range(400):
        if fake_api.get("Pod", "toolzoo", sb.pod_name)["status"]["phase"] == "Failed":
            break
        await asyncio.sleep(0.05)
    pod = fake_api.get("Pod", "toolzoo", sb.pod_name)
    assert pod["status"]["reason"] == "DeadlineExceeded" and proc.poll() is not None
    # (a call on the dead session is not made here: over streamable HTTP the MCP client turns
    # the lost server into a CancelledError of the caller -- reported to the session's owner)
    r = await sb.exec(["true"])  # the tier's own deadline check answers without the API
    assert r.timed_out and "deadline" in r.stderr
    await sb.close()


async def test_gc_by_run_label_after_a_driver_crash(fake_api):
    a = [await create_kubernetes(_spec(run="crashed", episode=f"e{i}"), api=fake_api) for i in range(2)]
    b = await create_kubernetes(_spec(run="alive"), api=fake_api)
    # the driver "crashes": nobody calls close() on run `crashed`
    deleted = gc_kubernetes("crashed", api=fake_api)
    assert sorted(d for d in deleted if d.startswith("Pod/")) == sorted(f"Pod/{s.pod_name}" for s in a)
    assert any(d.startswith("NetworkPolicy/") for d in deleted)
    assert _pods(fake_api, f"{LABEL_RUN}=crashed") == [] and _pods(fake_api) == [b.pod_name]
    # without a run id only expired sandboxes go
    assert gc_kubernetes(api=fake_api) == []
    assert gc_kubernetes(api=fake_api, now=time.time() + 10_000) == [f"Pod/{b.pod_name}", f"Secret/{b.secret_name}"]
    await b.close()  # deleting an already-deleted pod is fine


async def test_warm_pool_claim(fake_api):
    template = sandbox_pod_manifest(_spec(), time.time() + 600, "template", "toolzoo")
    fake_api.add_warm_pool("toolzoo-sandbox", "toolzoo", template)
    spec = _spec(warm_pool="toolzoo-sandbox").model_copy(update={"seed": 5})
    sb = await create_kubernetes(spec, api=fake_api)
    claims = fake_api.list("SandboxClaim", "toolzoo", f"{LABEL_RUN}=run-a")
    assert [c["metadata"]["name"] for c in claims] == [sb.claim_name]
    from toolzoo.tools.server import DomainServer
    from toolzoo.tools.zoo import get_domain
    # the warm server (started with seed 1) was reseeded to the episode's seed
    assert await sb.session.state_hash() == DomainServer(get_domain("retail_orders"), seed=5).runtime.state.hash()
    await sb.close()
    assert fake_api.list("SandboxClaim", "toolzoo", "") == [] and _pods(fake_api) == []


async def test_warm_pool_serving_another_domain_is_refused(fake_api):
    template = sandbox_pod_manifest(_spec(domain="bank_accounts"), time.time() + 600, "t", "toolzoo")
    fake_api.add_warm_pool("pool", "toolzoo", template)
    with pytest.raises(SandboxStartError, match="serves domain"):
        await create_kubernetes(_spec(warm_pool="pool"), api=fake_api)
    assert fake_api.list("SandboxClaim", "toolzoo", "") == []
