"""Paired comparison of two systems on the same questions (exact McNemar, bootstrap interval)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from qheart.evaluation.paired import PairedQuestions, pair_records, paired_cells, paired_markdown
from qheart.evaluation.report import QuestionRecord, read_questions_csv, write_questions_csv

V, C, Q = "single-verify", "single-choose", "single-query"


def _record(i: int, qtype: str, correct: bool, question: str | None = None) -> QuestionRecord:
    return QuestionRecord(question or f"does question {i} hold?", qtype, "scp_code", ["yes"],
                          ["yes" if correct else "no"], ["yes", "no"], ["sinus rhythm"], correct,
                          sample_id=i, ecg_id=100 + i)  # fmt: skip


def _pairs(a: list[bool], b: list[bool], types: list[str]) -> PairedQuestions:
    return PairedQuestions(np.array(a), np.array(b), np.array(types, dtype=object),
                           np.zeros(len(a), bool))


def test_identical_systems_show_no_difference() -> None:
    right = [True, False] * 30
    cells = paired_cells(_pairs(right, right, [V] * 60))
    v = cells["verify"]
    assert v.difference == 0.0 and v.a_only == v.b_only == 0 and v.p_value == 1.0
    assert v.ci_low == v.ci_high == 0.0 and v.verdict() == "no difference shown" and v.better is None


def test_discordant_questions_decide_not_the_accuracies() -> None:
    # A right on 20 questions B misses, B right on none that A misses: McNemar p = 2 · 0.5^20.
    a = [True] * 20 + [True, False] * 40
    b = [False] * 20 + [True, False] * 40
    cells = paired_cells(_pairs(a, b, [C] * 100))
    c = cells["choose"]
    assert (c.a_only, c.b_only) == (20, 0)
    assert c.p_value == pytest.approx(2 * 0.5**20)
    assert c.difference == pytest.approx(0.2) and 0.1 < c.ci_low < 0.2 < c.ci_high < 0.3
    assert c.better == "A" and c.verdict("qheart", "blind") == "qheart better"
    # Swapping the systems mirrors everything.
    mirrored = paired_cells(_pairs(b, a, [C] * 100))["choose"]
    assert mirrored.difference == pytest.approx(-0.2) and mirrored.verdict() == "B better"


def test_avg_is_the_mean_of_per_type_differences_judged_by_its_interval() -> None:
    a = [True] * 10 + [False] * 10 + [True] * 10 + [True] * 10
    b = [False] * 10 + [False] * 10 + [True] * 10 + [True] * 10
    types = [V] * 20 + [Q] * 20
    cells = paired_cells(_pairs(a, b, types))
    assert cells["verify"].difference == pytest.approx(0.5)
    assert cells["query"].difference == 0.0
    assert cells["avg"].difference == pytest.approx(0.25) and math.isnan(cells["avg"].p_value)
    assert cells["avg"].ci_low > 0 and cells["avg"].better == "A"
    assert "choose" not in cells and cells["overall"].n == 40


def test_pairs_by_sample_id_across_seeds_and_refuses_other_questions() -> None:
    a = [_record(i, V, True) for i in range(4)]
    b = [_record(i, V, i % 2 == 0) for i in reversed(range(4))]  # another order, same questions
    pairs = pair_records([a, a], [b, b])  # two seeds, seed with seed
    assert len(pairs.a_correct) == 8 and pairs.b_correct.sum() == 4
    assert pairs.a_correct.all()
    with pytest.raises(ValueError, match="different questions"):
        pair_records([a], [b[:3]])
    with pytest.raises(ValueError, match="runs"):
        pair_records([a, a], [b])


def test_lead_specific_scope_comes_from_the_question() -> None:
    a = [_record(0, Q, True, "Which leads show q waves?"), _record(1, Q, True)]
    b = [_record(0, Q, False, "Which leads show q waves?"), _record(1, Q, True)]
    cells = paired_cells(pair_records([a], [b]))
    assert cells["lead-specific"].n == 1 and cells["lead-specific"].difference == 1.0


def test_csv_round_trip_and_markdown(tmp_path) -> None:
    from dataclasses import replace

    records = [_record(i, V if i % 2 else C, i % 3 == 0) for i in range(6)]
    records[0] = replace(records[0], probabilities={"yes": 0.75, "no": 0.25})  # rank decoding
    path = write_questions_csv(tmp_path / "r_questions.csv", records)
    assert read_questions_csv(path) == records
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][-1] == "option_probabilities"
    older = tmp_path / "older_questions.csv"  # written before option_probabilities existed
    with older.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(row[:-1] for row in rows)
    assert read_questions_csv(older) == [replace(r, probabilities=None) for r in records]
    md = paired_markdown("qheart", "blind", paired_cells(pair_records([records], [records])))
    assert "| verify |" in md and "qheart − blind (95% CI)" in md and "McNemar" in md
    assert "not how training went" in md and "--seeds" in md  # a reader must not over-read it
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"bad\.csv.*no column"):
        read_questions_csv(tmp_path / "bad.csv")
