"""The code-workspace domain: tasks generated from it are solved by their reference solution
inside a process sandbox (bubblewrap when available), and its tools are confined and deterministic."""

import importlib.util
import json
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


# -- the harness's verdict (issue 13, item 4) -----------------------------------------------------

def _buggy(runtime):
    mods = runtime.state.data["modules"]
    key = next(k for k, r in sorted(mods.items()) if r["bug"] != "none")
    return key, mods[key]


def test_verdict_ignores_the_exit_code_and_the_agents_prints(runtime, tmp_path, monkeypatch):
    """A right fix that prints (even without a newline) and ends with exit code 3 passes; the
    reports are compared by the harness, the exit code decides nothing."""
    monkeypatch.setenv("TOOLZOO_WORKSPACE", str(tmp_path))
    key, rec = _buggy(runtime)
    fixed = (f"import atexit, os, sys\nsys.stdout.write('noise without newline')\n"
             f"atexit.register(lambda: os._exit(3))\n\n\ndef {rec['fn']}(x):\n    print('called', end='')\n"
             f"    return {rec['a']} * x + {rec['b']}\n")
    runtime.call_sync("write_file", {"path": rec["path"], "content": fixed})
    result = runtime.call_sync("run_tests", {"module": key})
    assert result.structured["status"] == "passing", result.content
    assert runtime.state.data["modules"][key]["status"] == "passing"


def test_verdict_needs_every_case_reported_with_this_runs_nonce():
    from toolzoo.tools.workspace import judge_cases

    rec = {"fn": "f", "a": 2, "b": 3}
    cases = [0, 1, 5]
    good = "\n".join(json.dumps({"nonce": "n1", "case": i, "value": 2 * x + 3}) for i, x in enumerate(cases))
    assert judge_cases(rec, cases, "n1", good)[0]
    assert not judge_cases(rec, cases, "n2", good)[0]  # another run's (or a forged) nonce
    assert not judge_cases(rec, cases, "n1", "\n".join(good.splitlines()[:2]))[0]  # a case missing
    assert not judge_cases(rec, cases, "n1", good + "\n" + good.splitlines()[0])[0]  # reported twice
    as_bool = good.replace('"value": 3', '"value": true')
    assert not judge_cases({"fn": "f", "a": 2, "b": -2}, [1], "n1",
                           json.dumps({"nonce": "n1", "case": 0, "value": True}))[0]  # a bool is never a number
    assert judge_cases(rec, cases, "n1", good.replace('"value": 13', '"value": 13.0'))[0]  # 13.0 == 13
    assert not judge_cases(rec, cases, "n1", as_bool)[0]
    err = json.dumps({"nonce": "n1", "case": 0, "error": "TypeError: a _Eq is not a plain value"})
    passing, lines = judge_cases(rec, cases, "n1", err + "\n" + "\n".join(good.splitlines()[1:]))
    assert not passing and any("raised TypeError" in line for line in lines)


@given(st.lists(st.integers(-50, 50), min_size=1, max_size=6), st.integers(-9, 9), st.integers(-40, 40),
       st.integers(0, 5))
def test_judge_cases_passes_exactly_when_every_value_is_right(xs, a, b, wrong_at):
    from toolzoo.tools.workspace import judge_cases

    rec = {"fn": "f", "a": a, "b": b}
    values = [a * x + b for x in xs]
    ok_lines = [json.dumps({"nonce": "k", "case": i, "value": v}) for i, v in enumerate(values)]
    assert judge_cases(rec, xs, "k", "\n".join(ok_lines))[0]
    i = wrong_at % len(xs)
    bad = list(ok_lines)
    bad[i] = json.dumps({"nonce": "k", "case": i, "value": values[i] + 1})
    assert not judge_cases(rec, xs, "k", "\n".join(bad))[0]


def test_each_run_draws_fresh_inputs(runtime, tmp_path, monkeypatch):
    """Beyond the canonical cases, inputs change per run, so a table of the canonical answers fails."""
    monkeypatch.setenv("TOOLZOO_WORKSPACE", str(tmp_path))
    key, rec = _buggy(runtime)
    table = {x: rec["a"] * x + rec["b"] for x in (0, 1, 2, 7)}
    runtime.call_sync("write_file", {"path": rec["path"],
                                     "content": f"T = {table!r}\n\n\ndef {rec['fn']}(x):\n    return T[x]\n"})
    outputs = [runtime.call_sync("run_tests", {"module": key}).structured for _ in range(2)]
    assert all(o["status"] == "failing" for o in outputs)
    assert outputs[0]["output"] != outputs[1]["output"]  # other random inputs each time
    assert all(f"{rec['fn']}(7) = {table[7]}: ok" in o["output"] for o in outputs)
