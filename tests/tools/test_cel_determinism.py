"""CEL results do not depend on the run: the CEL library hands maps back in its own hash order
(which differs between processes and between maps), so a record an effect builds from a map
literal, and the expected records of a generated task, came out in another key order each run.
Generated task files must be byte-identical from run to run."""

from __future__ import annotations

import os
import string
import subprocess
import sys
from pathlib import Path

import toolzoo

from toolzoo.tools.cel import compile_expr

LETTERS = string.ascii_lowercase


def test_a_map_result_has_its_keys_in_sorted_order_at_every_depth():
    literal = "{" + ", ".join(f"'{c}': {i}" for i, c in enumerate(reversed(LETTERS))) + "}"
    expr = compile_expr(f"{{'outer': [{literal}], 'z': {literal}, 'a': 1}}")
    for _ in range(20):  # a fresh map each time: the library's order could differ each time
        value = expr.eval({})
        assert list(value) == ["a", "outer", "z"]
        assert list(value["z"]) == list(LETTERS) == list(value["outer"][0])
        assert value["z"] == {c: 25 - i for i, c in enumerate(LETTERS)}  # values untouched


def test_map_keys_of_other_types_are_ordered_too():
    value = compile_expr("{2: 'b', 1: 'a', 10: 'c'}").eval({})
    assert list(value) == [1, 2, 10] and value == {1: "a", 2: "b", 10: "c"}
    mixed = compile_expr("{'b': 1, 2: 2, 'a': 3, true: 4, 10: 5}").eval({})
    assert list(mixed) == [True, 2, 10, "a", "b"]  # bool, int, str: each in its own order


def test_the_fast_path_and_cels_path_give_the_same_key_order():
    source = "{'status': args.s, 'order_id': args.id, 'b': [{'y': 1, 'x': 2}]}"
    fast = compile_expr(source)
    assert fast.fast is not None  # a simple shape: answered by a precompiled accessor
    by_fast = fast.eval({"args": {"s": "shipped", "id": "o1"}})
    by_cel = fast.eval({"args": {"s": "shipped", "id": 10**30}})  # past 64 bits: the accessor defers to CEL
    assert list(by_fast) == ["b", "order_id", "status"] == list(by_cel)
    assert list(by_fast["b"][0]) == ["x", "y"] == list(by_cel["b"][0])


GENERATE = """
import sys
from toolzoo.envs.taskgen import TaskGenerator
from toolzoo.tools.loader import load_domain
for path in sys.argv[1:]:
    gen = TaskGenerator(load_domain(path))
    for seed in range(6):
        print(gen.generate(seed, 4).model_dump_json())
"""


def _generated(hash_seed: str) -> str:
    zoo = Path(toolzoo.__file__).parent / "tools" / "zoo"
    paths = [str(zoo / f"{name}.yaml") for name in ("bank_accounts", "retail_orders", "helpdesk_tickets")]
    out = subprocess.run([sys.executable, "-c", GENERATE, *paths], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": hash_seed}, timeout=300)
    return out.stdout


def test_generated_tasks_are_byte_identical_across_runs():
    first, second = _generated("1"), _generated("2")
    assert first.count("\n") == 18
    assert first == second
