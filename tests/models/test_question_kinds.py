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


EXTRASYSTOLES = {
    "templates": {
        "37": {"question_type": "single-choose", "attribute_type": "scp_code",
               "examples": ["Which extrasystoles are there, ventricular extrasystoles or "
                            "supraventricular extrasystoles?"], "options": []},
        "18": {"question_type": "single-query", "attribute_type": "scp_code",
               "examples": ["What symptoms does this ECG show in lead V1?"],
               "options": ["inverted t-waves", "q waves present", "none"]},
        "8": {"question_type": "single-query", "attribute_type": "scp_code",
              "examples": ["What symptoms does this ECG show?"],
              "options": ["atrial fibrillation", "first degree av block", "none"]},
    },
    "template_options": {"37": ["extrasystoles", "ventricular extrasystoles",
                                "supraventricular extrasystoles", "none"],
                         "18": ["inverted t-waves", "q waves present", "none", *LEAD_OPTIONS],
                         "8": ["atrial fibrillation", "first degree av block", "none"]},
}


def test_a_scene_setting_clause_does_not_hide_the_question() -> None:
    assert question_type_of("In lead V5, does this ECG show inverted t-waves?",
                            CATALOGUE["template_options"]) == "single-verify"
    assert question_type_of("In lead V5, which symptoms are there?", {}) == "single-query"
    between = "Between inverted t-waves and q waves present, which one does lead V1 show?"
    assert question_type_of(between, CATALOGUE["template_options"]) == "single-choose"


def test_phrases_match_as_whole_words_and_leads_as_one_slot() -> None:
    choose = resolve_question("Which extrasystoles can be seen, supraventricular extrasystoles "
                              "or ventricular extrasystoles?", EXTRASYSTOLES)
    assert choose.question_type == "single-choose"  # "ventricular …" is not inside "supra…"
    assert sorted(choose.options) == ["none", "supraventricular extrasystoles",
                                      "ventricular extrasystoles"]  # not the category
    per_lead = resolve_question("What symptoms does this ECG show in lead aVR?", EXTRASYSTOLES)
    assert per_lead.template_id == 18  # the lead template, although the example names V1
    whole = resolve_question("What symptoms does this ECG show?", EXTRASYSTOLES)
    assert whole.template_id == 8
