"""The blind prior baseline: how much of a benchmark can be answered without looking at the ECG.

Each test question is answered with the most frequent training answer of its template and
attribute (the offered options, the finding asked about, ...), falling back to the template's most
frequent answer when that attribute never occurs in training. Scored by exact match
(`answers_match`), per question type. On real ECG-QA a trained question-only model reaches
0.68 / 0.31 / 0.24 on verify / choose / query (paper Table 3, blind); a synthetic benchmark whose
prior baseline is far above that rewards models for learning the question sampler, not the ECG.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from typing import Protocol

from qheart.data.options import answer_set, answers_match


class AskedQuestion(Protocol):
    """What the baseline reads of a question: `Question` (generator) and `QASample` (loader) both fit."""

    template_id: int
    question_type: str
    answer: tuple[str, ...]
    attribute: tuple[str, ...] | None


def attribute_key(sample: AskedQuestion) -> tuple[int, frozenset[str]]:
    """(template, normalised attribute set): the order of the offered options carries no answer."""
    return sample.template_id, answer_set(sample.attribute or ())


def _majority(counter: Counter) -> Hashable:
    """The most frequent answer; ties go to the smallest in sort order, so the result is stable."""
    return min(counter, key=lambda answer: (-counter[answer], sorted(answer)))


def fit_priors(train: Iterable[AskedQuestion]) -> tuple[dict, dict]:
    """Majority answer per (template, attribute) and per template, from the training questions."""
    by_key: dict[tuple, Counter] = defaultdict(Counter)
    by_template: dict[int, Counter] = defaultdict(Counter)
    for sample in train:
        answer = answer_set(sample.answer)
        by_key[attribute_key(sample)][answer] += 1
        by_template[sample.template_id][answer] += 1
    return (
        {key: _majority(c) for key, c in by_key.items()},
        {tid: _majority(c) for tid, c in by_template.items()},
    )


def prior_baseline(train: Sequence[AskedQuestion], test: Sequence[AskedQuestion]) -> dict[str, dict]:
    """Exact-match accuracy of the template + attribute majority answer, per question type.

    Returns `{question_type: {"accuracy": float, "n": int}}` for the types present in `test`;
    a test question whose template never occurs in training counts as wrong.
    """
    per_key, per_template = fit_priors(train)
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for sample in test:
        guess = per_key.get(attribute_key(sample), per_template.get(sample.template_id))
        total[sample.question_type] += 1
        right[sample.question_type] += guess is not None and answers_match(guess, sample.answer)
    return {
        qtype: {"accuracy": round(right[qtype] / total[qtype], 3), "n": total[qtype]}
        for qtype in sorted(total)
    }
