"""Which questions are about particular leads (the positional skip's questions)."""

from __future__ import annotations

import pytest

from qheart.data.leads import is_lead_specific


@pytest.mark.parametrize(("question", "expected"), [
    ("Does lead V6 show any static noise?", True),
    ("In lead V2, is there electrodes problems or static noise?", True),
    ("What leads of this recording contain baseline drift?", True),
    ("Does this ECG show q waves present in lead V3?", True),
    ("Does this ECG show atrial fibrillation?", False),
    ("Which misleading finding does this ECG show?", False),  # "lead" inside a word
    ("What is the heart axis of this ECG?", False),
])  # fmt: skip
def test_is_lead_specific(question: str, expected: bool) -> None:
    assert is_lead_specific(question) is expected
