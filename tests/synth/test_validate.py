"""validate_domain: each reason is detected, and good domains pass."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from toolzoo.synth.validate import existing_tools, validate_domain
from toolzoo.tools.zoo import ZOO_DIR, get_domain

FAST = {"lengths": [1, 2, 4], "seeds": [0]}


def _retail() -> dict:
    return yaml.safe_load((ZOO_DIR / "retail_orders.yaml").read_text())


def _text(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def flaky_stamp(args: dict, state) -> dict:
    """An impl whose effect is not reproducible: the oracle's replay cannot match the labels."""
    key = args["order_id"]
    state.set_field("orders", key, "total", random.randint(0, 10_000))
    return {"ok": True}


def test_builtin_domain_is_valid() -> None:
    r = validate_domain(ZOO_DIR / "retail_orders.yaml", lengths=range(1, 9), seeds=[0, 1])
    assert r.ok, r.error_text()
    assert r.tasks == 16 and r.oracle_successes == 16 and r.domain == "retail_orders"


def test_load_error_lists_problems_with_lines() -> None:
    data = _retail()
    data["tools"][0]["effects"][0]["require"] = "args.order_id in state.nope"
    data["subtasks"][0]["solution"][0]["tool"] = "no_such_tool"
    r = validate_domain(_text(data), text=True, **FAST)
    assert not r.ok and r.reasons == ["load_error"]
    assert len(r.issues) == 2
    assert any("state.nope" in i.detail for i in r.issues) and any("no_such_tool" in i.detail for i in r.issues)
    assert all(":" in i.detail.split()[0] for i in r.issues)  # <file>:<line>


def test_unreachable_tool_and_no_templates() -> None:
    data = _retail()
    data["subtasks"] = [s for s in data["subtasks"] if s["id"] not in ("cancel",)]
    r = validate_domain(_text(data), text=True, **FAST)
    assert "unreachable_tool" in r.reasons and "cancel_order" in r.error_text()
    data["subtasks"] = []
    r = validate_domain(_text(data), text=True, **FAST)
    assert r.reasons == ["no_templates"]


def test_task_generation_failure() -> None:
    data = _retail()
    never = {"o": "pick(state.orders.filter(k, state.orders[k].total > 100000))"}
    for s in data["subtasks"]:
        s["bind"] = {**never, **{k: v for k, v in s["bind"].items() if k != "o"}} if "o" in s["bind"] else s["bind"]
    data["subtasks"] = [s for s in data["subtasks"] if "o" in s["bind"]]
    data["tools"] = [t for t in data["tools"] if any(st["tool"] == t["name"] for s in data["subtasks"] for st in s["solution"])]
    r = validate_domain(_text(data), text=True, **FAST)
    assert r.reasons == ["task_generation"] and r.tasks == 0 and not r.ok


def test_oracle_failure() -> None:
    data = _retail()
    data["tools"].append({"name": "stamp_order", "description": "Stamp an order.",
                          "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                                         "required": ["order_id"]},
                          "impl": f"python:{__name__}:flaky_stamp"})
    data["subtasks"] = [{"id": "stamp", "bind": {"o": "pick(state.orders.filter(k, true))"},
                         "ask": "Stamp order {o}.", "solution": [{"tool": "stamp_order", "args": {"order_id": "o"}}]}]
    data["tools"] = [t for t in data["tools"] if t["name"] == "stamp_order"]
    r = validate_domain(_text(data), text=True, **FAST)
    assert r.reasons == ["oracle_failure"] and r.oracle_successes < r.tasks


def test_duplicate_name_and_near_duplicate_tools(tmp_path: Path) -> None:
    zoo = existing_tools([get_domain("retail_orders")])
    data = _retail()
    r = validate_domain(_text(data), text=True, existing_names={"retail_orders"}, existing=zoo, **FAST)
    assert r.reasons == ["duplicate_name"]  # the same domain itself is not its own near-duplicate
    data["domain"] = "shop2"
    r = validate_domain(_text(data), text=True, existing=zoo, **FAST)
    assert r.reasons == ["near_duplicate_tool"] and "get_order" in r.error_text()
    # Renamed tools with the same schema and a near-identical description are still caught...
    for t in data["tools"]:
        t["name"] = "x_" + t["name"]
    for s in data["subtasks"]:
        for st in s["solution"]:
            st["tool"] = "x_" + st["tool"]
    r = validate_domain(_text(data), text=True, existing=zoo, **FAST)
    assert r.reasons == ["near_duplicate_tool"] and "similar" in r.error_text()
    # ...but not with a different description.
    for t in data["tools"]:
        t["description"] = f"Operation {t['name']} on the shop's warehouse ledger, version 2."
    r = validate_domain(_text(data), text=True, existing=zoo, **FAST)
    assert r.ok, r.error_text()
