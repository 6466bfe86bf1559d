"""The answer space of ECG-QA: Q-HEART's candidate options (paper Table 1) and answer matching.

Every string below is spelled exactly as the ECG-QA 1.0.2 release writes it. Checked against
`ptbxl/answers.csv` and `{ptbxl,mimic-iv-ecg}/answers_for_each_template.csv` in
`shared/real-samples/ecg-qa` (the files of the release, unchanged):

- verify answers: `yes`, `no`, `not sure` (answers.csv rows 0-2); "no answer" is `none` (row 6).
- leads: `lead I`, `lead II`, `lead III`, `lead aVR`, `lead aVL`, `lead aVF`, `lead V1` ... `lead V6`
  (rows 67-78): the word "lead", a space, and the canonical lead name with lower-case "a" and
  upper-case "VR/VL/VF" — i.e. `"lead " + name` for every name in `qheart.data.leads.LEADS`.
- numeric features: `rr interval`, `p duration`, `pr interval`, `qrs duration`, `qt interval`,
  `qt corrected` (rows 98-103; lower case, "qt corrected" rather than "qtc").
- ranges: `below the normal range`, `within the normal range`, `above the normal range`
  (rows 95-97).
- the MIMIC-IV-ECG edition writes many findings in mixed case (`Left ventricular hypertrophy`,
  `ST Elevation`), the PTB-XL edition all lower case: compare answers through `normalize_answer`.
- the templates that ask "what leads" (19, 34), "what numeric features" (42, 54-56, 68-70) and
  "what range" (40) also allow `none` in `answers_for_each_template.csv`; Table 1 lists no `none`
  for these, and we follow Table 1, so a gold `none` there is not among the options
  (`options_cover` reports such samples).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from qheart.data.leads import LEADS

if TYPE_CHECKING:
    from qheart.data.ecgqa import QASample

NONE = "none"
VERIFY_OPTIONS: tuple[str, ...] = ("yes", "no", "not sure")
LEAD_OPTIONS: tuple[str, ...] = tuple(f"lead {name}" for name in LEADS)
NUMERIC_FEATURE_OPTIONS: tuple[str, ...] = (
    "rr interval", "p duration", "pr interval", "qrs duration", "qt interval", "qt corrected",
)  # fmt: skip
RANGE_OPTIONS: tuple[str, ...] = (
    "below the normal range", "within the normal range", "above the normal range",
)  # fmt: skip


class QueryKind(StrEnum):
    """Which row of Table 1 a single-query question falls under."""

    LEADS = "leads"
    NUMERIC_FEATURES = "numeric_features"
    RANGE = "range"
    OTHER = "other"


# Table 1's conditions ("starts with ...") and the fixed option list of each special row.
_QUERY_PREFIXES: dict[QueryKind, str] = {
    QueryKind.LEADS: "what leads",
    QueryKind.NUMERIC_FEATURES: "what numeric features",
    QueryKind.RANGE: "what range",
}
_QUERY_OPTIONS: dict[QueryKind, tuple[str, ...]] = {
    QueryKind.LEADS: LEAD_OPTIONS,
    QueryKind.NUMERIC_FEATURES: NUMERIC_FEATURE_OPTIONS,
    QueryKind.RANGE: RANGE_OPTIONS,
}


class OptionsError(ValueError):
    """No candidate options can be built for a sample (message names the sample)."""


def normalize_answer(text: str) -> str:
    """One answer string in comparable form: lower case, outer and repeated whitespace removed."""
    return " ".join(text.split()).lower()


def answer_set(answers: Iterable[str]) -> frozenset[str]:
    """The order-free, normalised set of answers: ECG-QA answers are sets written as lists."""
    return frozenset(normalize_answer(a) for a in answers)


def answers_match(predicted: Iterable[str], gold: Iterable[str]) -> bool:
    """Exact match as the paper scores it: same normalised set, order and case ignored."""
    return answer_set(predicted) == answer_set(gold)


def query_kind(sample: QASample, template_options: Mapping[int, list[str]]) -> QueryKind:
    """Table 1's row for a single-query question.

    The paper's condition is the question's opening words. Paraphrased questions do not keep them
    ("Which leads show ..."), so a question also counts as that kind when its template's ECG-QA
    answer list (`answers_for_each_template.csv`, paraphrase-invariant) holds only that kind's
    options plus `none`. On the template variant both tests agree.
    """
    opening = normalize_answer(sample.question)
    for kind, prefix in _QUERY_PREFIXES.items():
        if opening.startswith(prefix):
            return kind
    known = answer_set(template_options.get(sample.template_id, ())) - {NONE}
    if known:
        for kind, options in _QUERY_OPTIONS.items():
            if known <= answer_set(options):
                return kind
    return QueryKind.OTHER


def _attribute_list(sample: QASample, template_options: Mapping[int, list[str]]) -> list[str]:
    """The sample's `attribute` list; the template's ECG-QA options where the sample has none."""
    if sample.attribute:
        return list(sample.attribute)
    fallback = [o for o in template_options.get(sample.template_id, ()) if normalize_answer(o) != NONE]
    if not fallback:
        raise OptionsError(
            f"sample {sample.sample_id} (template {sample.template_id}): no attribute list and "
            "no options for its template in answers_for_each_template.csv"
        )
    return fallback


def _with_none(options: list[str]) -> list[str]:
    """Append `none` unless the list already holds it (in any case)."""
    if NONE in answer_set(options):
        return options
    return [*options, NONE]


def candidate_options(sample: QASample, template_options: Mapping[int, list[str]]) -> list[str]:
    """The options Q-HEART shows in the prompt for this sample, per paper Table 1.

    verify → yes, no, not sure; choose → attribute list + none; query → the 12 leads, the 6
    numeric features or the 3 ranges for those question kinds (`query_kind`), else attribute
    list + none. The order is fixed here; training shuffles it each step.
    """
    if sample.question_type == "single-verify":
        return list(VERIFY_OPTIONS)
    if sample.question_type == "single-choose":
        return _with_none(_attribute_list(sample, template_options))
    if sample.question_type == "single-query":
        kind = query_kind(sample, template_options)
        if kind is QueryKind.OTHER:
            return _with_none(_attribute_list(sample, template_options))
        return list(_QUERY_OPTIONS[kind])
    raise OptionsError(
        f"sample {sample.sample_id}: question type {sample.question_type!r} has no Table 1 options "
        "(only single-verify/choose/query questions do)"
    )


_FIXED_OPTION_SETS = frozenset(answer_set(o) for o in (VERIFY_OPTIONS, *_QUERY_OPTIONS.values()))


def options_name_the_candidates(options: Iterable[str]) -> bool:
    """Whether the options alone say what is asked about: an attribute list ("atrial
    fibrillation; sinus rhythm; none"), not one of Table 1's fixed lists (yes/no, the 12 leads,
    the numeric features, the ranges), which say nothing without the question."""
    return answer_set(options) not in _FIXED_OPTION_SETS


def options_cover(sample: QASample, options: Iterable[str]) -> bool:
    """Whether every gold answer of the sample is among the options (normalised)."""
    return answer_set(sample.answer) <= answer_set(options)


def names_in_text(text: str, names: Sequence[str]) -> list[str]:
    """The `names` written in a free text (a question), whole words only, longest first and
    not overlapping, in the order they appear: how a question without a known attribute says
    which findings or numeric features it is about."""
    lowered = text.lower()
    taken = [False] * (len(lowered) + 1)
    found: list[tuple[int, str]] = []
    for name in sorted(names, key=len, reverse=True):
        for match in re.finditer(rf"(?<![a-z0-9]){re.escape(name.lower())}(?![a-z0-9])", lowered):
            if not any(taken[match.start():match.end()]):
                taken[match.start():match.end()] = [True] * (match.end() - match.start())
                found.append((match.start(), name))
    return [name for _, name in sorted(found)]
