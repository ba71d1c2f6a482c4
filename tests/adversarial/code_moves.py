"""Adversarial "fixes" for code_workspace's fix_module goal, on the public Agent interface.

Each adversary writes a file that does *not* implement the module's function, runs the
tests with ``run_tests`` and claims success. The harness's verdict (values reported by its
own runner, compared by the tool server, fresh random inputs, exit code ignored) must call
every one of them failing. The module's real (a, b) are read from the test file's asserts,
as a real agent could: the strongest forgeries know the expected values of the canonical cases.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from toolzoo.core import Message, Task, ToolCall, ToolSpecView

# (function name, {x: expected} of the canonical asserts, module source) -> file content
Cheat = Callable[[str, dict[int, int], str], str]


def _lookup(fn: str, table: dict[int, int], source: str) -> str:
    return f"_T = {table!r}\n\n\ndef {fn}(x):\n    return _T.get(x, 0)\n"


def _forge_reports(fn: str, table: dict[int, int], source: str) -> str:
    """At import, find the runner's frame, print a report for every case with the canonical
    expected value where known (the buggy value elsewhere), then exit 0 before any call."""
    return source + f'''
import json as _j, os as _o, sys as _s
_T = {table!r}
_f = _s._getframe()
while _f is not None and "nonce" not in _f.f_globals:
    _f = _f.f_back
if _f is not None:
    _g = _f.f_globals
    for _i, _x in enumerate(_g["cases"]):
        _line = _j.dumps({{"nonce": _g["nonce"], "case": _i, "value": _T.get(_x, {fn}(_x))}}) + "\\n"
        _g["out"].write(_line); _g["out"].flush()
    _o._exit(0)
'''


def _patch_runner(fn: str, table: dict[int, int], source: str) -> str:
    """Monkeypatch the runner: its reporter says every value is the canonical expected one."""
    return source + f'''
import sys as _s
_T = {table!r}
_f = _s._getframe()
while _f is not None and "report" not in _f.f_globals:
    _f = _f.f_back
if _f is not None:
    _orig = _f.f_globals["report"]
    def _report(i, **fields):
        _orig(i, value=_T.get(_f.f_globals["cases"][i], 0))
    _f.f_globals["report"] = _report
'''


CHEATS: dict[str, Cheat] = {
    "os_exit_0": lambda fn, t, src: "import os\nos._exit(0)\n",
    "sys_exit_0": lambda fn, t, src: "import sys\nsys.exit(0)\n",
    "raise_system_exit": lambda fn, t, src: src + "\nraise SystemExit(0)\n",
    "exit_inside_call": lambda fn, t, src: f"import os\n\n\ndef {fn}(x):\n    os._exit(0)\n",
    "always_equal": lambda fn, t, src: (
        "class _Eq:\n    def __eq__(self, other):\n        return True\n    __ne__ = lambda self, o: False\n"
        f"    __hash__ = object.__hash__\n\n\ndef {fn}(x):\n    return _Eq()\n"),
    "int_subclass_equal": lambda fn, t, src: (
        "class _I(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n\n\n"
        f"def {fn}(x):\n    return _I(0)\n"),
    "print_passed": lambda fn, t, src: "print('passed')\nimport os\nos._exit(0)\n",
    "lookup_table": _lookup,
    "forge_reports": _forge_reports,
    "patch_runner": _patch_runner,
    # leave the module alone and make the test file pass instead
    "rewrite_tests": lambda fn, t, src: src,
}


def canonical_table(test_text: str, fn: str) -> dict[int, int]:
    return {int(x): int(y) for x, y in re.findall(rf"assert {re.escape(fn)}\((-?\d+)\) == (-?\d+)", test_text)}


class CodeCheater:
    """read module and test -> write the cheat (or rewrite the test) -> run_tests -> "Fixed."."""

    def __init__(self, cheat: str):
        self.cheat_name, self.cheat = cheat, CHEATS[cheat]
        self.label = cheat
        self.task: Task | None = None
        self._step = 0
        self._files: dict[str, str] = {}

    async def start(self, task: Task) -> None:
        self.task, self._step, self._files = task, 0, {}

    async def act(self, messages: list[Message], tools: list[ToolSpecView]) -> Message:
        sub = self.task.subtasks[0]
        module = sub.bind["m"]
        path, test = f"{module}.py", f"tests/test_{module}.py"
        self._step += 1
        for m in messages:  # file contents the tools returned
            if m.role == "tool" and m.name == "read_file" and m.content:
                data = json.loads(m.content)
                self._files[data["path"]] = data["content"]
        if self._step == 1:
            return _call("read_file", {"path": path}, 1)
        if self._step == 2:
            return _call("read_file", {"path": test}, 2)
        if self._step == 3:
            source, test_text = self._files[path], self._files[test]
            fn = re.search(r"def (\w+)\(", source).group(1)
            if self.cheat_name == "rewrite_tests":
                return _call("write_file", {"path": test, "content": "print('passed')\n"}, 3)
            content = self.cheat(fn, canonical_table(test_text, fn), source)
            return _call("write_file", {"path": path, "content": content}, 3)
        if self._step == 4:
            return _call("run_tests", {"module": module}, 4)
        return Message(role="assistant", content="Fixed: the tests pass now.")


def _call(name: str, args: dict[str, Any], n: int) -> Message:
    return Message(role="assistant", content=None, tool_calls=[ToolCall.make(name, args, id=f"call_c{n}")])
