"""Free generated text → an answer set over the question's options (`generate` decoding).

The paper scores free text; a user who reads "lead II and lead aVR." expects the answer
{lead II, lead aVR}. `parse_generated` is that reading, written down once so every number that
comes from generated text comes from the same rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qheart.data.options import NONE, VERIFY_OPTIONS, answer_set, normalize_answer

__all__ = ["ParsedAnswer", "parse_generated", "parse_generated_detail"]

_SEPARATORS = re.compile(r"[,;\n]|\band\b|\bor\b|&|\+")
"""Between options: commas, semicolons, newlines, "and", "or", "&", "+"."""
_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+)?answer(?:\s+is)?\s*[:\-]?\s*")
"""A leading "Answer:" / "the answer is" that models like to write before the options."""
_EDGE_JUNK = " \t.!?:;\"'`*()[]{}-•"
"""Quotes, brackets, bullets and sentence punctuation around a piece."""


@dataclass(frozen=True)
class ParsedAnswer:
    """What was read from a generated text."""

    answer: list[str]
    """The recognised options, spelled and ordered as in `options`."""
    valid: bool
    """At least one option was recognised (else `answer` is empty)."""
    exact: bool
    """The whole text was options and separators only (the format the prompt asks for)."""


def _clean(text: str) -> str:
    """Lower case, one space between words, a leading "answer:" removed."""
    text = normalize_answer(text.replace("\u2019", "'"))
    return _PREFIX.sub("", text, count=1)


def _phrase_pattern(option: str) -> re.Pattern[str]:
    """An option as a whole phrase: not inside a longer word ("lead i" in "lead ii" fails)."""
    words = [re.escape(w) for w in option.split()]
    return re.compile(r"(?<![\w-])" + r"\s+".join(words) + r"(?![\w-])")


def _scan(text: str, options: Sequence[str]) -> list[tuple[int, int, str]]:
    """(start, end, option) of every option found as a whole phrase, longest options first.

    A longer option claims its span before a shorter one may match inside it, so
    "myocardial infarction in inferior leads" is not also read as "myocardial infarction".
    """
    claimed = [False] * len(text)
    found: list[tuple[int, int, str]] = []
    for option in sorted(options, key=lambda o: (-len(o), o)):
        for match in _phrase_pattern(normalize_answer(option)).finditer(text):
            start, end = match.span()
            if any(claimed[start:end]):
                continue
            claimed[start:end] = [True] * (end - start)
            found.append((start, end, option))
    return sorted(found)


def _leftover(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """The text outside the matched spans, separators and punctuation removed."""
    kept, last = [], 0
    for start, end, _ in spans:
        kept.append(text[last:start])
        last = end
    kept.append(text[last:])
    return " ".join(_pieces(" ".join(kept)))


def _pieces(text: str) -> list[str]:
    return [p.strip(_EDGE_JUNK) for p in _SEPARATORS.split(text) if p.strip(_EDGE_JUNK)]


def parse_generated_detail(text: str, options: Sequence[str]) -> ParsedAnswer:
    """Read generated `text` as a set of `options`. The rule, in order:

    1. Normalise: lower case, whitespace collapsed, a leading "answer:" / "the answer is" dropped.
    2. Find every option (other than "none") as a whole phrase: bounded by non-word characters,
       so "lead I" never matches inside "lead II" / "lead III", and "complete left bundle branch
       block" not inside "incomplete ...". Longer options claim their span first ("lead aVR"
       before any shorter option it contains). Options may themselves hold commas or "and"
       ("low qrs voltages in the frontal and horizontal leads"): matching runs on the whole
       text, before any splitting.
    3. Verify options (yes / no / not sure) exclude one another: when more than one is found,
       the first in the text is the answer ("No, ... yes" reads as "no"; "not sure" is one
       option, never "no").
    4. "none" counts only alone: when no other option was found and a piece of the text (split
       on commas, semicolons, newlines, "and", "or", "&") is exactly "none".
    5. Valid when at least one option was recognised; words that are no option are ignored.
       Negations are not understood ("not lead II" reads as lead II): the prompt asks for
       options only, and `exact` says whether the text was just that.

    The answer is returned in `options`' spelling and order, duplicates removed.
    """
    cleaned = _clean(text)
    scanned = _scan(cleaned, [o for o in options if normalize_answer(o) != NONE])
    if len(scanned) > 1 and answer_set(o for _, _, o in scanned) <= answer_set(VERIFY_OPTIONS):
        scanned = scanned[:1]
    found = {normalize_answer(o) for _, _, o in scanned}
    exact = bool(scanned) and not _leftover(cleaned, scanned)
    if not found and NONE in answer_set(options) and NONE in _pieces(cleaned):
        found = {NONE}
        exact = _pieces(cleaned) == [NONE]
    answer = list(dict.fromkeys(o for o in options if normalize_answer(o) in found))
    return ParsedAnswer(answer=answer, valid=bool(answer), exact=exact)


def parse_generated(text: str, options: Sequence[str]) -> tuple[list[str], bool]:
    """(answer list, valid) read from generated text; the rule is `parse_generated_detail`'s."""
    parsed = parse_generated_detail(text, options)
    return parsed.answer, parsed.valid
