"""Reading generated text back into options: the documented rule, on the cases that trip it."""

from __future__ import annotations

import pytest

from qheart.data.options import LEAD_OPTIONS, NUMERIC_FEATURE_OPTIONS, VERIFY_OPTIONS
from qheart.evaluation.parse import parse_generated, parse_generated_detail

BLOCKS = ["complete left bundle branch block", "incomplete left bundle branch block", "none"]
MI = ["myocardial infarction", "myocardial infarction in inferior leads", "none"]
LOW_VOLTAGE = "low qrs voltages in the frontal and horizontal leads"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lead I", ["lead I"]),
        ("lead II", ["lead II"]),
        ("lead III", ["lead III"]),
        ("lead III, lead I", ["lead I", "lead III"]),  # options' order, not the text's
        ("Lead II and lead III.", ["lead II", "lead III"]),
        ("lead aVR", ["lead aVR"]),
        ("LEAD AVL\nlead avf", ["lead aVL", "lead aVF"]),
        ("lead V1, lead V6", ["lead V1", "lead V6"]),
        ("lead II, lead II", ["lead II"]),
    ],
)
def test_leads_are_read_whole(text: str, expected: list[str]) -> None:
    answer, valid = parse_generated(text, LEAD_OPTIONS)
    assert valid
    assert answer == expected


def test_lead_prefix_is_not_a_lead() -> None:
    # "lead a" / "lead v" / "lead i" inside longer tokens must not match anything.
    assert parse_generated("lead a, lead v10, lead iv", LEAD_OPTIONS) == ([], False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("qt interval", ["qt interval"]),
        ("qt corrected", ["qt corrected"]),
        ("QT corrected and qt interval", ["qt interval", "qt corrected"]),
        ("pr interval; rr interval", ["rr interval", "pr interval"]),
    ],
)
def test_numeric_features(text: str, expected: list[str]) -> None:
    assert parse_generated(text, NUMERIC_FEATURE_OPTIONS) == (expected, True)


def test_longer_option_claims_its_span_first() -> None:
    assert parse_generated("myocardial infarction in inferior leads", MI)[0] == [
        "myocardial infarction in inferior leads"
    ]
    assert parse_generated("incomplete left bundle branch block", BLOCKS)[0] == [
        "incomplete left bundle branch block"
    ]
    both = "complete left bundle branch block, incomplete left bundle branch block"
    assert parse_generated(both, BLOCKS)[0] == BLOCKS[:2]


def test_options_with_commas_and_and_inside() -> None:
    options = [LOW_VOLTAGE, "q waves present", "none"]
    detail = parse_generated_detail(f"{LOW_VOLTAGE} and q waves present", options)
    assert detail.answer == [LOW_VOLTAGE, "q waves present"]
    assert detail.exact


@pytest.mark.parametrize(
    ("text", "expected", "exact"),
    [
        ("yes", ["yes"], True),
        ("No.", ["no"], True),
        ("Yes, there is static noise in lead II.", ["yes"], False),
        ("There is no baseline drift in this ECG.", ["no"], False),
        ("No, it is not present; yes would be wrong", ["no"], False),  # first verify option wins
        ("I am not sure.", ["not sure"], False),  # "not sure" is one option, never "no"
        ("Answer: yes", ["yes"], True),
    ],
)
def test_verify_answers_inside_longer_text(text: str, expected: list[str], exact: bool) -> None:
    detail = parse_generated_detail(text, VERIFY_OPTIONS)
    assert (detail.answer, detail.valid, detail.exact) == (expected, True, exact)


def test_yes_inside_a_word_is_not_yes() -> None:
    assert parse_generated("eyes nothing knows", VERIFY_OPTIONS) == ([], False)


def test_none_only_alone() -> None:
    assert parse_generated("none", BLOCKS) == (["none"], True)
    assert parse_generated("None.", BLOCKS) == (["none"], True)
    # with a real option, "none" is dropped; a sentence around "none" is not "none"
    assert parse_generated("complete left bundle branch block, none", BLOCKS) == ([BLOCKS[0]], True)
    assert parse_generated("there are none of these", BLOCKS) == ([], False)
    # "none" is not an option of lead questions
    assert parse_generated("none", LEAD_OPTIONS) == ([], False)


def test_nothing_recognised_is_invalid() -> None:
    for text in ("", "   ", "the ecg looks fine", "lead X"):
        detail = parse_generated_detail(text, LEAD_OPTIONS)
        assert detail == detail.__class__([], False, False)


def test_every_ecgqa_answer_reads_as_itself(real_samples) -> None:
    """All 104 answers of ECG-QA's answers.csv, each offered among all of them, read back alone."""
    import csv

    with (real_samples / "ecg-qa/ptbxl/answers.csv").open(encoding="utf-8", newline="") as f:
        options = [row["class"] for row in csv.DictReader(f)]
    assert len(options) == 104
    for option in options:
        detail = parse_generated_detail(option, options)
        assert (detail.answer, detail.exact) == ([option], True), option
