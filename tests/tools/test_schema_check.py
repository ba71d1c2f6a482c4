"""``validation.schema_problem`` (compiled meta-schema first, the reference only when that or
a ``pattern`` says no) gives exactly the reference's verdict and message, and a valid schema
never imports ``jsonschema``."""

from __future__ import annotations

import subprocess
import sys

import jsonschema
from hypothesis import given, settings
from hypothesis import strategies as st

from toolzoo.tools.validation import schema_problem
from toolzoo.tools.zoo import builtin_names, get_domain


def reference(schema) -> str | None:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"invalid JSON Schema: {exc.message}" + (f" (at {where})" if where else "")
    return None


BAD = [{"type": "strin"}, {"properties": 3}, {"type": "object", "required": "x"}, {"minimum": "a"},
       {"type": "string", "pattern": "("}, {"patternProperties": {"(": {}}}, {"items": [{}]},
       {"type": ["string", "string"]}, {"additionalProperties": 1}, {"properties": {"a": {"pattern": "[z-a]"}}},
       {"enum": [{"pattern": "("}]}, {"format": 5}, {"$defs": {"x": {"type": 3}}}]

keywords = st.recursive(
    st.one_of(st.just({}), st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "object", "strin", 3])}),
              st.fixed_dictionaries({"pattern": st.sampled_from(["^a", "(", "[a-z]+", "\\d{2}", "[z-a]"])}),
              st.fixed_dictionaries({"minimum": st.one_of(st.integers(), st.text(max_size=2))}),
              st.fixed_dictionaries({"enum": st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=3)}),
              st.fixed_dictionaries({"required": st.one_of(st.lists(st.text(max_size=2), max_size=2), st.text(max_size=2))})),
    lambda inner: st.one_of(
        st.fixed_dictionaries({"properties": st.dictionaries(st.text(max_size=3), inner, max_size=3)}),
        st.fixed_dictionaries({"patternProperties": st.dictionaries(st.sampled_from(["^x", "(", "a+"]), inner, max_size=2)}),
        st.fixed_dictionaries({"items": inner}), st.fixed_dictionaries({"anyOf": st.lists(inner, min_size=0, max_size=2)})),
    max_leaves=6)


def test_every_builtin_domain_schema_and_the_bad_ones_agree_with_the_reference():
    schemas = list(BAD)
    for name in builtin_names():
        domain = get_domain(name)
        schemas += [c.schema_ for c in domain.spec.state.values()]
        schemas += [t.spec.parameters for t in domain.tools.values()]
    assert len(schemas) > 40
    for schema in schemas:
        assert schema_problem(schema) == reference(schema), schema
    assert all(schema_problem(s) is not None for s in BAD if s != {"enum": [{"pattern": "("}]})
    assert schema_problem({"enum": [{"pattern": "("}]}) is None  # data, not a schema: the reference agrees


@settings(max_examples=400, deadline=None)
@given(keywords)
def test_random_schemas_agree_with_the_reference(schema):
    assert schema_problem(schema) == reference(schema)


def test_loading_a_domain_and_valid_calls_never_import_jsonschema():
    code = ("import sys; sys.modules['gymnasium'] = None\n"
            "from toolzoo.tools.zoo import get_domain\nfrom toolzoo.tools.runtime import DomainRuntime\n"
            "from toolzoo.tools.state import seed_state\n"
            "d = get_domain('retail_orders'); rt = DomainRuntime(d, seed_state(d.spec, 0))\n"
            "order = sorted(rt.state.data['orders'])[0]\n"
            "assert not rt.call_sync('get_order', {'order_id': order}).is_error\n"
            "print('jsonschema' in sys.modules)\n"
            "bad = rt.call_sync('get_order', {'order_id': 5})\n"
            "print('jsonschema' in sys.modules, bad.is_error, bad.content)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "False", out
    assert out[1].startswith("True True get_order: invalid arguments: argument 'order_id'"), out
