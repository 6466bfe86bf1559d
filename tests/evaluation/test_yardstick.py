"""The real-data yardstick: balanced questions whose gold answers follow PTB-XL's labels."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from qheart.data.leads import LEADS, canonical_lead_name
from qheart.evaluation.yardstick import (
    NOISE_FINDINGS,
    build_yardstick,
    ecgqa_in_store,
    finding_of,
    parse_noise_leads,
    score_yardstick,
)

from .ptbxl_fixture import EXTRA_BEATS, NOISE, write_ptbxl_labels


@pytest.fixture
def ptbxl(tmp_path):
    write_ptbxl_labels(tmp_path)
    return tmp_path


def _lead(question: str) -> str:
    return canonical_lead_name(re.search(r"lead (\w+)", question).group(1))


def _by_finding(samples):
    groups: dict[str, list] = {}
    for s in samples:
        groups.setdefault(finding_of(s), []).append(s)
    return groups


@pytest.mark.parametrize(
    ("text", "leads", "understood"),
    [
        (", I-AVR,", ("I", "II", "III", "aVR"), True),
        (" , II-AVL,AVF", ("II", "III", "aVR", "aVL", "aVF"), True),
        (" , I-V1,  ", ("I", "II", "III", "aVR", "aVL", "aVF", "V1"), True),
        (" , alles,  ", LEADS, True),
        ("V5", ("V5",), True),
        (" , III,V3,V6", ("III", "V3", "V6"), True),
        ("V6-V4", ("V4", "V5", "V6"), True),
        (None, (), True),
        (float("nan"), (), True),
        ("stark verrauscht", (), False),
        ("V1, nois", ("V1",), False),
    ],
)
def test_parse_noise_leads(text, leads, understood) -> None:
    assert parse_noise_leads(text) == (leads, understood)


def test_every_finding_is_balanced(ptbxl) -> None:
    yardstick = build_yardstick(ptbxl)
    groups = _by_finding(yardstick.samples)
    assert groups, "no questions built"
    asked = {c.finding: c.asked_per_side for c in yardstick.counts}
    for finding, samples in groups.items():
        answers = Counter(s.answer for s in samples)
        assert answers[("yes",)] == answers[("no",)] == asked[finding], finding
        assert set(answers) == {("yes",), ("no",)}
    assert all(s.question_type == "single-verify" for s in yardstick.samples)
    assert [s.sample_id for s in yardstick.samples] == list(range(len(yardstick.samples)))


def test_gold_answers_follow_the_labels(ptbxl) -> None:
    groups = _by_finding(build_yardstick(ptbxl).samples)

    def ids(finding: str, answer: str) -> set[int]:
        return {s.ecg_id for s in groups[finding] if s.answer == (answer,)}

    # sinus rhythm: "no" only for non-sinus rhythms; SBRAD-only (27) and no rhythm (28) never asked
    assert ids("sinus rhythm", "no") == {21, 22, 23, 24, 25, 26}
    assert len(ids("sinus rhythm", "yes")) == 6
    assert not {27, 28} & {s.ecg_id for s in groups["sinus rhythm"]}
    assert ids("atrial fibrillation", "yes") == {21, 22, 23, 24}
    assert 28 not in {s.ecg_id for s in groups["atrial fibrillation"]}
    # inferior MI: IMI 100 and IMI 50 are yes; IMI 15 (uncertain) and ILMI (overlap) never asked
    assert ids("myocardial infarction in inferior leads", "yes") == {30, 31}
    assert not {29, 32} & {s.ecg_id for s in groups["myocardial infarction in inferior leads"]}
    assert ids("complete right bundle branch block", "yes") == {33}
    assert 34 not in {s.ecg_id for s in groups["complete right bundle branch block"]}
    assert ids("ventricular extrasystoles", "yes") == {7}
    assert ids("extrasystoles", "yes") == set(EXTRA_BEATS)
    assert 10 not in {s.ecg_id for s in groups["extrasystoles"]}  # PVC without extra_beats
    # per-lead noise: the answer is whether the lead is in the column's lead list
    for finding in NOISE_FINDINGS:
        for s in groups.get(f"{finding.name} (per lead)", []):
            text = NOISE.get(s.ecg_id, {}).get(finding.column)
            expected = "yes" if _lead(s.question) in parse_noise_leads(text)[0] else "no"
            assert s.answer == (expected,), s
            assert s.ecg_id != 6 or finding.column != "static_noise"  # leads unknown: not asked
    assert 6 in ids("static noise (whole ECG)", "yes")
    for s in groups["any kind of noises (per lead)"]:
        noisy = {lead for cols in NOISE.get(s.ecg_id, {}).values()
                 for lead in parse_noise_leads(cols)[0]}  # fmt: skip
        assert s.answer == (("yes",) if _lead(s.question) in noisy else ("no",))


def test_question_wording_and_attributes(ptbxl) -> None:
    samples = build_yardstick(ptbxl).samples
    afib = next(s for s in samples if s.attribute == ("atrial fibrillation",))
    assert afib.question == "Does this ECG show symptoms of atrial fibrillation?"
    assert (afib.template_id, afib.attribute_type) == (1, "scp_code")
    drift = next(s for s in samples if finding_of(s) == "baseline drift (per lead)")
    assert re.fullmatch(r"Does this ECG show baseline drift in lead \w+\?", drift.question)
    assert (drift.template_id, drift.attribute_type) == (26, "noise")
    paraphrased = build_yardstick(ptbxl, wording="paraphrased").samples
    assert len({s.question for s in paraphrased if s.template_id == 1}) > len(
        {s.question for s in samples if s.template_id == 1})


def test_findings_without_positives_are_reported_and_skipped(ptbxl) -> None:
    yardstick = build_yardstick(ptbxl)
    assert "complete left bundle branch block" in yardstick.skipped
    assert "no positive" in yardstick.skipped["complete left bundle branch block"]
    assert not any(finding_of(s) == "complete left bundle branch block" for s in yardstick.samples)
    count = next(c for c in yardstick.counts if c.finding == "complete left bundle branch block")
    assert (count.positives, count.asked_per_side) == (0, 0) and count.negatives > 0


def test_seeded_sampling_threshold_cap_and_record_filter(ptbxl) -> None:
    a, b, c = build_yardstick(ptbxl, seed=1), build_yardstick(ptbxl, seed=1), build_yardstick(ptbxl, seed=2)
    assert a.samples == b.samples
    assert a.samples != c.samples
    capped = build_yardstick(ptbxl, max_per_side=2)
    assert max(Counter(finding_of(s) for s in capped.samples).values()) <= 4
    # threshold 10: the IMI graded 15 becomes a "yes"
    low = _by_finding(build_yardstick(ptbxl, likelihood_threshold=10).samples)
    assert 29 in {s.ecg_id for s in low["myocardial infarction in inferior leads"]
                  if s.answer == ("yes",)}  # fmt: skip
    only = build_yardstick(ptbxl, ecg_ids=set(range(1, 27)))
    assert {s.ecg_id for s in only.samples} <= set(range(1, 27))


def test_missing_files_are_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"ptbxl_database\.csv"):
        build_yardstick(tmp_path)


def test_score_yardstick(ptbxl) -> None:
    from scipy.stats import binomtest

    samples = build_yardstick(ptbxl).samples
    perfect = score_yardstick(samples, [list(s.answer) for s in samples])
    assert all(r.accuracy == 1.0 for r in perfect.rows)
    assert perfect.overall.n == len(samples) and perfect.overall.p_above_chance < 1e-6
    always_yes = score_yardstick(samples, [["yes"]] * len(samples))
    assert all(r.accuracy == 0.5 for r in always_yes.rows)  # balanced: "yes" is chance
    row = always_yes.overall
    ci = binomtest(row.correct, row.n).proportion_ci()
    assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high))
    assert row.n_yes == row.n // 2
    assert [r.finding for r in perfect.rows] == list(dict.fromkeys(finding_of(s) for s in samples))
    with pytest.raises(ValueError, match="answers"):
        score_yardstick(samples, [])


def test_yardstick_auc_of_p_yes_sees_what_a_constant_answer_hides(ptbxl) -> None:
    samples = build_yardstick(ptbxl).samples
    gold_yes = np.array([s.answer == ("yes",) for s in samples])
    # always "no", but the yes records get the higher p(yes): accuracy 0.5, AUC 1
    ranked = score_yardstick(samples, [["no"]] * len(samples), np.where(gold_yes, 0.4, 0.1))
    assert ranked.overall.accuracy == 0.5 and ranked.overall.auc == 1.0
    assert all(r.auc == 1.0 for r in ranked.rows)
    flat = score_yardstick(samples, [["no"]] * len(samples), np.full(len(samples), 0.3))
    assert flat.overall.auc == 0.5  # ties: the ECG did not move it
    assert score_yardstick(samples, [["no"]] * len(samples)).overall.auc is None
    with pytest.raises(ValueError, match="p\\(yes\\)"):
        score_yardstick(samples, [["no"]] * len(samples), [0.5])


# ------------------------------------------------------------------------------ real samples


def test_real_ptbxl_labels(real_samples) -> None:
    """Balanced questions from the 100 real PTB-XL records; noise answers match ECG-QA's own."""
    yardstick = build_yardstick(real_samples / "ptb-xl")
    groups = _by_finding(yardstick.samples)
    for samples in groups.values():
        answers = Counter(s.answer for s in samples)
        assert answers[("yes",)] == answers[("no",)]
    assert {"sinus rhythm", "atrial flutter", "static noise (per lead)"} <= set(groups)
    # ECG-QA's real questions about these records (templates 26-28) agree with our gold answers
    questions = json.loads((real_samples / "ecg-qa/ptbxl/paraphrased/train/120000.json").read_text())
    ours = {}
    for s in yardstick.samples:
        if s.template_id in (26, 28):
            ours[(s.template_id, s.ecg_id, s.attribute[0], _lead(s.question))] = s.answer[0]
    shared = 0
    for q in questions:
        if q["template_id"] in (26, 28) and q["ecg_id"][0] <= 100:
            key = (q["template_id"], q["ecg_id"][0], q["attribute"][0], _lead(q["question"]))
            if key in ours:
                shared += 1
                assert ours[key] == q["answer"][0], key
    assert shared > 0


def test_noise_parsing_reproduces_ecgqa_on_real_records(real_samples) -> None:
    """All 82 real ECG-QA noise questions on records 1-100, answered from the PTB-XL columns."""
    database = pd.read_csv(real_samples / "ptb-xl/ptbxl_database.csv", dtype=str)
    rows = database.set_index(database["ecg_id"].astype(int))
    column = {f.name: f.column for f in NOISE_FINDINGS}
    questions = json.loads((real_samples / "ecg-qa/ptbxl/paraphrased/train/120000.json").read_text())
    checked = 0
    for q in questions:
        ecg_id = q["ecg_id"][0]
        if ecg_id > 100:
            continue
        row, attribute = rows.loc[ecg_id], q["attribute"][0]
        if q["template_id"] == 26:
            yes = _lead(q["question"]) in parse_noise_leads(row[column[attribute]])[0]
        elif q["template_id"] == 27:
            yes = bool(parse_noise_leads(row[column[attribute]])[0])
        else:  # 28: any kind of noise in the lead
            yes = any(_lead(q["question"]) in parse_noise_leads(row[c])[0] for c in column.values())
        assert q["answer"] == ["yes" if yes else "no"], q
        checked += 1
    assert checked == 82


def test_ecgqa_questions_in_store(real_samples) -> None:
    """The real ECG-QA noise questions whose ECG is among the 100 real records (a store's ids)."""
    database = pd.read_csv(real_samples / "ptb-xl/ptbxl_database.csv", usecols=["ecg_id"])
    store = set(database["ecg_id"].astype(int))
    kept, missing, loaded = ecgqa_in_store(real_samples / "ecg-qa/ptbxl", store, split="train")
    assert len(kept) == 82 and len(kept) + len(missing) == len(loaded.samples) == 10_000
    assert {s.ecg_id for s in kept} <= store
    assert {s.attribute_type for s in kept} == {"noise"}
    assert Counter(s.template_id for s in kept) == {26: 44, 28: 28, 27: 10}
    comparison, _, loaded_test = ecgqa_in_store(real_samples / "ecg-qa/ptbxl", store, split="test")
    assert comparison == [] and sum(loaded_test.skipped.values()) > 0  # two-ECG questions skipped
