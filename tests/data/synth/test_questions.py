"""Questions: answers follow from the facts, options cover the answers, yes/no stay balanced, and
no template and attribute predicts its answer."""

from __future__ import annotations

from collections import Counter

import numpy as np

from qheart.data.synth import findings as F
from qheart.data.synth.priors import prior_baseline
from qheart.data.synth.questions import TEMPLATES, AnswerBalance, Facts, Offers, _build, ask
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
    balance = AnswerBalance()
    questions = [q for seed in range(40) for q in ask(FACTS, 10, np.random.default_rng(seed), balance)]
    verify = Counter(q.answer[0] for q in questions if q.question_type == "single-verify")
    assert abs(verify["yes"] - verify["no"]) <= 1
    assert len({q.paraphrased_text for q in questions}) > len({q.template_text for q in questions})
    for q in questions:
        assert "{" not in q.paraphrased_text and "{" not in q.template_text
        assert q.question_type == TEMPLATES[q.template_id].question_type


def test_every_template_has_several_paraphrases():
    assert all(len(t.paraphrases) >= 4 for t in TEMPLATES.values())


def _random_facts(rng: np.random.Generator) -> Facts:
    """A skewed population like the generator's: sinus rhythm, normal axis, no finding dominate."""
    leads = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

    def some_leads() -> tuple[str, ...]:
        start = int(rng.integers(0, 9))
        return leads[start : start + int(rng.integers(1, 4))]

    rhythm = F.SINUS_RHYTHM if rng.random() < 0.6 else str(rng.choice(F.RHYTHMS))
    diagnostic = {d for d in F.DIAGNOSTIC if rng.random() < 0.06}
    lead_findings = {f: some_leads() for f in F.LEAD_FORMS if rng.random() < 0.15}
    mi = any(d in F.MI_STATEMENTS for d in diagnostic)
    return Facts(
        scp=frozenset({rhythm, *diagnostic, *lead_findings}),
        lead_findings=lead_findings,
        axis=F.AXIS_NORMAL if rng.random() < 0.7 else str(rng.choice(F.AXES)),
        stage=str(rng.choice(list(F.STAGES.values()))) if mi else None,
        extrasystole=(F.VES if rng.random() < 0.5 else F.SVES) if rng.random() < 0.12 else None,
        noise={n: some_leads() for n in F.NOISES if rng.random() < 0.12},
        feature_ranges={f: WITHIN if rng.random() < 0.8 else str(rng.choice([BELOW, ABOVE]))
                        for f in FACTS.feature_ranges},
    )  # fmt: skip


def _population(n: int, thin: bool) -> list:
    """Questions about n random ECGs, each asked 10, in order (the first 80 % are "train")."""
    rng = np.random.default_rng(0)
    population = [_random_facts(rng) for _ in range(n)]
    balance = AnswerBalance()
    out = []
    for k, facts in enumerate(population):
        if not thin:
            balance = AnswerBalance()  # a fresh balance has seen no offers: nothing is thinned
        out += ask(facts, 10, np.random.default_rng(k), balance)
    return out


def test_thinning_makes_the_prior_uninformative_on_a_skewed_population():
    def prior(questions):
        cut = int(0.8 * len(questions))
        return {t: v["accuracy"] for t, v in prior_baseline(questions[:cut], questions[cut:]).items()}

    thinned, unthinned = prior(_population(400, thin=True)), prior(_population(400, thin=False))
    assert unthinned["single-choose"] > 0.55 and unthinned["single-query"] > 0.45
    assert thinned["single-choose"] < 0.42 and thinned["single-query"] < 0.32
    assert thinned["single-verify"] < 0.65


def test_thinned_questions_keep_their_count_and_answer_from_the_facts():
    rng = np.random.default_rng(1)
    balance = AnswerBalance()
    for k in range(60):
        facts = _random_facts(rng)
        questions = ask(facts, 10, np.random.default_rng(k), balance)
        assert len(questions) == 10 and len({q.template_text for q in questions}) == 10
        for q in questions:
            if q.template_id == 10:
                assert set(q.answer) == set(facts.scp) & set(F.RHYTHMS)
            if q.template_id in (22, 25):
                assert q.answer == ((facts.axis,) if q.template_id == 22 else (facts.stage or F.NO_STAGE,))
            if q.template_id == 19:
                assert {a.removeprefix("lead ") for a in q.answer} == set(facts.lead_findings[q.attribute[0]])


def test_keep_rate_thins_the_most_offered_answers_to_the_flat_over_th():
    offers = Offers()
    none, a, b = frozenset({"none"}), frozenset({"a"}), frozenset({"b"})
    for label, n in ((none, 100), (a, 10), (b, 5)):
        for _ in range(n):
            offers.add(label)
    assert offers.keep_rate(none, 2) == 0.1 and offers.keep_rate(a, 2) == 1.0
    assert offers.keep_rate(none, 3) == 0.05 and offers.keep_rate(a, 3) == 0.5
    assert offers.keep_rate(b, 3) == 1.0
    lonely = Offers()
    for _ in range(50):
        lonely.add(none)
    assert lonely.keep_rate(none, 2) == 2 / 50  # a key that only ever answers "none" is rarely asked
