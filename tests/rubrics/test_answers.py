"""The answer judge (toolzoo/rubrics/answers.py): tags judged exactly, the free-text fallback
fails hedges, and honest phrasings pass. Property tests over generated values and rivals."""

from __future__ import annotations

import string

from hypothesis import given, strategies as st

from toolzoo.agents.scripted import NATURAL_PHRASINGS, PHRASINGS, say_answer
from toolzoo.rubrics.answers import (
    Question,
    Vocabulary,
    answer_instructions,
    answer_present,
    judge_window,
    said_in,
    tag_matches,
    with_answer_instructions,
)

TIERS = {"gold", "silver", "bronze"}
STATUS = {"placed", "shipped", "delivered", "refunded", "cancelled"}
IDS = {f"o{i}" for i in range(12)}
VOCAB = Vocabulary([set(TIERS), set(STATUS), set(IDS)])

numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 2)))
words = st.sampled_from(sorted(TIERS | STATUS | IDS))
id_lists = st.lists(st.sampled_from(sorted(IDS)), max_size=4, unique=True)


def test_the_issues_hedges_fail():
    assert not answer_present(True, "yes or no") and not answer_present(False, "yes or no")
    assert not answer_present("gold", "not gold", VOCAB)
    dump = " ".join(str(n) for n in range(501))
    assert not any(answer_present(n, dump) for n in (0, 7, 250, 500))
    assert not answer_present([], "no idea")
    assert not answer_present("no", "No idea.")


@given(numbers)
def test_numbers_by_value_in_tags_and_prose(n):
    assert answer_present(n, f"<answer>{n}</answer>")
    assert answer_present(n, f"The balance is {n}.")
    assert not answer_present(n, f"<answer>{n + 1}</answer>")
    assert not answer_present(n, f"It is {n} or {n + 1}.")
    assert not answer_present(n, f"<answer>{n}</answer> <answer>{n + 1}</answer>")  # more tags than questions


def test_number_formats():
    assert answer_present(1234, "<answer>$1,234.00</answer>")
    assert answer_present(1234, "<answer>1234.</answer>")
    assert not answer_present(1234, "<answer>1234 or 1235</answer>")
    assert not answer_present(1234, "<answer>about 1234</answer>")


@given(words, words)
def test_text_rivals_fail_and_normalised_text_passes(word, rival):
    assert answer_present(word, f"<answer> {word.upper()}. </answer>", VOCAB)
    assert answer_present(word, f"It is {word}.", VOCAB)
    assert not answer_present(word, f"It is not {word}.", VOCAB)
    if rival != word and rival in VOCAB.alternatives(word):
        assert not answer_present(word, f"It is {word} or {rival}.", VOCAB)
        assert not answer_present(word, f"<answer>{word}</answer><answer>{rival}</answer>", VOCAB)
        assert not answer_present(word, f"<answer>{word} or {rival}</answer>", VOCAB)


@given(id_lists, id_lists)
def test_lists_are_sets(items, other):
    tag = "<answer>" + ", ".join(reversed(items)) + "</answer>" if items else "<answer>none</answer>"
    assert answer_present(items, tag, VOCAB)
    assert answer_present(items, "<answer>" + str(list(items)).replace("'", '"') + "</answer>", VOCAB)
    if set(other) != set(items):
        tag_other = "<answer>" + (", ".join(other) or "none") + "</answer>"
        assert not answer_present(items, tag_other, VOCAB)
        prose = ("They are " + " and ".join(other) + ".") if other else "There are none."
        assert not answer_present(items, prose, VOCAB)


@given(st.one_of(numbers, words, id_lists, st.sampled_from(["yes", "no"])), st.sampled_from(sorted(PHRASINGS)))
def test_every_oracle_phrasing_passes(value, phrasing):
    assert answer_present(value, say_answer(value, "?", phrasing), VOCAB)


def test_several_questions_in_one_reply_are_judged_in_order():
    qs = [Question("shipped"), Question("placed")]
    reply = ["The first is shipped. The second is placed."]
    assert all(ok for ok, _ in judge_window(qs, reply, reply, VOCAB))
    hedge = ["shipped. No wait, maybe placed. placed. No wait, maybe shipped."]
    assert not any(ok for ok, _ in judge_window(qs, hedge, hedge, VOCAB))
    tags = ["<answer>shipped</answer> <answer>placed</answer>"]
    assert [ok for ok, _ in judge_window(qs, tags, tags, VOCAB)] == [True, True]
    swapped = ["<answer>placed</answer> <answer>shipped</answer>"]
    assert [ok for ok, _ in judge_window(qs, swapped, swapped, VOCAB)] == [False, False]
    mixed = [Question(3), Question("gold")]  # different kinds: each checked alone
    text = ["1. 3\n2. gold"]
    assert all(ok for ok, _ in judge_window(mixed, text, text, VOCAB))


def test_a_dump_is_not_an_answer():
    everything = ", ".join(sorted(TIERS | STATUS | IDS))
    assert not answer_present(3, f"Here is everything: {everything}, 3.", VOCAB)


def test_tags_in_narration_count_and_unasked_windows_pass():
    assert judge_window([Question(None)], ["<answer>x</answer>"], [], VOCAB) == [(True, "ok")]
    assert judge_window([Question(5)], ["Checking. <answer>5</answer>", "Done."], ["Done."], VOCAB)[0][0]


def test_said_over_a_conversation():
    assert said_in(5, ["<answer>5</answer>", "<answer>gold</answer>"], [], answers=[5, "gold"])
    assert not said_in(6, ["<answer>5</answer>"], [])
    assert said_in("gold", [], ["It's gold."], answers=["gold"], vocab=VOCAB)
    assert not said_in("gold", [], ["gold or silver"], answers=["gold"], vocab=VOCAB)


@given(st.text(string.printable, max_size=30), st.sampled_from(["gold", 5, True, ["o1"]]))
def test_tag_matching_never_raises(raw, expected):
    assert isinstance(tag_matches(expected, raw), bool)


def test_instructions_reach_every_prompt_once():
    assert answer_instructions() in with_answer_instructions(None, "shop")
    once = with_answer_instructions("Be kind.", "shop")
    assert once.startswith("Be kind.") and with_answer_instructions(once) == once
    assert with_answer_instructions("Be kind.", "shop", asks=False) == "Be kind."  # nothing is asked
    assert len(NATURAL_PHRASINGS) == 3
