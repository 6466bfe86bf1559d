"""Questions: answers follow from the facts, options cover the answers, yes/no stay balanced."""

from __future__ import annotations

from collections import Counter

import numpy as np

from qheart.data.synth import findings as F
from qheart.data.synth.questions import TEMPLATES, Facts, YesNoBalance, _build, ask
from qheart.data.synth.ranges import ABOVE, BELOW, WITHIN

FACTS = Facts(
    scp=frozenset({F.SINUS_RHYTHM, F.RBBB, F.T_INVERSION, F.mi_statement("inferior"), F.Q_WAVES}),
    lead_findings={F.T_INVERSION: ("V1", "V2"), F.Q_WAVES: ("II", "III", "aVF")},
    axis=F.AXIS_LEFT,
    stage=F.STAGES["old"],
    extrasystole=None,
    noise={F.BASELINE_DRIFT: ("V5", "V6")},
    feature_ranges={"rr interval": WITHIN, "p duration": WITHIN, "pr interval": BELOW,
                    "qrs duration": ABOVE, "qt interval": WITHIN, "qt corrected": ABOVE},
)  # fmt: skip


def _all(tid: int, n: int = 60) -> list:
    rng = np.random.default_rng(tid)
    return [b for b in (_build(tid, FACTS, rng, k % 2 == 0) for k in range(n)) if b is not None]


def test_lead_queries_name_exactly_the_leads_with_the_finding():
    answers = {attr: set(ans) for ans, attr, _ in _all(19)}
    assert answers == {(F.T_INVERSION,): {"lead V1", "lead V2"},
                       (F.Q_WAVES,): {"lead II", "lead III", "lead aVF"}}  # fmt: skip
    assert {tuple(a) for a, _, _ in _all(34)} == {("lead V5", "lead V6")}


def test_lead_verify_answers_follow_the_lead_sets():
    for answer, (finding,), fill in _all(12) + _all(26):
        present = fill["lead"] in (FACTS.lead_findings.get(finding) or FACTS.noise.get(finding, ()))
        assert answer == (("yes",) if present else ("no",))


def test_choose_answers_are_among_the_offered_options():
    for tid in (3, 4, 6, 7, 13, 21, 24, 30, 31, 37, 40):
        for answer, attribute, fill in _all(tid):
            assert len(attribute) == 2 and attribute[0] != attribute[1]
            assert set(answer) <= set(attribute) or answer == ("none",)
            assert fill["a"] == attribute[0] and fill["b"] == attribute[1]


def test_range_and_feature_queries():
    for answer, (feature,), _ in _all(41):
        assert answer == (FACTS.feature_ranges[feature],)
    for answer, (which,), _ in _all(42):
        assert set(answer) == {f for f, r in FACTS.feature_ranges.items() if r == which}


def test_other_queries_answer_from_the_template_vocabulary():
    assert _all(10)[0][0] == (F.SINUS_RHYTHM,)
    assert set(_all(8)[0][0]) == {F.RBBB, F.mi_statement("inferior")}
    assert _all(22)[0][0] == (F.AXIS_LEFT,)
    assert _all(25)[0][0] == (F.STAGES["old"],)
    assert _all(38)[0][0] == ("none",)
    for tid in (8, 10, 11, 18, 22, 25, 32, 33, 38):
        for answer, attribute, _ in _all(tid):
            assert set(answer) <= set(attribute) | {"none"}


def test_ask_balances_yes_and_no_across_ecgs_and_uses_every_paraphrase_family():
    balance = YesNoBalance()
    questions = [q for seed in range(40) for q in ask(FACTS, 10, np.random.default_rng(seed), balance)]
    verify = Counter(q.answer[0] for q in questions if q.question_type == "single-verify")
    assert abs(verify["yes"] - verify["no"]) <= 1
    assert len({q.paraphrased_text for q in questions}) > len({q.template_text for q in questions})
    for q in questions:
        assert "{" not in q.paraphrased_text and "{" not in q.template_text
        assert q.question_type == TEMPLATES[q.template_id].question_type


def test_every_template_has_several_paraphrases():
    assert all(len(t.paraphrases) >= 4 for t in TEMPLATES.values())
