"""The code-workspace domain's tools: run code, read and write files, in one workspace folder.

The tool server runs *inside* the sandbox (process, docker or kubernetes tier), so these
functions simply use the filesystem and subprocesses -- confined to the workspace folder
(``$TOOLZOO_WORKSPACE``; else the cwd when the server runs in a sandbox, which the tiers mark
with ``$TOOLZOO_SANDBOX``), with timeouts and output caps. Outside any sandbox (the task
generator replaying reference solutions, the inline tier) every State gets a private scratch
folder, never the caller's cwd.

Domain state vs. disk: the ``modules`` collection records the *parameters* of each seeded
module (function name, coefficients, bug kind) and the last test verdict. The files are
materialised from those parameters on the first call (and again when the parameters change,
e.g. after ``_toolzoo_reset``). Writes are deliberately not hashed into the state: any fix
that makes the tests pass is right, so the judged state is the test verdict (``status``),
which only ``run_tests`` sets. Its verdict is the harness's: a runner it owns reports each
case's value as plain JSON tagged with a per-run nonce, the tool server compares the values
with the expected ones (canonical inputs plus fresh random ones), and the exit code decides
nothing -- so early exits, objects with a forged ``__eq__`` and edited test files all fail.

Results are deterministic: the workspace path is replaced by ``.`` in all output.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

from toolzoo.tools.runtime import ToolError
from toolzoo.tools.state import State

ENV_WORKSPACE = "TOOLZOO_WORKSPACE"
ENV_SANDBOX = "TOOLZOO_SANDBOX"  # set by the process tier in its jailed servers
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 60.0
OUTPUT_CAP = 16_000  # characters per stream returned to the agent (reading stops past twice that)
READ_CAP = 200_000
_MARKER = ".toolzoo_seeded"
CANONICAL_CASES = (0, 1, 2, 7)  # the inputs the test file asserts

_scratch: weakref.WeakKeyDictionary[State, tempfile.TemporaryDirectory] = weakref.WeakKeyDictionary()


# -- the workspace --------------------------------------------------------------------------------

def workspace_dir(state: State) -> Path:
    env = os.environ.get(ENV_WORKSPACE) or (os.getcwd() if os.environ.get(ENV_SANDBOX) else None)
    if env:
        root = Path(env)
        root.mkdir(parents=True, exist_ok=True)
        return root.resolve()
    tmp = _scratch.get(state)
    if tmp is None:  # the finaliser removes the folder when the State is garbage collected
        tmp = _scratch[state] = tempfile.TemporaryDirectory(prefix="toolzoo-ws-")
    return Path(tmp.name).resolve()


def confine(root: Path, path: str) -> Path:
    """``path`` (relative to the workspace, or absolute inside it) resolved, or a ToolError."""
    if not isinstance(path, str) or "\x00" in path:
        raise ToolError("path must be text")
    target = (root / path).resolve()  # resolves symlinks: a link out of the workspace is refused
    if target != root and root not in target.parents:
        raise ToolError(f"path {path!r} is outside the workspace")
    return target


# -- seeded modules -------------------------------------------------------------------------------

def module_source(rec: dict[str, Any]) -> str:
    a, b, fn, bug = rec["a"], rec["b"], rec["fn"], rec["bug"]
    body = {
        "none": f"{a} * x + {b}",
        "sign": f"{a} * x - {b}",
        "off_by_one": f"{a} * x + {b} + 1",
        "swap": f"{b} * x + {a}",
    }[bug]
    return f'"""{fn}: a small linear rule."""\n\n\ndef {fn}(x):\n    return {body}\n'


def test_source(rec: dict[str, Any]) -> str:
    mod = Path(rec["path"]).stem
    checks = "\n".join(
        f"    assert {rec['fn']}({x}) == {rec['a'] * x + rec['b']}, f\"{rec['fn']}({x}) = {{{rec['fn']}({x})}}\""
        for x in CANONICAL_CASES)
    return (f"import sys\nsys.path.insert(0, '.')\nfrom {mod} import {rec['fn']}\n\n\ndef test():\n{checks}\n\n\n"
            f"if __name__ == '__main__':\n    test()\n    print('passed')\n")


def test_path(rec: dict[str, Any]) -> str:
    return f"tests/test_{Path(rec['path']).stem}.py"


def _seed_params(state: State) -> str:
    mods = state.data.get("modules", {})
    params = {k: {f: v for f, v in r.items() if f != "status"} for k, r in mods.items()}
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def materialise(state: State, root: Path) -> None:
    """Write the seeded modules and tests once per seed (tracked by a marker file)."""
    marker = root / _MARKER
    digest = _seed_params(state)
    if marker.exists() and marker.read_text() == digest:
        return
    (root / "tests").mkdir(exist_ok=True)
    for rec in state.data.get("modules", {}).values():
        (root / rec["path"]).write_text(module_source(rec))
        (root / test_path(rec)).write_text(test_source(rec))
    marker.write_text(digest)


def _prepare(state: State) -> Path:
    root = workspace_dir(state)
    materialise(state, root)
    return root


# -- running code ---------------------------------------------------------------------------------

def _clean(text: str, root: Path) -> tuple[str, bool]:
    text = text.replace(str(root) + os.sep, "").replace(str(root), ".")
    if len(text) > OUTPUT_CAP:
        return text[:OUTPUT_CAP], True
    return text, False


def _timeout(args: dict[str, Any]) -> float:
    t = args.get("timeout_s", DEFAULT_TIMEOUT_S)
    return max(0.1, min(float(t), MAX_TIMEOUT_S))


def _run(argv: list[str], root: Path, timeout: float, stdin: str | None = None) -> dict[str, Any]:
    """Run a command in the workspace; its output is read as it comes and capped, so endless
    output cannot fill the server's memory. Hitting the cap or the timeout kills the command's
    whole process group (it runs in a session of its own). A command stopped by the timeout or
    killed by a signal (a resource limit) is a tool error the agent sees."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
    from toolzoo.sandbox.identity import agent_prefix  # in a sandbox: agent code runs as the agent's uid

    argv = agent_prefix() + argv
    try:
        proc = subprocess.Popen(argv, cwd=root, env=env, start_new_session=True, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:  # e.g. the process limit refuses even this one
        raise ToolError(f"cannot start: {exc}") from None
    if stdin:
        with contextlib.suppress(OSError):
            proc.stdin.write(stdin.encode())
    with contextlib.suppress(OSError):
        proc.stdin.close()
    buffers = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    sel = selectors.DefaultSelector()
    for stream in buffers:
        os.set_blocking(stream.fileno(), False)
        sel.register(stream, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    timed_out = truncated = False
    while sel.get_map():
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        for key, _ in sel.select(min(left, 0.2)):
            chunk = key.fileobj.read(65536)
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            buffers[key.fileobj] += chunk
        if sum(len(b) for b in buffers.values()) > 2 * OUTPUT_CAP:
            truncated = True
            break
    if timed_out or truncated:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    try:
        code = proc.wait(timeout=max(0.1, deadline - time.monotonic()) if not (timed_out or truncated) else 5)
    except subprocess.TimeoutExpired:  # closed its pipes but kept running
        timed_out = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait()
    sel.close()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever it left running in the background goes too
    out, t1 = _clean(bytes(buffers[proc.stdout]).decode(errors="replace"), root)
    err, t2 = _clean(bytes(buffers[proc.stderr]).decode(errors="replace"), root)
    truncated = truncated or t1 or t2
    if timed_out:
        raise ToolError(f"timed out after {timeout:g}s and was killed; output so far: {(out + err)[-500:]!r}")
    if code is not None and code < 0 and not truncated:
        raise ToolError(f"killed by signal {-code} (a sandbox limit); output: {(out + err)[-500:]!r}")
    return {"stdout": out, "stderr": err, "exit_code": None if truncated else code, "timed_out": False,
            "truncated": truncated}


# -- the tools (impl: python:toolzoo.tools.workspace:<fn>) ----------------------------------------

def run_python(args: dict[str, Any], state: State) -> dict[str, Any]:
    root = _prepare(state)
    return _run([sys.executable, "-I", "-B", "-c", "import sys; sys.path.insert(0, '.')\n" + args["code"]],
                root, _timeout(args), args.get("stdin"))


def run_shell(args: dict[str, Any], state: State) -> dict[str, Any]:
    root = _prepare(state)
    return _run(["/bin/sh", "-c", args["command"]], root, _timeout(args), args.get("stdin"))


def read_file(args: dict[str, Any], state: State) -> dict[str, Any]:
    root = _prepare(state)
    path = confine(root, args["path"])
    if not path.is_file():
        raise ToolError(f"no file {args['path']!r}")
    data = path.read_bytes()[:READ_CAP]
    return {"path": args["path"], "content": data.decode(errors="replace"), "truncated": path.stat().st_size > READ_CAP}


def write_file(args: dict[str, Any], state: State) -> dict[str, Any]:
    root = _prepare(state)
    path = confine(root, args["path"])
    if path == root or path.name == _MARKER:
        raise ToolError(f"cannot write {args['path']!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    data = args["content"].encode()
    path.write_bytes(data)
    return {"path": args["path"], "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()[:16]}


def list_dir(args: dict[str, Any], state: State) -> dict[str, Any]:
    root = _prepare(state)
    path = confine(root, args.get("path") or ".")
    if not path.is_dir():
        raise ToolError(f"no directory {args.get('path')!r}")
    entries = []
    for child in sorted(path.iterdir()):
        if child.name == _MARKER or child.name == "__pycache__":
            continue
        entries.append(child.name + ("/" if child.is_dir() else ""))
    return {"path": args.get("path") or ".", "entries": entries}


# The harness's test runner. It is passed with ``-c`` (never a file of the workspace, so
# rewriting files cannot change it) and reads its request from stdin. It only *reports*: for
# each case it calls the function and prints one line with the nonce, the case index and the
# returned value as JSON (plain types only; anything else is reported as not serialisable).
# The verdict is taken by the tool server, which compares every value with the expected one
# it computed itself. Agent code runs inside this process and can print anything, exit early
# or patch the runner: that only removes lines (a missing case fails) or prints values, which
# must then be right for inputs drawn fresh for this run; it cannot make an object that
# compares equal, because nothing is compared here.
_RUNNER = r"""
import json, os, sys
req = json.loads(sys.stdin.readline()); sys.stdin.close()
nonce, fn_name, mod_name, cases = req["nonce"], req["fn"], req["module"], req["cases"]
del req
out = os.fdopen(os.dup(1), "w")  # reports keep stdout; the agent's own prints go to stderr
os.dup2(2, 1); sys.stdout = sys.stderr
def plain(v):
    t = type(v)
    if v is None or t in (bool, int, str) or (t is float):
        return v
    if t in (list, tuple):
        return [plain(x) for x in v]
    if t is dict and all(type(k) is str for k in v):
        return {k: plain(x) for k, x in v.items()}
    raise TypeError("a %s is not a plain value" % t.__name__)
def report(i, **fields):
    out.write(json.dumps({"nonce": nonce, "case": i, **fields}) + "\n"); out.flush()
sys.path.append(".")
try:
    fn = getattr(__import__(mod_name), fn_name)
except BaseException as exc:
    report(-1, error="import failed: %s: %s" % (type(exc).__name__, exc)); raise SystemExit(1)
for i, x in enumerate(cases):
    try:
        report(i, value=plain(fn(x)))
    except BaseException as exc:
        report(i, error="%s: %s" % (type(exc).__name__, exc))
"""
EXTRA_CASES = 4  # random inputs per run, beyond the canonical ones of the test file


def _test_cases(rec: dict[str, Any]) -> list[int]:
    rng = secrets.SystemRandom()
    return list(CANONICAL_CASES) + [rng.randint(-10_000, 10_000) for _ in range(EXTRA_CASES)]


def _same(value: Any, expected: int) -> bool:
    """Harness-side comparison of plain JSON values: a number, not a bool, equal by value."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == expected


def judge_cases(rec: dict[str, Any], cases: list[int], nonce: str, stdout: str) -> tuple[bool, list[str]]:
    """(passing, one line per case): every case must be reported once, with this run's nonce,
    as a value equal to the expected one. Lines without the nonce (the agent's prints) are
    ignored; a duplicate or contradictory report fails the run."""
    seen: dict[int, dict[str, Any]] = {}
    problems: list[str] = []
    for line in stdout.splitlines():
        try:
            rep = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rep, dict) or rep.get("nonce") != nonce:
            continue
        case = rep.get("case")
        if case == -1:
            problems.append(str(rep.get("error", "import failed"))[:300])
            continue
        if not isinstance(case, int) or isinstance(case, bool) or not 0 <= case < len(cases):
            problems.append(f"report for an unknown case {case!r}")
        elif case in seen:
            problems.append(f"case {case} reported twice")
        else:
            seen[case] = rep
    fn, lines = rec["fn"], []
    passing = not problems
    for i, x in enumerate(cases):
        expected = rec["a"] * x + rec["b"]
        rep = seen.get(i)
        if rep is None:
            lines.append(f"{fn}({x}): no result (the test process ended before reporting it)")
            passing = False
        elif "error" in rep:
            lines.append(f"{fn}({x}) raised {str(rep['error'])[:200]}")
            passing = False
        elif not _same(rep.get("value"), expected):
            lines.append(f"{fn}({x}) = {json.dumps(rep.get('value'))[:200]}, expected {expected}: FAIL")
            passing = False
        else:
            lines.append(f"{fn}({x}) = {expected}: ok")
    return passing, problems + lines


def run_tests(args: dict[str, Any], state: State) -> dict[str, Any]:
    """Run a module's tests through the harness's runner and record the verdict. The cases are
    the canonical ones of the test file plus fresh random inputs; the values are compared
    here, never in the process that ran the agent's code, and its exit code decides nothing.
    The canonical test file is rewritten before each run (for the agent to read and run)."""
    root = _prepare(state)
    rec = state.data["modules"].get(args["module"])
    if rec is None:
        raise ToolError(f"no module {args['module']!r} (modules: {', '.join(sorted(state.data['modules']))})")
    tpath = root / test_path(rec)
    tpath.parent.mkdir(exist_ok=True)
    tpath.write_text(test_source(rec))
    nonce, cases = secrets.token_hex(16), _test_cases(rec)
    request = json.dumps({"nonce": nonce, "fn": rec["fn"], "module": Path(rec["path"]).stem, "cases": cases})
    try:
        result = _run([sys.executable, "-I", "-B", "-c", _RUNNER], root, _timeout(args), request + "\n")
    except ToolError as exc:  # timed out or killed: the tests did not pass
        result, report = None, [str(exc)]
        passing = False
    else:
        passing, report = judge_cases(rec, cases, nonce, result["stdout"])
        if result["truncated"]:
            report.insert(0, "output exceeded the cap: results were cut off")
    status = "passing" if passing else "failing"
    state.set_field("modules", args["module"], "status", status)
    stderr = (result or {}).get("stderr", "")
    return {"module": args["module"], "status": status, "output": "\n".join(report)[-2000:],
            "stderr": stderr[-1000:]}
