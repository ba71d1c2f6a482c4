"""LLM synthesis end to end against the local stub server: good, broken-then-fixed and hopeless
domains; the report's counts must match what the script makes the model do."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from toolzoo.synth.cli import synth_command
from toolzoo.synth.llm_synth import extract_yaml, identifier
from toolzoo.synth.offline import draw_domain, to_yaml
from toolzoo.synth.validate import existing_tools, near_duplicates
from toolzoo.tools.spec import DomainSpec
from toolzoo.testing import OpenAIStub
from toolzoo.tools.loader import load_domain
from toolzoo.tools.zoo import ZOO_DIR


def _domain(name: str, taken: list) -> dict:
    """An offline-generated domain that is no near-duplicate of the ones drawn before it."""
    rng = random.Random(name)
    while True:
        data = dict(draw_domain(rng, 0), domain=name)
        spec = DomainSpec.model_validate(data)
        if not near_duplicates(spec, existing_tools(taken)):
            taken.append(spec)
            return data


def _reply(text: str) -> dict:
    return {"content": f"Here is the domain.\n```yaml\n{text}```\nHope it helps."}


@pytest.fixture(scope="module")
def script() -> dict:
    used: list = []
    good, fixed, hopeless = _domain("good_one", used), _domain("fixme_one", used), _domain("hopeless_one", used)
    broken_data = json.loads(json.dumps(fixed))
    broken_data["tools"][0]["effects"][-1] = {"return": "state..oops["}  # CEL that does not compile
    broken = to_yaml(broken_data)
    unreachable = dict(hopeless, tools=hopeless["tools"] + [{
        "name": "ping_service", "description": "Check that the service answers.",
        "parameters": {"type": "object", "properties": {}}, "effects": [{"return": "'pong'"}]}])
    domains = {"alpha": [{"name": "Good One", "description": "a good domain"},
                         {"name": "fixme_one", "description": "needs one repair"}],
               "beta": [{"name": "hopeless_one", "description": "never valid"}]}
    return {"rules": [
        {"match": "`fixme_one` failed validation", "reply": _reply(to_yaml(fixed))},
        {"match": "`hopeless_one` failed validation", "reply": _reply(to_yaml(unreachable))},
        {"match": "for the domain `good_one`", "reply": _reply(to_yaml(good))},
        {"match": "for the domain `fixme_one`", "reply": _reply(broken)},
        {"match": "for the domain `hopeless_one`", "reply": _reply(to_yaml(unreachable))},
        *({"match": f"category '{c}'", "reply": {"content": json.dumps({"domains": d})}} for c, d in domains.items()),
    ]}


def test_synth_good_repaired_hopeless(tmp_path: Path, script: dict) -> None:
    with OpenAIStub(script) as stub:
        code = synth_command(str(tmp_path), categories="alpha, beta", domains_per_category=2, tools_per_domain=5,
                             base_url=stub.base_url, model="stub", repair_attempts=2,
                             console=Console(width=120, record=True))
        bodies = stub.bodies()
    assert code == 0
    report = json.loads((tmp_path / "synth_report.json").read_text())
    assert (report["generated"], report["accepted"], report["repaired"], report["rejected"]) == (3, 2, 1, 1)
    assert report["reasons"] == {"unreachable_tool": 1}
    by_name = {d["name"]: d for d in report["domains"]}
    assert by_name["good_one"]["attempts"] == 1 and not by_name["good_one"]["repaired"]
    assert by_name["fixme_one"]["attempts"] == 2 and by_name["fixme_one"]["repaired"]
    assert by_name["hopeless_one"]["attempts"] == 3 and by_name["hopeless_one"]["status"] == "rejected"
    assert any("ping_service" in e for e in by_name["hopeless_one"]["errors"])
    # Accepted domains are on disk, load, and were solved by the oracle.
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == ["fixme_one.yaml", "good_one.yaml"]
    for name in ("good_one", "fixme_one"):
        assert load_domain(tmp_path / f"{name}.yaml").name == name
        assert by_name[name]["tasks"] == by_name[name]["oracle_successes"] > 0
    # The repair prompt fed the validation errors back, in the same conversation.
    repairs = [b for b in bodies if "failed validation" in b["messages"][-1]["content"]]
    assert len(repairs) == 1 + 2
    fix = next(b for b in repairs if "fixme_one" in b["messages"][-1]["content"])
    assert "load_error" in fix["messages"][-1]["content"] and len(fix["messages"]) == 3
    # The generation prompt carries the format spec and the example domain.
    first = next(b for b in bodies if "for the domain `good_one`" in b["messages"][-1]["content"])
    assert "pick(" in first["messages"][0]["content"] and "domain: retail_orders" in first["messages"][0]["content"]


def test_existing_tool_names_are_rejected(tmp_path: Path) -> None:
    """A domain that re-declares a zoo tool (refund_order) is a near-duplicate, with no repair."""
    zoo = yaml.safe_load((ZOO_DIR / "retail_orders.yaml").read_text())
    zoo["domain"] = "shop_copy"
    script = {"rules": [
        {"match": "category 'shops'", "reply": {"content": json.dumps({"domains": [{"name": "shop_copy", "description": "x"}]})}},
        {"match": "shop_copy", "reply": _reply(to_yaml(zoo))},
    ]}
    with OpenAIStub(script) as stub:
        code = synth_command(str(tmp_path), categories="shops", domains_per_category=1, base_url=stub.base_url,
                             model="stub", repair_attempts=0, console=Console(width=120, record=True))
    report = json.loads((tmp_path / "synth_report.json").read_text())
    assert code == 1
    assert (report["generated"], report["accepted"], report["rejected"]) == (1, 0, 1)
    assert report["reasons"] == {"near_duplicate_tool": 1}


def test_extract_yaml_and_identifier() -> None:
    assert extract_yaml("blah\n```yaml\na: 1\n```\nmore") == "a: 1\n"
    assert extract_yaml("a: 1") == "a: 1\n"
    assert identifier("Good One!") == "good_one" and identifier("3d printing") == "d_3d_printing"


def test_categories_are_evolved_when_not_given(tmp_path: Path, script: dict) -> None:
    import asyncio

    from toolzoo.llm import LLMClient, LLMConfig
    from toolzoo.synth.llm_synth import SynthParams, synthesize_llm

    rules = [{"match": "distinct categories", "reply": {"content": json.dumps({"categories": ["Alpha", "Gamma Rays"]})}},
             {"match": "category 'gamma_rays'", "reply": {"content": json.dumps({"domains": []})}},
             *script["rules"]]
    with OpenAIStub({"rules": rules}) as stub:
        async def main():
            async with LLMClient(LLMConfig(model="stub", base_url=stub.base_url)) as client:
                return await synthesize_llm(client, SynthParams(n_categories=2, domains_per_category=1,
                                                                lengths=[1, 2], seeds=[0]), tmp_path)
        report = asyncio.run(main())
    assert report.categories == ["alpha", "gamma_rays"]
    assert (report.generated, report.accepted, report.rejected) == (1, 1, 0)
    assert [d.name for d in report.domains] == ["good_one"]
