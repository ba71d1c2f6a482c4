"""Broken domain files: every error names the file, the line and the field."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from toolzoo.config import LoadError
from toolzoo.tools.loader import load_domain

GOOD = textwrap.dedent("""\
    domain: shop
    state:
      orders:
        key: id
        schema:
          type: object
          properties:
            id: {type: string}
            status: {enum: [placed, delivered]}
      customers:
        key: id
        schema: {type: object, properties: {id: {type: string}}}
    seed:
      customers:
        count: 3
        fields: {id: {pattern: "c{i}"}}
      orders:
        count: 5
        fields:
          id: {pattern: "o{i}"}
          status: {choice: [placed, delivered]}
    tools:
      - name: get_order
        parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
        effects:
          - require: "args.order_id in state.orders"
            error: "no order {args.order_id}"
          - return: "state.orders[args.order_id]"
      - name: deliver
        parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
        effects:
          - set: {collection: orders, key: "args.order_id", field: status, value: "'delivered'"}
          - return: "true"
    subtasks:
      - id: status_of
        bind: {o: "pick(state.orders.filter(k, true))"}
        ask: "Status of {o}?"
        solution: [{tool: get_order, args: {order_id: "o"}}]
        answer: "state.orders[o].status"
    """)


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def _line_of(text: str, needle: str, nth: int = 0) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return lines[nth]


def test_good_domain_loads(tmp_path):
    domain = load_domain(_write(tmp_path, "good.yaml", GOOD))
    assert domain.name == "shop"
    assert set(domain.tools) == {"get_order", "deliver"}


BROKEN = [
    # (file name, replace old -> new, expected field path, needle for the expected line)
    ("yaml_syntax.yaml", ("  - name: deliver\n", "  - name: [deliver\n"), "<yaml>", None),
    ("cel_syntax.yaml", ('"args.order_id in state.orders"', '"args.order_id in in state.orders"'),
     "tools[0].effects[0].require", "args.order_id in in"),
    ("unknown_tool.yaml", ("solution: [{tool: get_order,", "solution: [{tool: get_ordr,"),
     "subtasks[0].solution[0].tool", "get_ordr"),
    ("bad_json_schema.yaml", ("status: {enum: [placed, delivered]}", "status: {type: strng}"),
     "state.orders.schema", None),
    ("bad_ref.yaml", ('status: {choice: [placed, delivered]}', 'status: {ref: suppliers}'),
     "seed.orders.fields.status.ref", "ref: suppliers"),
    ("duplicate_tool.yaml", ("  - name: deliver\n", "  - name: get_order\n"),
     "tools[1].name", "- name: get_order", ),
    ("set_unknown_field.yaml", ("field: status, value", "field: colour, value"),
     "tools[1].effects[0].set.field", "field: colour"),
    ("unknown_top_field.yaml", ("domain: shop\n", "domain: shop\ncolour: red\n"), "colour", "colour: red"),
    ("missing_ask.yaml", ('    ask: "Status of {o}?"\n', ""), "subtasks[0].ask", None),
    ("unknown_arg.yaml", ('"args.order_id in state.orders"', '"args.order in state.orders"'),
     "tools[0].effects[0].require", "args.order in"),
    ("read_only_writes.yaml", ("  - name: deliver\n", "  - name: deliver\n    read_only: true\n"),
     "tools[1]", "- name: deliver"),
]


@pytest.mark.parametrize("name,change,field,needle", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_domain_error_names_file_line_and_field(tmp_path, name, change, field, needle):
    old, new = change
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    path = _write(tmp_path, name, text)
    with pytest.raises(LoadError) as info:
        load_domain(path)
    message = str(info.value)
    assert name in message
    problem = next((p for p in info.value.problems if p.path == field or p.path.startswith(field)), None)
    assert problem is not None, f"no problem at {field}: {message}"
    assert problem.line is not None and problem.line >= 1
    if needle is not None:
        nth = 1 if name == "duplicate_tool.yaml" else 0
        assert problem.line == _line_of(text, needle, nth), message
    assert f"{name}:{problem.line} {problem.path}:" in message


def test_several_errors_are_all_reported(tmp_path):
    text = GOOD.replace("field: status, value", "field: colour, value").replace(
        "solution: [{tool: get_order,", "solution: [{tool: nope,")
    with pytest.raises(LoadError) as info:
        load_domain(_write(tmp_path, "two.yaml", text))
    paths = {p.path for p in info.value.problems}
    assert "tools[1].effects[0].set.field" in paths
    assert "subtasks[0].solution[0].tool" in paths


def test_seed_that_breaks_its_schema_fails_at_load(tmp_path):
    text = GOOD.replace("status: {choice: [placed, delivered]}", "status: {choice: [lost]}")
    with pytest.raises(LoadError) as info:
        load_domain(_write(tmp_path, "seed_schema.yaml", text))
    assert any(p.path.startswith("seed.orders") for p in info.value.problems)


def test_cli_validate_exit_codes(tmp_path):
    good = _write(tmp_path, "good.yaml", GOOD)
    bad = _write(tmp_path, "bad.yaml", GOOD.replace("tool: get_order,", "tool: nope,"))
    ok = subprocess.run([sys.executable, "-m", "toolzoo.cli", "zoo", "validate", str(good)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    fail = subprocess.run([sys.executable, "-m", "toolzoo.cli", "zoo", "validate", str(bad)], capture_output=True, text=True)
    assert fail.returncode != 0
    assert "bad.yaml:" in fail.stderr and "subtasks[0].solution[0].tool" in fail.stderr
