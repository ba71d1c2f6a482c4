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


# -- v2: static checks of expressions against the schemas, YAML details -------------------------

V2 = textwrap.dedent("""\
    domain: shop
    state:
      orders:
        key: id
        schema:
          type: object
          properties:
            id: {type: string}
            status: {enum: [placed, delivered]}
            items: {type: array, items: {type: object, properties: {price: {type: number}}}}
            notes: {type: object, additionalProperties: {type: object, properties: {text: {type: string}}}}
    seed:
      orders:
        records: [{id: o1, status: placed, items: [{price: 1.5}], notes: {n1: {text: hi}}}]
    tools:
      - name: get_order
        parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
        let:
          order: "state.orders[args.order_id]"
        effects:
          - require: |
              args.order_id in state.orders &&
              size(order.items) >= 0
          - for_each: "order.items"
            as: item
            do:
              - set: {path: "orders[args.order_id].items[item_index].price", value: "item.price * 2.0"}
          - return: "state.orders[args.order_id].notes['n1'].text"
    """)

V2_BROKEN = [
    ("field_typo.yaml", ("size(order.items) >= 0", "size(order.itemz) >= 0"), "tools[0].effects[0].require",
     "size(order.itemz)", "itemz"),
    ("nested_typo.yaml", (".notes['n1'].text", ".notes['n1'].txt"), "tools[0].effects[2].return", ".txt", "txt"),
    ("loop_var_typo.yaml", ("item.price * 2.0", "item.prize * 2.0"), "tools[0].effects[1].do[0].set.value", "prize", "prize"),
    ("unknown_function.yaml", ("size(order.items)", "sizeof(order.items)"), "tools[0].effects[0].require",
     "sizeof", "sizeof"),
    ("bad_set_path.yaml", ("items[item_index].price", "items[item_index].cost"), "tools[0].effects[1].do[0].set.path",
     ".cost", "cost"),
    ("path_into_number.yaml", ("items[item_index].price", "items[item_index].price.x"),
     "tools[0].effects[1].do[0].set.path", ".price.x", "no fields"),
    ("unknown_let.yaml", ("size(order.items)", "size(ordr.items)"), "tools[0].effects[0].require", "ordr", "ordr"),
    ("constant_breaks_enum.yaml", ('      - return: "state.orders',
                                   '      - set: {path: "orders[args.order_id].status", value: "\'lost\'"}\n'
                                   '      - return: "state.orders'),
     "tools[0].effects[2].set.value", "'lost'", "lost"),
    ("bad_fixture.yaml", ("{price: 1.5}", "{price: cheap}"), "seed.orders.records[0].items[0].price", "cheap", "cheap"),
    ("enum_typo.yaml", ("size(order.items) >= 0", "order.status == 'placd'"), "tools[0].effects[0].require",
     "placd", "never holds"),
    ("type_mismatch.yaml", ("size(order.items) >= 0", "order.items[0].price == 'free'"), "tools[0].effects[0].require",
     "'free'", "a number but is compared with the string"),
]


@pytest.mark.parametrize("name,change,field,needle,word", V2_BROKEN, ids=[b[0] for b in V2_BROKEN])
def test_v2_static_checks_name_file_line_and_field(tmp_path, name, change, field, needle, word):
    old, new = change
    assert old in V2
    text = V2.replace(old, new, 1)
    with pytest.raises(LoadError) as info:
        load_domain(_write(tmp_path, name, text))
    problem = next((p for p in info.value.problems if p.path == field), None)
    assert problem is not None, f"no problem at {field}: {info.value}"
    assert word in problem.message
    assert problem.line == _line_of(text, needle), str(info.value)  # the line of the bad token, even in a block


def test_v2_reference_domain_loads_and_runs(tmp_path):
    from toolzoo.tools.runtime import DomainRuntime
    from toolzoo.tools.state import seed_state

    d = load_domain(_write(tmp_path, "v2.yaml", V2))
    state = seed_state(d.spec, 0)
    r = DomainRuntime(d, state).call_sync("get_order", {"order_id": "o1"})
    assert not r.is_error and r.structured == "hi"
    assert state.data["orders"]["o1"]["items"] == [{"price": 3.0}]


def test_yaml_merge_keys_and_yaml_1_2_boolean_words(tmp_path):
    text = textwrap.dedent("""\
        domain: flags
        x-flag: &flag {type: boolean}
        state:
          flags:
            key: id
            schema:
              type: object
              properties: {id: {type: string}, on: {<<: *flag}, yes: *flag, no: {<<: *flag, description: n}}
        seed:
          flags: {count: 2, fields: {id: {pattern: "f{i}"}, on: {value: true}, yes: {value: false}, no: {value: true}}}
        """)
    d = load_domain(_write(tmp_path, "flags.yaml", text))
    props = d.spec.state["flags"].schema_["properties"]
    assert set(props) == {"id", "on", "yes", "no"}
    assert props["on"] == {"type": "boolean"} and props["no"] == {"type": "boolean", "description": "n"}


def test_a_bare_yes_where_text_is_expected_gets_a_yaml_hint(tmp_path):
    text = GOOD.replace('bind: {o: "pick(state.orders.filter(k, true))"}', "bind: {o: yes}")
    with pytest.raises(LoadError) as info:
        load_domain(_write(tmp_path, "yes.yaml", text))
    assert any("YAML 1.1" in p.message and "quote it" in p.message for p in info.value.problems)


def test_records_under_state_gets_a_hint(tmp_path):
    old = "  customers:\n    key: id\n"
    assert old in GOOD
    text = GOOD.replace(old, old + "    records: [{id: c9}]\n", 1)
    with pytest.raises(LoadError) as info:
        load_domain(_write(tmp_path, "records.yaml", text))
    assert any("seed.<collection>.records" in p.message for p in info.value.problems)


def test_cli_prints_cel_brackets_verbatim_one_line_per_problem(tmp_path):
    text = V2.replace(".notes['n1'].text", ".notes['n1'].txt").replace("size(order.items)", "sizeof(order.items)")
    bad = _write(tmp_path, "brackets.yaml", text)
    out = subprocess.run([sys.executable, "-m", "toolzoo.cli", "zoo", "validate", str(bad)], capture_output=True,
                         text=True, env={**__import__("os").environ, "COLUMNS": "40"})
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode != 0 and len(lines) == 2, out.stderr
    assert "state.orders[args.order_id].notes['n1'].txt" in out.stderr  # [...] survives (no rich markup)


def test_a_syntax_error_in_a_multi_line_expression_names_its_own_line(tmp_path):
    text = V2.replace("size(order.items) >= 0", "size(order.items) >=* 0")
    with pytest.raises(LoadError) as info:
        load_domain(_write(tmp_path, "syntax_block.yaml", text))
    problem = next(p for p in info.value.problems if p.path == "tools[0].effects[0].require")
    assert "does not compile" in problem.message and problem.line == _line_of(text, ">=* 0")


@pytest.mark.parametrize("old,new", [("seed:\n", "seed:\n  records: [{id: c9}]\n"),
                                     ('fields: {id: {pattern: "c{i}"}}', "fields: {id: {records: [c9]}}")])
def test_misplaced_records_get_a_hint(tmp_path, old, new):
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    with pytest.raises(LoadError) as info:
        load_domain(_write(tmp_path, "misplaced.yaml", text))
    assert any("seed.<collection>.records" in p.message for p in info.value.problems), str(info.value)
