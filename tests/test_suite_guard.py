"""The suite guard turns a leaked process or a stuck thread into a named failure, not a hang."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

LEAKS_A_CHILD = """
import subprocess
def test_leaks():
    subprocess.Popen(["sleep", "300"])
"""

STRANDS_A_THREAD = """
import threading
def blocked_forever_in_guard_test():
    threading.Event().wait()
def test_strands():
    threading.Thread(target=blocked_forever_in_guard_test, name="stuck-worker").start()
"""

CLEAN = """
import subprocess, threading
def test_clean():
    subprocess.run(["true"], check=True)
    t = threading.Thread(target=lambda: None); t.start(); t.join()
"""


def _pytest(tmp_path, source: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_case.py").write_text(textwrap.dedent(source))
    env = os.environ | {"TOOLZOO_GUARD_GRACE_S": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                           "toolzoo.testing.suite_guard", str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_leaked_child_is_named_killed_and_fails_the_session(tmp_path):
    r = _pytest(tmp_path, LEAKS_A_CHILD)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 passed" in r.stdout
    line = next(l for l in r.stderr.splitlines() if l.startswith("leaked process"))
    assert "sleep 300" in line
    assert not _alive(int(line.split()[2].rstrip(":")))


def test_stuck_thread_ends_the_run_with_its_stack(tmp_path):
    r = _pytest(tmp_path, STRANDS_A_THREAD)  # would hang at interpreter exit without the guard
    assert r.returncode == 1, r.stdout + r.stderr
    assert "stuck threads: stuck-worker" in r.stderr
    assert "blocked_forever_in_guard_test" in r.stderr  # the dumped stack names where it waits
    assert "1 passed" in r.stdout


def test_clean_session_is_left_alone(tmp_path):
    r = _pytest(tmp_path, CLEAN)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "suite guard" not in r.stderr


def test_guard_is_loaded_by_this_suite(request):
    assert request.config.pluginmanager.has_plugin("toolzoo.testing.suite_guard")
