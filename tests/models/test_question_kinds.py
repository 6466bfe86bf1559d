"""Free questions are matched to the right question type and options."""

from __future__ import annotations

from qheart.data.options import LEAD_OPTIONS
from qheart.models.question_kinds import question_type_of, resolve_question

CATALOGUE = {
    "templates": {
        "1": {"question_type": "single-verify", "attribute_type": "scp_code",
              "examples": ["Does this ECG show atrial fibrillation?"], "options": []},
        "13": {"question_type": "single-choose", "attribute_type": "scp_code",
               "examples": ["Does lead V2 show inverted t-waves or q waves present?"],
               "options": ["inverted t-waves", "q waves present", "none"]},
        "19": {"question_type": "single-query", "attribute_type": "scp_code",
               "examples": ["Which leads show q waves present?"], "options": list(LEAD_OPTIONS)},
    },
    "template_options": {"1": ["yes", "no"], "13": ["inverted t-waves", "q waves present",
                                                    "non-specific st depression", "none"],
                         "19": [*LEAD_OPTIONS, "none"]},
}


def test_types_options_and_notes() -> None:
    verify = resolve_question("Does lead V2 show q waves present?", CATALOGUE)
    assert verify.question_type == "single-verify" and verify.options == ["yes", "no", "not sure"]
    choose = resolve_question("Does lead V1 show non-specific st depression or q waves present?",
                              CATALOGUE)
    assert choose.question_type == "single-choose"
    assert sorted(choose.options) == ["non-specific st depression", "none", "q waves present"]
    leads = resolve_question("Which leads show q waves?", CATALOGUE)
    assert leads.options == list(LEAD_OPTIONS) and "template 19" in leads.notes[0]
    assert question_type_of("What leads show noise?", {}) == "single-query"
