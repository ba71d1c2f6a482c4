"""Judging what the agent answered: a committed answer channel, judged exactly, and a strict
free-text fallback.

The channel is an ``<answer>…</answer>`` tag in the agent's reply, documented to the agent by
:func:`answer_instructions` (appended to every generated task's system prompt). A tag rather
than a built-in answer tool because it needs nothing from the tool layer: it works on every
tier, over the direct and MCP sessions and tool subsets alike, with any agent (text-only
policies included), and the tag stays in the transcript the judges already read.

Rules, per reply window (the agent's messages answering one user turn; see
:mod:`toolzoo.rubrics.verifiable`):

* Tags: exactly one per question of the window, in the order asked. More or fewer tags than
  questions fail every question of the window (that is how hedging with many tags fails); a
  tag is judged exactly: numbers by value, text normalised (case, spaces, quotes, a final
  period), booleans as yes/no/true/false, lists as sets (JSON or comma-separated), dicts as
  JSON objects. A tag holding several alternatives is simply not equal to the value.
* No tag: the free-text fallback reads the replies that handed the turn back (no tool calls).
  The expected value must be stated, not negated ("not gold"), and the replies may state no
  *other candidate* for it: another number, the other boolean, another value of the same
  enum / field / collection keys (the :class:`Vocabulary` of the episode's state) -- the
  question's own values included: "50 or 150" fails even when 50 was the deposit. A reply that
  recites many of the state's values is a dump, not an answer. Several questions of one kind
  answered in one reply must each be stated once, in their own sentence, in the order asked.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable

ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w])")
_NUMBER_TAG = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_LIST_MARKER = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+", re.MULTILINE)  # "1. ", "2) ", "- " at a line start
_TRUE = frozenset({"yes", "true"})
_FALSE = frozenset({"no", "false"})
_YES_NO = _TRUE | _FALSE
# "no" answers only when it is not the start of "no idea", "no objects", ...: followed by a word it is prose.
_BOOL_WORD = re.compile(r"(?<![\w-])(yes|true|false|no(?![\w-])(?!\s+[a-z]))(?![\w-])", re.IGNORECASE)
_EMPTY = re.compile(r"\[\s*\]|\b(none|nothing|nobody|no\s+one|empty|no\s+\w+s)\b", re.IGNORECASE)
_EMPTY_TAG = {"", "none", "nothing", "nobody", "no one", "empty", "[]"}
_NEGATION = re.compile(r"(?:\bnot|n't|\bno longer|\bnever|\brather than|\binstead of)\s+(?:\w+\s+){0,2}$",
                       re.IGNORECASE)

_INSTRUCTIONS = (
    "Answer format: when a request asks for information, put the answer value inside answer tags, "
    "e.g. <answer>42</answer>: exactly one tag per question, in the order the questions were asked, "
    "holding only the value (a number, a word or id, yes or no, or a comma-separated list; "
    "<answer>none</answer> for an empty list). More tags than questions, or a tag holding several "
    "alternatives, counts as a wrong answer. Requests that only ask you to do something need no tag.")
_DEFAULT_OPENER = ("You are a careful assistant with access to tools for the {domain} domain. "
                   "Use the tools to do what the user asks.")


def answer_instructions() -> str:
    """The answer channel as the agent reads it in every task's system prompt."""
    return _INSTRUCTIONS


def asks_for_values(domain: Any) -> bool:
    """Whether any goal template of ``domain`` (a loaded Domain) asks for a value."""
    return any(t.spec.answer is not None for t in domain.subtasks)


def with_answer_instructions(prompt: str | None, domain: str = "", *, asks: bool = True) -> str:
    """A task's system prompt: the domain's own (or a generic opener) plus the answer channel,
    which is left out (``asks=False``) for a domain none of whose templates asks for a value:
    it would only lengthen every prompt (a small model trained from scratch pays for each
    token). Decided per domain, so every task of a domain has the same system prompt."""
    base = (prompt or _DEFAULT_OPENER.format(domain=domain or "given")).strip()
    if _INSTRUCTIONS in base or not asks:
        return base
    return f"{base}\n\n{_INSTRUCTIONS}"


def numbers_in(text: str) -> list[float]:
    return [float(m.group().replace(",", "")) for m in _NUMBER.finditer(text)]


def tagged_answers(text: str) -> list[str]:
    return [m.group(1) for m in ANSWER_TAG.finditer(text or "")]


# -- exact judging of one tag ---------------------------------------------------------------------

_FINAL_STOPS = re.compile(r"[.!]+$")
_GROUPED = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def normalise(text: Any) -> str:
    if isinstance(text, str) and len(text) <= 200:
        return _normalise_short(text)  # judges normalise the same few values again and again
    return _normalise(text)


def _normalise(text: Any) -> str:
    s = str(text).strip().strip("`'\"").strip()
    s = _FINAL_STOPS.sub("", s).strip().strip("`'\"")
    return " ".join(s.split()).casefold()


_normalise_short = lru_cache(maxsize=8192)(_normalise)


def _as_number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return float(raw)
    t = normalise(raw).lstrip("$€£")
    if _GROUPED.fullmatch(t):
        t = t.replace(",", "")
    return float(t) if _NUMBER_TAG.fullmatch(t) else None


def _as_bool(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    t = normalise(raw)
    return True if t in _TRUE else False if t in _FALSE else None


def _is_yes_no(value: Any) -> bool:
    return isinstance(value, str) and normalise(value) in _YES_NO


def _key(value: Any) -> tuple[str, Any]:
    """A comparable form of a list element: numbers by value, booleans, normalised text."""
    if isinstance(value, bool):
        return ("b", value)
    n = _as_number(value)
    if n is not None:
        return ("n", n)
    return ("s", normalise(value))


def _as_list(raw: str) -> list[Any]:
    t = raw.strip()
    if t.startswith("["):
        try:
            value = json.loads(t)
        except ValueError:
            value = None
        if isinstance(value, list):
            return value
        t = t.strip("[]")
    if normalise(t) in _EMPTY_TAG:
        return []
    return [p for p in (q.strip().strip("`'\"") for q in re.split(r",|;|\band\b", t)) if p]


def tag_matches(expected: Any, raw: str) -> bool:
    """One tag's content against the expected value, exactly."""
    if expected is None:
        return True
    if isinstance(expected, bool) or _is_yes_no(expected):
        want = expected if isinstance(expected, bool) else normalise(expected) in _TRUE
        return _as_bool(raw) is want
    if isinstance(expected, (int, float)):
        n = _as_number(raw)
        return n is not None and math.isclose(n, float(expected), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(expected, str):
        return normalise(raw) == normalise(expected)
    if isinstance(expected, (list, tuple)):
        items = _as_list(raw)
        return {_key(v) for v in items} == {_key(v) for v in expected}
    if isinstance(expected, dict):
        try:
            got = json.loads(raw)
        except ValueError:
            return False
        return isinstance(got, dict) and set(map(str, got)) == set(map(str, expected)) and all(
            tag_matches(v, json.dumps(got[str(k)]) if not isinstance(got[str(k)], str) else got[str(k)])
            for k, v in expected.items())
    return normalise(raw) == normalise(json.dumps(expected))


# -- the vocabulary of candidates ------------------------------------------------------------------

class Vocabulary:
    """Groups of values that are alternatives to each other: a collection's record keys, the
    string values one field takes, a collection's field names, a schema enum.

    Built on first use when given ``build``: a reply answered through tags never needs the
    rival groups, and walking every state value was most of an episode's judging time."""

    def __init__(self, groups: list[set[str]] | None = None,
                 build: Callable[[], list[set[str]]] | None = None):
        self._groups = groups
        self._build = build

    @property
    def groups(self) -> list[set[str]]:
        if self._groups is None:
            self._groups = self._build() if self._build is not None else []
        return self._groups

    def alternatives(self, value: Any) -> set[str]:
        v = normalise(value)
        out = {v}
        for group in self.groups:
            if v in group:
                out |= group
        return out

    def all_keys(self) -> set[str]:
        return set().union(*self.groups) if self.groups else set()


def _enums(schema: Any) -> Iterable[set[str]]:
    if isinstance(schema, dict):
        enum = schema.get("enum")
        if isinstance(enum, list) and all(isinstance(e, str) for e in enum):
            yield {normalise(e) for e in enum}
        for v in schema.values():
            yield from _enums(v)
    elif isinstance(schema, list):
        for v in schema:
            yield from _enums(v)


_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")


@lru_cache(maxsize=256)
def _domain_groups(domain: str) -> tuple[frozenset[str], ...]:
    """Rival groups a domain declares outside its state: every string enum of its state schemas,
    and the string literals of each parameterless ``defs`` constant (a table of airports and
    their cities). None when the domain cannot be loaded by that name."""
    try:
        from toolzoo.tools.zoo import get_domain
        spec = get_domain(domain).spec
    except Exception:  # noqa: BLE001 - an unknown or unloadable domain just has no such groups
        return ()
    groups = [frozenset(e) for coll in spec.state.values() for e in _enums(coll.schema_)]
    for name, d in spec.defs.items():
        source = d if isinstance(d, str) else (d.expr if not d.params else "")
        if "(" in name or not source:
            continue
        literals = frozenset(normalise(a or b) for a, b in _LITERAL.findall(source) if (a or b).strip())
        if len(literals) > 1:
            groups.append(literals)
    return tuple(groups)


def _is_map(value: dict[str, Any]) -> bool:
    """A dict keyed by ids (``payment_methods: {pm_1: ...}``) rather than a record of fields."""
    return bool(value) and all(isinstance(v, dict) for v in value.values()) and (
        len(value) > 8 or any(any(ch.isdigit() for ch in str(k)) for k in value))


def _walk(value: Any, path: str, groups: dict[str, set[str]], record_key: Any = None) -> None:
    """Collect, per field path (map keys and list indices collapsed), the strings found there,
    the keys of id-keyed maps, and the field names of records."""
    if isinstance(value, dict):
        if _is_map(value):
            groups.setdefault(path + "{}", set()).update(normalise(k) for k in value)
            for v in value.values():
                _walk(v, path + ".*", groups)
        else:
            groups.setdefault(path + "#fields", set()).update(
                normalise(k) for k, v in value.items() if v != record_key)
            for k, v in value.items():
                _walk(v, f"{path}.{k}", groups)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _walk(v, path + "[]", groups)
    elif isinstance(value, str):
        groups.setdefault(path, set()).add(normalise(value))


def vocabulary(states: Iterable[dict[str, dict[str, Any]] | None], domain: str = "",
               results: Iterable[tuple[str, Any]] | Callable[[], Iterable[tuple[str, Any]]] = ()) -> Vocabulary:
    """The rival groups of an episode's states: each collection's keys, the strings each field
    path holds (nested records and lists included), id-keyed maps' keys, records' field names,
    the domain's string enums and constants, and the values of the tool results the agent saw
    (``results``: (tool name, structured result), or a function giving them, called only when
    the groups are first needed)."""
    states = list(states)
    results = results if callable(results) else list(results)

    def build() -> list[set[str]]:
        groups: dict[str, set[str]] = {}
        nonlocal results
        if callable(results):
            results = list(results())
        for state in states:
            for coll, records in (state or {}).items():
                if not isinstance(records, dict):
                    continue
                groups.setdefault(coll + "{}", set()).update(normalise(k) for k in records)
                for key, rec in records.items():
                    _walk(rec, coll, groups, record_key=key)
        for name, result in results:
            _walk(result, f"tool:{name}", groups)
        out = [g for g in groups.values() if g]
        return out + ([set(e) for e in _domain_groups(domain)] if domain else [])

    return Vocabulary(build=build)


# -- the free-text fallback -----------------------------------------------------------------------

def _mentions(word: str, text: str) -> list[int]:
    pattern = r"(?<![A-Za-z0-9_])" + re.escape(word) + r"(?![A-Za-z0-9_])"
    return [m.start() for m in re.finditer(pattern, text, flags=re.IGNORECASE)]


def _affirmed(word: str, text: str) -> tuple[bool, bool]:
    """(stated without a negation at least once, negated at least once)."""
    plain = negated = False
    for pos in _mentions(word, text):
        if _NEGATION.search(text[max(0, pos - 40): pos]):
            negated = True
        else:
            plain = True
    return plain, negated


def _number_negated(target: float, text: str) -> bool:
    for m in _NUMBER.finditer(text):
        if math.isclose(float(m.group().replace(",", "")), target, rel_tol=1e-9, abs_tol=1e-9) \
                and _NEGATION.search(text[max(0, m.start() - 40): m.start()]):
            return True
    return False


DUMP_VALUES = 8  # distinct state values a reply may name beyond 3 per question, before it is a dump
_TOKEN = re.compile(r"[\w-]+")


def is_dump(text: str, questions: int, vocab: Vocabulary | None) -> bool:
    """Whether a reply recites more of the state's values (or numbers) than any answer needs:
    listing everything seen is not stating an answer, even with no rival of the asked kind."""
    limit = DUMP_VALUES + 3 * questions
    known = vocab.all_keys() if vocab else set()
    named = {t for t in (normalise(w) for w in _TOKEN.findall(text)) if t in known}
    return len(named) > limit or len(set(numbers_in(text))) > limit


def _kind(value: Any) -> str:
    if isinstance(value, bool) or _is_yes_no(value):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "text"


def _text_candidates(text: str, pool: set[str]) -> tuple[set[str], set[str]]:
    """(affirmed candidates, negated ones) among ``pool`` in ``text``."""
    found, negated = set(), set()
    for word in pool:
        if not word:
            continue
        plain, neg = _affirmed(word, text)
        if plain:
            found.add(word)
        if neg:
            negated.add(word)
    return found, negated


def stated_alone(expected: Any, text: str, *, allowed: Iterable[Any] = (),
                 vocab: Vocabulary | None = None) -> tuple[bool, str]:
    """The free-text rule: ``expected`` is stated in ``text`` and no other candidate is.
    ``allowed`` holds the other expected answers of the same reply (stated together)."""
    if expected is None:
        return True, "ok"
    vocab = vocab or Vocabulary()
    text = text or ""
    if len(_LIST_MARKER.findall(text)) >= 2:  # an enumerated reply: "1. ..., 2. ..." are not answers
        text = _LIST_MARKER.sub(" ", text)
    allowed = [expected, *allowed]
    kind = _kind(expected)
    if kind == "bool":
        want = expected if isinstance(expected, bool) else normalise(expected) in _TRUE
        said = {w.lower() in _TRUE for w in _BOOL_WORD.findall(text)}
        ok_values = {a if isinstance(a, bool) else normalise(a) in _TRUE for a in allowed if _kind(a) == "bool"}
        if want not in said:
            return False, f"expected answer {expected!r} not stated"
        extra = said - ok_values
        return (not extra), "ok" if not extra else "the reply states both yes and no"
    if kind == "number":
        target = float(expected)
        ok_values = {float(a) for a in allowed if _kind(a) == "number"}
        nums = set(numbers_in(text))
        if not any(math.isclose(n, target, rel_tol=1e-9, abs_tol=1e-9) for n in nums):
            return False, f"expected answer {expected!r} not stated"
        if _number_negated(target, text):
            return False, f"the reply negates {expected!r}"
        extra = {n for n in nums if not any(
            math.isclose(n, v, rel_tol=1e-9, abs_tol=1e-9) for v in ok_values)}
        return _verdict(extra)
    if kind == "text" and _as_number(expected) is not None:  # an id of digits: other numbers are rivals
        others = {n for n in numbers_in(text) if not math.isclose(n, _as_number(expected), rel_tol=1e-12)}
        if others:
            return _verdict(others)
    if kind == "text":
        want = normalise(expected)
        ok_values = {normalise(a) for a in allowed if _kind(a) == "text"}
        found, negated = _text_candidates(text, vocab.alternatives(want))
        if want in negated:
            return False, f"the reply negates {expected!r}"
        if want not in found:
            return False, f"expected answer {expected!r} not stated"
        extra = found - ok_values
        return _verdict(extra)
    if kind == "list":
        if any(_kind(e) not in ("text", "bool") for e in expected):  # numbers: each by value, as one set
            nums = [e for e in expected]
            return _all_stated(nums, text, allowed, vocab)
        want = {normalise(e) for e in expected}
        ok_values = want | {normalise(x) for a in allowed for x in (a if isinstance(a, (list, tuple)) else [a])
                            if isinstance(x, str)}
        pool = set().union(*(vocab.alternatives(e) for e in want)) if want else vocab.all_keys()
        found, negated = _text_candidates(text, pool | want)
        if want & negated:
            return False, f"the reply negates {_show(sorted(want & negated))}"
        if not want:
            if not _EMPTY.search(text):
                return False, "expected an empty list: the reply does not say there are none"
            extra = found - ok_values
            return (not extra), "ok" if not extra else f"expected none, the reply names {_show(sorted(extra))}"
        missing = want - found
        if missing:
            return False, f"expected answer {list(expected)!r} not stated (missing {_show(sorted(missing))})"
        extra = found - ok_values
        return (not extra), "ok" if not extra else f"the reply also names {_show(sorted(extra))}"
    return _all_stated(list(expected.values()), text, allowed, vocab)


def _all_stated(items: list[Any], text: str, allowed: list[Any], vocab: Vocabulary) -> tuple[bool, str]:
    for item in items:
        ok, why = stated_alone(item, text, allowed=[*items, *allowed], vocab=vocab)
        if not ok:
            return ok, why
    return True, "ok"


def _show(values: list[Any]) -> str:
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values[:5])
    return shown + (" ..." if len(values) > 5 else "")


def _verdict(extra: set[Any]) -> tuple[bool, str]:
    if not extra:
        return True, "ok"
    return False, f"the reply also states {_show(sorted(extra))}: more than one candidate"


# -- one reply window -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Question:
    expected: Any


def judge_window(questions: list[Question], texts: list[str], replies: list[str],
                 vocab: Vocabulary | None = None) -> list[tuple[bool, str]]:
    """Per question, (answered, reason). ``texts``: every agent message of the window (tags
    count wherever they are); ``replies``: the messages that handed the turn back (the
    free-text fallback reads only these, not the narration around tool calls)."""
    asked = [i for i, q in enumerate(questions) if q.expected is not None]
    out: list[tuple[bool, str]] = [(True, "ok")] * len(questions)
    if not asked:
        return out
    tags = [t for text in texts for t in tagged_answers(text)]
    if tags:
        if len(tags) != len(asked):
            why = f"{len(tags)} tagged answers for {len(asked)} question(s): one <answer> tag per question"
            for i in asked:
                out[i] = (False, why)
            return out
        for i, raw in zip(asked, tags):
            ok = tag_matches(questions[i].expected, raw)
            out[i] = (ok, "ok" if ok else f"expected answer {questions[i].expected!r}, tagged {raw.strip()[:80]!r}")
        return out
    reply = "\n".join(replies)
    if is_dump(reply, len(asked), vocab):
        for i in asked:
            out[i] = (False, "the reply recites many values of the state: a dump is not an answer")
        return out
    for group in _same_kind(questions, asked, vocab):
        if len(group) == 1:
            i = group[0]
            out[i] = stated_alone(questions[i].expected, reply, vocab=vocab)
            continue
        # several questions of one kind in one reply: each must be stated alone in its own
        # sentence, in the order asked (a set would let "X. No, Y. Y. No, X." through)
        segments = _segments(reply, [questions[i].expected for i in group], vocab)
        if len(segments) != len(group):
            why = (f"{len(group)} questions of one kind answered in {len(segments)} sentence(s) naming such values: "
                   "state each answer once, in order, or use one <answer> tag per question")
            for i in group:
                out[i] = (False, why)
            continue
        for i, segment in zip(group, segments):
            out[i] = stated_alone(questions[i].expected, segment, vocab=vocab)
    return out


_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")


def _pool(expected: Any, vocab: Vocabulary | None) -> set[str]:
    vocab = vocab or Vocabulary()
    if _kind(expected) == "list":
        return set().union(*(vocab.alternatives(e) for e in expected)) if expected else vocab.all_keys()
    return vocab.alternatives(expected)


def _same_kind(questions: list[Question], asked: list[int], vocab: Vocabulary | None) -> list[list[int]]:
    """Asked questions grouped by the kind of value they ask for (texts: by rival pool)."""
    groups: list[tuple[str, set[str], list[int]]] = []
    for i in asked:
        kind, pool = _kind(questions[i].expected), set()
        if kind == "text":
            pool = _pool(questions[i].expected, vocab)
        for gkind, gpool, members in groups:
            if gkind == kind and (kind != "text" or gpool & pool):
                members.append(i)
                gpool |= pool
                break
        else:
            groups.append((kind, pool, [i]))
    return [members for _, _, members in groups]


def _segments(reply: str, expected: list[Any], vocab: Vocabulary | None) -> list[str]:
    """The sentences of ``reply`` that name a value of the kind ``expected`` asks for."""
    if len(_LIST_MARKER.findall(reply)) >= 2:
        reply = _LIST_MARKER.sub("\n", reply)
    kind = _kind(expected[0])
    pool = set().union(*(_pool(e, vocab) for e in expected)) if kind in ("text", "list") else set()
    wants_empty = kind == "list" and any(not e for e in expected)
    out = []
    for sentence in (s.strip() for s in _SENTENCE.split(reply)):
        if not sentence:
            continue
        if kind == "number":
            relevant = bool(numbers_in(sentence))
        elif kind == "bool":
            relevant = bool(_BOOL_WORD.search(sentence))
        else:
            relevant = any(_mentions(w, sentence) for w in pool if w) or (wants_empty and bool(_EMPTY.search(sentence)))
        if relevant:
            out.append(sentence)
    return out


def answer_present(expected: Any, text: str, vocab: Vocabulary | None = None) -> bool:
    """``expected`` is the answer of ``text`` taken as one reply to one question (tag or fallback)."""
    return judge_window([Question(expected)], [text], [text], vocab)[0][0]


def said_in(value: Any, texts: list[str], replies: list[str], *, answers: Iterable[Any] = (),
            vocab: Vocabulary | None = None) -> bool:
    """Over a whole conversation (rubric checks' ``said``): ``value`` is one of the tagged
    answers; without any tag, the replies state it and no candidate beyond the task's answers."""
    if value is None:
        return True
    tags = [t for text in texts for t in tagged_answers(text)]
    if tags:
        return any(tag_matches(value, t) for t in tags)
    answers = [a for a in answers if a is not None]
    reply = "\n".join(replies)
    if is_dump(reply, len(answers), vocab):
        return False
    return stated_alone(value, reply, allowed=answers, vocab=vocab)[0]
