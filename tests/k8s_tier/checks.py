"""Conformance-style checks of one kubernetes sandbox, shared by the test-double suite and the
real-cluster suite (the same assertions against either API)."""

from toolzoo.sandbox.kubernetes import KubernetesSandbox


async def check_sandbox(sb: KubernetesSandbox) -> None:
    tools = {t.name for t in await sb.session.list_tools()}
    assert {"get_order", "refund_order"} <= tools and not any(t.startswith("_toolzoo_") for t in tools)
    snap = await sb.snapshot()
    order = next(k for k, o in sorted(snap["orders"].items()) if o["status"] == "delivered")
    got = await sb.session.call_tool("get_order", {"order_id": order})
    assert not got.is_error and got.structured["status"] == "delivered"
    refunded = await sb.session.call_tool("refund_order", {"order_id": order})
    assert not refunded.is_error
    again = await sb.session.call_tool("refund_order", {"order_id": order})
    assert again.is_error and "not delivered" in again.content
    # restore puts the state back
    h = await sb.restore(snap)
    assert h == await sb.session.state_hash()
    assert (await sb.session.call_tool("get_order", {"order_id": order})).structured["status"] == "delivered"
    # exec and files
    r = await sb.exec(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=20)
    assert (r.stdout, r.stderr, r.exit_code, r.timed_out) == ("out\n", "err\n", 3, False)
    r = await sb.exec("cat", stdin="piped text", timeout=20)
    assert r.stdout == "piped text" and r.exit_code == 0
    r = await sb.exec(["sleep", "30"], timeout=1)
    assert r.timed_out and r.exit_code is None
    await sb.write_file("sub/data.bin", bytes(range(256)))
    assert await sb.read_file("sub/data.bin") == bytes(range(256))
