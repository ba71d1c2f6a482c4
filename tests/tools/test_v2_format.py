"""Domain format v2 end to end: fixtures, let/defs, nested path writes, if/for_each, with
hand-computed expected states, and the all-or-nothing rule for each new write."""

from __future__ import annotations

import json
import textwrap

import pytest

from toolzoo.config import LoadError
from toolzoo.tools.loader import load_domain, load_domain_text
from toolzoo.tools.runtime import DomainRuntime
from toolzoo.tools.state import seed_state

DB = {
    "users": {
        "u1": {"name": "Ann", "payment_methods": {"gift_card_1": {"source": "gift_card", "balance": 50.0},
                                                  "credit_card_1": {"source": "credit_card"}}},
        "u2": {"user_id": "u2", "name": "Bob", "payment_methods": {"credit_card_2": {"source": "credit_card"}}},
    },
    "orders": {
        "o1": {"user_id": "u1", "status": "pending",
               "items": [{"item_id": "i1", "price": 10.5}, {"item_id": "i2", "price": 20.25}],
               "payment_history": [{"transaction_type": "payment", "amount": 30.75, "payment_method_id": "gift_card_1"}]},
        "o2": {"user_id": "u2", "status": "delivered", "items": [{"item_id": "i3", "price": 5.0}],
               "payment_history": [{"transaction_type": "payment", "amount": 5.0, "payment_method_id": "credit_card_2"}]},
    },
}

DOMAIN = textwrap.dedent("""\
    domain: shop2
    x-item: &item {type: object, properties: {item_id: {type: string}, price: {type: number}}}
    defs:
      order_total(o): "sum(state.orders[o].items.map(i, i.price))"
      is_pending(o): "state.orders[o].status == 'pending'"
      gift: {params: [pm], expr: "pm.startsWith('gift_card')"}
    state:
      users:
        key: user_id
        schema:
          type: object
          required: [user_id, name]
          properties:
            user_id: {type: string}
            name: {type: string}
            payment_methods:
              type: object
              additionalProperties:
                type: object
                properties: {source: {type: string}, balance: {type: number, minimum: 0}}
      orders:
        key: order_id
        schema:
          type: object
          properties:
            order_id: {type: string}
            user_id: {type: string}
            status: {enum: [pending, delivered, cancelled]}
            items: {type: array, maxItems: 3, items: {<<: *item, required: [item_id]}}
            payment_history:
              type: array
              items: {type: object, properties: {transaction_type: {type: string}, amount: {type: number},
                                                 payment_method_id: {type: string}}}
    seed:
      users: {from: data/db.json, at: users}
      orders: {from: data/db.json, at: orders}
    tools:
      - name: get_order
        parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
        let:
          order: "state.orders[args.order_id]"
        effects:
          - require: "args.order_id in state.orders"
            error: "Order not found"
          - return: "{'status': order.status, 'total': order_total(args.order_id)}"
      - name: cancel_pending_order
        parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
        let:
          order: "state.orders[args.order_id]"
        effects:
          - require: "args.order_id in state.orders"
            error: "Order not found"
          - require: "is_pending(args.order_id)"
            error: "Non-pending order cannot be cancelled"
          - set: {path: "orders[args.order_id].status", value: "'cancelled'"}
          - for_each: "order.payment_history"
            as: p
            do:
              - append: {path: "orders[args.order_id].payment_history",
                         value: "{'transaction_type': 'refund', 'amount': p.amount, 'payment_method_id': p.payment_method_id}"}
              - if: "gift(p.payment_method_id)"
                then:
                  - let: {pm: "state.users[order.user_id].payment_methods[p.payment_method_id]"}
                  - set: {path: "users[order.user_id].payment_methods[p.payment_method_id].balance",
                          value: "round(pm.balance + p.amount, 2)"}
          - return: "state.orders[args.order_id].status"
      - name: reprice
        description: set every item of an order to a price, and add one item
        parameters: {type: object, properties: {order_id: {type: string}, price: {type: number}, extra: {type: string}},
                     required: [order_id, price, extra]}
        effects:
          - for_each: "state.orders[args.order_id].items"
            as: it
            do:
              - set: {path: "orders[args.order_id].items[it_index].price", value: "args.price"}
          - append: {path: "orders[args.order_id].items", value: "{'item_id': args.extra, 'price': args.price}"}
          - return: "order_total(args.order_id)"
      - name: add_card
        parameters: {type: object, properties: {user_id: {type: string}, id: {type: string}}, required: [user_id, id]}
        effects:
          - put: {path: "users[args.user_id].payment_methods", key: "args.id", value: "{'source': 'credit_card'}"}
          - return: "state.users[args.user_id].payment_methods.map(k, k).sort()"
      - name: drop_card
        parameters: {type: object, properties: {user_id: {type: string}, id: {type: string}}, required: [user_id, id]}
        effects:
          - delete: {path: "users[args.user_id].payment_methods[args.id]"}
          - return: "true"
      - name: drop_first_item
        parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
        effects:
          - remove: {path: "orders[args.order_id].items[0]"}
          - return: "state.orders[args.order_id].items.map(i, i.item_id)"
      - name: drain_gift_card
        description: a negative balance breaks the schema after an earlier write (rollback)
        parameters: {type: object, properties: {user_id: {type: string}}, required: [user_id]}
        effects:
          - put: {path: "users[args.user_id].payment_methods", key: "'gift_card_9'", value: "{'source': 'gift_card', 'balance': 1.0}"}
          - set: {path: "users[args.user_id].payment_methods['gift_card_1'].balance", value: "state.users[args.user_id].payment_methods['gift_card_1'].balance - 1000.0"}
      - name: replace_user
        parameters: {type: object, properties: {user_id: {type: string}, name: {type: string}}, required: [user_id, name]}
        effects:
          - set: {path: "users[args.user_id]", value: "{'name': args.name}"}
          - return: "state.users[args.user_id]"
      - name: calculate
        parameters: {type: object, properties: {expression: {type: string}}, required: [expression]}
        effects:
          - return: "string(round(calc(args.expression), 2))"
    """)


@pytest.fixture()
def shop(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "db.json").write_text(json.dumps(DB))
    path = tmp_path / "shop.yaml"
    path.write_text(DOMAIN)
    d = load_domain(path)
    return d, seed_state(d.spec, 0)


def _call(d, state, tool, args):
    return DomainRuntime(d, state).call_sync(tool, args)


def test_fixtures_load_in_their_own_shape_with_keys_filled_from_the_map(shop):
    d, state = shop
    assert set(state.data["users"]) == {"u1", "u2"}
    assert state.data["users"]["u1"]["user_id"] == "u1"  # filled from the map key
    assert state.data["orders"]["o1"]["items"][1] == {"item_id": "i2", "price": 20.25}
    assert seed_state(d.spec, 5).hash() == state.hash()  # no select: every seed holds them all


def test_let_def_and_read(shop):
    d, state = shop
    r = _call(d, state, "get_order", {"order_id": "o1"})
    assert not r.is_error and r.structured == {"status": "pending", "total": 30.75}
    missing = _call(d, state, "get_order", {"order_id": "zz"})
    assert missing.is_error and missing.content == "get_order: Order not found"  # the require's text, not the let's


def test_cancel_refunds_the_gift_card_through_a_loop_and_a_condition(shop):
    d, state = shop
    refused = _call(d, state, "cancel_pending_order", {"order_id": "o2"})
    assert refused.is_error and "Non-pending order cannot be cancelled" in refused.content
    r = _call(d, state, "cancel_pending_order", {"order_id": "o1"})
    assert not r.is_error and r.structured == "cancelled"
    order = state.data["orders"]["o1"]
    assert order["payment_history"][-1] == {"transaction_type": "refund", "amount": 30.75, "payment_method_id": "gift_card_1"}
    assert state.data["users"]["u1"]["payment_methods"]["gift_card_1"]["balance"] == 80.75  # 50 + 30.75
    assert state.data["users"]["u1"]["payment_methods"]["credit_card_1"] == {"source": "credit_card"}


def test_nested_list_writes_and_append(shop):
    d, state = shop
    r = _call(d, state, "reprice", {"order_id": "o1", "price": 2.5, "extra": "i9"})
    assert not r.is_error and r.structured == 7.5  # three items at 2.5
    assert [i["price"] for i in state.data["orders"]["o1"]["items"]] == [2.5, 2.5, 2.5]
    before = state.hash()
    again = _call(d, state, "reprice", {"order_id": "o1", "price": 1.0, "extra": "i10"})  # 4 items > maxItems 3
    assert again.is_error and "effects[1].append" in again.content and "is too long" in again.content
    assert state.hash() == before  # the loop's earlier writes were rolled back too


def test_map_put_delete_and_list_remove(shop):
    d, state = shop
    assert _call(d, state, "add_card", {"user_id": "u1", "id": "cc9"}).structured == ["cc9", "credit_card_1", "gift_card_1"]
    gone = _call(d, state, "drop_card", {"user_id": "u1", "id": "nope"})
    assert gone.is_error and "no entry 'nope'" in gone.content
    assert not _call(d, state, "drop_card", {"user_id": "u1", "id": "cc9"}).is_error
    assert "cc9" not in state.data["users"]["u1"]["payment_methods"]
    assert _call(d, state, "drop_first_item", {"order_id": "o1"}).structured == ["i2"]
    assert _call(d, state, "drop_first_item", {"order_id": "o1"}).structured == []
    out_of_range = _call(d, state, "drop_first_item", {"order_id": "o1"})
    assert out_of_range.is_error and "out of range" in out_of_range.content


def test_a_schema_breaking_nested_write_rolls_back_the_whole_call(shop):
    d, state = shop
    before = state.hash()
    r = _call(d, state, "drain_gift_card", {"user_id": "u1"})
    assert r.is_error and "minimum" in r.content
    assert state.hash() == before and "gift_card_9" not in state.data["users"]["u1"]["payment_methods"]


def test_whole_record_set_replaces_and_keeps_the_key(shop):
    d, state = shop
    r = _call(d, state, "replace_user", {"user_id": "u2", "name": "Rob"})
    assert not r.is_error and r.structured == {"user_id": "u2", "name": "Rob"}
    created = _call(d, state, "replace_user", {"user_id": "u3", "name": "Cy"})
    assert not created.is_error and state.data["users"]["u3"] == {"user_id": "u3", "name": "Cy"}


def test_snapshots_do_not_see_nested_writes(shop):
    d, state = shop
    snap = state.snapshot()
    _call(d, state, "cancel_pending_order", {"order_id": "o1"})
    assert snap["users"]["u1"]["payment_methods"]["gift_card_1"]["balance"] == 50.0
    assert DB["users"]["u1"]["payment_methods"]["gift_card_1"]["balance"] == 50.0  # the fixture file's data too
    assert len(snap["orders"]["o1"]["payment_history"]) == 1


def test_calculate_without_python(shop):
    d, state = shop
    assert _call(d, state, "calculate", {"expression": "(2 + 3) * 4 / 3"}).structured == "6.67"
    bad = _call(d, state, "calculate", {"expression": "__import__('os')"})
    assert bad.is_error and "only numbers" in bad.content


MINI = """
domain: mini
state:
  items: {key: id, schema: {type: object, properties: {id: {type: string}, n: {type: integer}, tags: {type: array, items: {type: string}}}}}
seed:
  items:
    records: [{id: a, n: 1, tags: [x]}, {id: b, n: 2}, {id: c, n: 3}, {id: d, n: 4}, {id: e, n: 5}]
    select: {count: 3, shuffle: SHUFFLE}
    count: 2
    fields: {id: {pattern: "g{i}"}, n: {int: [10, 20]}}
tools:
  - name: loop
    parameters: {type: object, properties: {n: {type: integer}}, required: [n]}
    effects:
      - for_each: "range(args.n)"
        as: i
        do: [{set: {path: "items['a'].n", value: "i"}}]
      - return: "state.items['a'].n"
"""


def _mini(shuffle: str = "false", **subs):
    text = MINI.replace("SHUFFLE", shuffle)
    for old, new in subs.items():
        text = text.replace(old, new)
    return load_domain_text(text, "mini.yaml")


def test_select_draws_a_seeded_subset_mixed_with_generated_records():
    d = _mini()
    states = [seed_state(d.spec, s) for s in range(6)]
    for st in states:
        given = [k for k in st.data["items"] if not k.startswith("g")]
        assert len(given) == 3 and given == sorted(given)  # file order kept without shuffle
        assert {"g0", "g1"} <= set(st.data["items"])
    assert len({tuple(st.data["items"]) for st in states}) > 1  # the seed varies the subset
    assert seed_state(d.spec, 3).hash() == states[3].hash()
    shuffled = _mini("true")
    orders = {tuple(k for k in seed_state(shuffled.spec, s).data["items"] if not k.startswith("g")) for s in range(8)}
    assert any(list(o) != sorted(o) for o in orders)


def test_for_each_bound_is_a_clear_tool_error(monkeypatch):
    from toolzoo.tools import effects

    d = _mini(**{"    select: {count: 3, shuffle: false}\n": ""})
    rt = DomainRuntime(d, seed_state(d.spec, 0))
    assert rt.call_sync("loop", {"n": 3}).structured == 2  # the last iteration's write
    monkeypatch.setattr(effects, "MAX_ITERATIONS", 5)
    before = rt.state.hash()
    r = rt.call_sync("loop", {"n": 8})
    assert r.is_error and "effects[0].for_each" in r.content and "limit of 5 iterations" in r.content
    assert r.content.startswith("loop: ") and rt.state.hash() == before


def test_recursive_defs_are_a_load_error():
    text = MINI.replace("SHUFFLE", "false").replace("domain: mini", 'domain: mini\ndefs:\n  a(x): "b(x) + 1"\n  b(x): "a(x)"')
    with pytest.raises(LoadError) as info:
        load_domain_text(text, "rec.yaml")
    assert any(p.path.startswith("defs.") and "recursive" in p.message for p in info.value.problems)


def test_given_record_that_breaks_the_schema_names_file_line_and_field(tmp_path):
    text = MINI.replace("SHUFFLE", "false").replace("{id: b, n: 2}", "{id: b,\n       n: two}")
    with pytest.raises(LoadError) as info:
        load_domain_text(text, "bad_fixture.yaml")
    p = next(p for p in info.value.problems if p.path.startswith("seed.items.records[1]"))
    assert p.path == "seed.items.records[1].n" and "two" in p.message
    assert p.line == next(i for i, line in enumerate(text.splitlines(), 1) if "n: two}" in line)


def test_a_data_file_record_error_names_the_data_file(tmp_path):
    (tmp_path / "data").mkdir()
    bad = {"users": {"u1": {"name": 5}}, "orders": {}}
    (tmp_path / "data" / "db.json").write_text(json.dumps(bad, indent=2))
    (tmp_path / "d.yaml").write_text(DOMAIN)
    with pytest.raises(LoadError) as info:
        load_domain(tmp_path / "d.yaml")
    p = next(p for p in info.value.problems if p.file.endswith("db.json"))
    assert p.path == "users['u1'].name" and "not of type 'string'" in p.message and "seed.users.from" in p.message
    text = (tmp_path / "data" / "db.json").read_text()
    assert p.line == next(i for i, line in enumerate(text.splitlines(), 1) if '"u1"' in line)


def test_v1_domains_unchanged():
    from toolzoo.tools.zoo import builtin_names, get_domain

    for name in builtin_names():
        d = get_domain(name)
        assert seed_state(d.spec, 1).hash() == seed_state(d.spec, 1).hash()


def test_lets_rebinding_an_outer_name_accumulate_new_names_stay_in_their_block():
    d = load_domain_text("""
domain: acc
state:
  items: {key: id, schema: {type: object, properties: {id: {type: string}, n: {type: integer}}}}
seed:
  items: {records: [{id: a, n: 1}, {id: b, n: 2}, {id: c, n: 4}]}
tools:
  - name: total
    parameters: {type: object, properties: {skip: {type: string}}, required: [skip]}
    let: {acc: "0", label: "'none'"}
    effects:
      - for_each: "state.items.map(k, k)"
        as: k
        do:
          - let: {rec: "state.items[k]"}
          - if: "k != args.skip"
            then:
              - let: {acc: "acc + rec.n"}
              - let: {label: "k"}
      - return: "{'acc': acc, 'label': label}"
""", "acc.yaml")
    rt = DomainRuntime(d, seed_state(d.spec, 0))
    assert rt.call_sync("total", {"skip": "b"}).structured == {"acc": 5, "label": "c"}  # 1 + 4; the last kept key
    with pytest.raises(LoadError) as info:  # `rec` and the loop variable do not outlive the loop
        load_domain_text("""
domain: acc2
state:
  items: {key: id, schema: {type: object, properties: {id: {type: string}}}}
tools:
  - name: t
    parameters: {type: object, properties: {}}
    effects:
      - for_each: "[1, 2]"
        as: k
        do: [{let: {rec: "k"}}]
      - return: "rec + k"
""", "acc2.yaml")
    assert {p.message.split(" (")[0] for p in info.value.problems} == {"unknown name 'k'", "unknown name 'rec'"}


def test_nested_writes_decide_read_only_and_a_declared_read_only_is_checked():
    base = """
domain: ro
state:
  items: {key: id, schema: {type: object, properties: {id: {type: string}, n: {type: integer}}}}
tools:
  - name: maybe_bump
    READ_ONLY
    parameters: {type: object, properties: {}}
    effects:
      - if: "true"
        then: [{set: {path: "items['a'].n", value: "1"}}]
"""
    d = load_domain_text(base.replace("READ_ONLY", ""), "ro.yaml")
    assert d.spec.tools[0].read_only_hint is False
    with pytest.raises(LoadError) as info:
        load_domain_text(base.replace("READ_ONLY", "read_only: true"), "ro.yaml")
    assert "read_only: true but effects[0] is a `if`" in str(info.value)


SHAPES = [
    ('- if: "true"', "`if` needs `then`"),
    ('- for_each: "[1]"\n        do: []', "`for_each` needs `as`"),
    ('- as: x', "exactly one of"),
    ('- set: {path: "items[\'a\'].n", collection: items, value: "1"}', "either `path` or collection/key/field"),
    ('- set: {collection: items, value: "1"}', "all of collection, key, field"),
    ('- remove: {path: "items"}', "a path starts with collection[key]"),
    ('- set: {path: "items[\'a\'].n[", value: "1"}', "unclosed '['"),
    ('- append: {path: "items[\'a\']", value: "1"}', "append needs a list inside a record"),
    ('- put: {path: "items[\'a\'].n", key: "\'k\'", value: "1"}', "put needs a map"),
    ('- set: {path: "items[\'a\'].id", value: "\'b\'"}', "cannot change the key field"),
    ('- set: {path: "things[\'a\'].n", value: "1"}', "unknown collection 'things'"),
]


@pytest.mark.parametrize("effect,message", SHAPES, ids=[m for _, m in SHAPES])
def test_effect_shape_errors_are_clear(effect, message):
    text = f"""
domain: shapes
state:
  items: {{key: id, schema: {{type: object, properties: {{id: {{type: string}}, n: {{type: integer}}}}}}}}
tools:
  - name: t
    parameters: {{type: object, properties: {{}}}}
    effects:
      {effect}
"""
    with pytest.raises(LoadError) as info:
        load_domain_text(text, "shapes.yaml")
    assert message in str(info.value)
    assert all(p.line is not None for p in info.value.problems)


def test_put_into_a_missing_map_is_a_tool_error_naming_the_path(shop):
    d, state = shop
    before = state.hash()
    r = _call(d, state, "add_card", {"user_id": "nobody", "id": "x"})
    assert r.is_error and r.content == "add_card: no users record 'nobody'" and state.hash() == before
