"""Does an expected answer appear in what the agent said? Numbers compare as numbers."""

from __future__ import annotations

import json
import math
import re
from typing import Any

_NUMBER = re.compile(r"(?<![\w.])[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w])")
_TRUE = {"yes", "true"}
_FALSE = {"no", "false"}


def numbers_in(text: str) -> list[float]:
    return [float(m.group().replace(",", "")) for m in _NUMBER.finditer(text)]


def _word_in(word: str, text: str) -> bool:
    pattern = r"(?<![A-Za-z0-9_])" + re.escape(word.strip()) + r"(?![A-Za-z0-9_])"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def answer_present(expected: Any, text: str) -> bool:
    """True when ``expected`` is stated in ``text``: numbers by value, text as a whole word
    (case-insensitive), booleans as yes/no or true/false, lists element by element."""
    if expected is None:
        return True
    if isinstance(expected, bool):
        words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
        return bool(words & (_TRUE if expected else _FALSE))
    if isinstance(expected, (int, float)):
        return any(math.isclose(n, float(expected), rel_tol=1e-9, abs_tol=1e-9) for n in numbers_in(text))
    if isinstance(expected, str):
        return _word_in(expected, text) if expected.strip() else True
    if isinstance(expected, (list, tuple)):
        if not expected:  # "nothing" must be said, not implied by silence
            return re.search(r"\[\s*\]|\b(none|nothing|empty|no\s+\w+)\b", text, flags=re.IGNORECASE) is not None
        return all(answer_present(item, text) for item in expected)
    if isinstance(expected, dict):
        return all(answer_present(v, text) for v in expected.values())
    return _word_in(json.dumps(expected), text)
