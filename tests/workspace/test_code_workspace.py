"""The code-workspace domain: tasks generated from it are solved by their reference solution
inside a process sandbox (bubblewrap when available), and its tools are confined and deterministic."""

import importlib.util
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from toolzoo.envs.taskgen import TaskGenerator
from toolzoo.tools.runtime import DomainRuntime, ToolError
from toolzoo.tools.state import seed_state, state_hash
from toolzoo.tools.workspace import confine
from toolzoo.tools.zoo import get_domain

HAS_PROCESS = importlib.util.find_spec("toolzoo.sandbox.process") is not None


@pytest.fixture
def runtime():
    domain = get_domain("code_workspace")
    return DomainRuntime(domain, seed_state(domain.spec, 4))


@pytest.mark.anyio
@pytest.mark.skipif(not HAS_PROCESS, reason="process tier not present")
@pytest.mark.parametrize("seed,length", [(0, 3), (2, 4)])
async def test_reference_solution_passes_inside_a_process_sandbox(seed, length):
    from toolzoo.sandbox.base import SandboxSpec
    from toolzoo.sandbox.process import create_process

    task = TaskGenerator(get_domain("code_workspace")).generate(seed, length)
    sb = await create_process(SandboxSpec(backend="process", domain="code_workspace", seed=seed,
                                          allow_unisolated=True))
    try:
        assert await sb.session.state_hash() == task.initial_hash
        for sub in task.subtasks:
            for step in sub.solution:
                result = await sb.session.call_tool(step.tool, step.args)
                assert not result.is_error, result.content
                if step.tool == "run_tests":
                    assert result.structured["status"] == "passing" or sub.template == "check_tests"
            if sub.answer is not None and sub.template == "evaluate":
                assert result.structured["stdout"].strip() == str(sub.answer)
        final = await sb.snapshot()
        assert state_hash(final) == task.expected_final_hash
        listing = await sb.exec(["ls"], timeout=20)
        assert "mod_0.py" in listing.stdout  # the seeded files were materialised in the sandbox's workspace
    finally:
        await sb.close()


def test_fix_makes_tests_pass_and_editing_tests_does_not(runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLZOO_WORKSPACE", str(tmp_path))
    mods = runtime.state.data["modules"]
    buggy = next(k for k, r in sorted(mods.items()) if r["bug"] != "none")
    r = runtime.call_sync("run_tests", {"module": buggy})
    assert r.structured["status"] == "failing"
    assert runtime.state.data["modules"][buggy]["status"] == "failing"
    # cheating: overwrite the test with a passing one -- run_tests restores the canonical test
    runtime.call_sync("write_file", {"path": f"tests/test_{buggy}.py", "content": "print('ok')\n"})
    assert runtime.call_sync("run_tests", {"module": buggy}).structured["status"] == "failing"
    rec = runtime.state.data["modules"][buggy]
    fixed = f"def {rec['fn']}(x):\n    return {rec['a']} * x + {rec['b']}\n"
    assert not runtime.call_sync("write_file", {"path": rec["path"], "content": fixed}).is_error
    assert runtime.call_sync("run_tests", {"module": buggy}).structured["status"] == "passing"
    assert (tmp_path / rec["path"]).read_text() == fixed


def test_run_python_is_deterministic_and_capped(runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLZOO_WORKSPACE", str(tmp_path))
    code = "import os; print(os.getcwd()); print(open('mod_0.py').read()[:3])"
    a = runtime.call_sync("run_python", {"code": code})
    b = runtime.call_sync("run_python", {"code": code})
    assert a.structured == b.structured and str(tmp_path) not in a.content
    slow = runtime.call_sync("run_python", {"code": "import time; print('started', flush=True); time.sleep(30)",
                                             "timeout_s": 0.5})
    assert slow.is_error and "timed out" in slow.content and "started" in slow.content
    big = runtime.call_sync("run_shell", {"command": "yes | head -c 100000"})
    assert big.structured["truncated"] and len(big.structured["stdout"]) < 100000
    endless = runtime.call_sync("run_shell", {"command": "yes", "timeout_s": 20})
    assert not endless.is_error and endless.structured["truncated"]  # stopped at the cap, not the timeout


def test_paths_outside_the_workspace_are_refused(runtime, tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLZOO_WORKSPACE", str(tmp_path / "ws"))
    (tmp_path / "secret").write_text("s")
    for path in ("../secret", "/etc/passwd", str(tmp_path / "secret")):
        r = runtime.call_sync("read_file", {"path": path})
        assert r.is_error and "outside the workspace" in r.content
    (tmp_path / "ws" / "link").symlink_to(tmp_path / "secret")
    assert runtime.call_sync("read_file", {"path": "link"}).is_error


@given(st.lists(st.sampled_from(["..", ".", "a", "b", "/", "c/..", "/tmp"]), max_size=6))
def test_confine_never_escapes(parts):
    root = Path("/srv/ws")
    try:
        target = confine(root, "/".join(parts))
    except ToolError:
        return
    assert target == root or root in target.parents


def test_without_a_workspace_each_state_gets_its_own_scratch_folder(monkeypatch):
    monkeypatch.delenv("TOOLZOO_WORKSPACE", raising=False)
    monkeypatch.delenv("TOOLZOO_SANDBOX", raising=False)
    domain = get_domain("code_workspace")
    r1, r2 = (DomainRuntime(domain, seed_state(domain.spec, 1)) for _ in range(2))
    r1.call_sync("write_file", {"path": "only_here.txt", "content": "x"})
    assert "only_here.txt" in r1.call_sync("list_dir", {}).structured["entries"]
    assert "only_here.txt" not in r2.call_sync("list_dir", {}).structured["entries"]
    assert not Path("only_here.txt").exists()  # never the caller's cwd
