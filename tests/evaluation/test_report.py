"""Result files (Markdown, JSON, per-question CSV) and the Table 3/4 comparison."""

from __future__ import annotations

import csv
import json

import pytest

from qheart.api import Answer, RetrievedReportView
from qheart.data.ecgqa import QASample
from qheart.evaluation.metrics import exact_match, text_metrics
from qheart.evaluation.report import (
    CSV_COLUMNS,
    PAPER_LABEL,
    PAPER_ROWS,
    QuestionRecord,
    comparison_markdown,
    comparison_rows,
    record_from_answer,
    write_comparison,
    write_results,
    yardstick_markdown,
)
from qheart.evaluation.yardstick import score_yardstick

V, C, Q = "single-verify", "single-choose", "single-query"


def _sample(i: int, qtype: str, answer: tuple[str, ...]) -> QASample:
    return QASample(i, i, 1, qtype, "scp_code", f"question {i}, with a comma?", answer, 100 + i,
                    None)  # fmt: skip


def _answer(sample: QASample, predicted: list[str], options: list[str]) -> Answer:
    return Answer(answer=predicted, question=sample.question, question_type=sample.question_type,
                  options=options, scores=None,
                  reports=[RetrievedReportView(7, 0.9, "sinus rhythm, normal ecg")],
                  decode="generate", raw_text=", ".join(predicted) or "no idea")  # fmt: skip


def _records() -> list[QuestionRecord]:
    s1, s2, s3 = _sample(1, V, ("yes",)), _sample(2, C, ("none",)), _sample(3, Q, ("lead II", "lead V1"))
    return [
        record_from_answer(s1, _answer(s1, ["yes"], ["yes", "no", "not sure"])),
        record_from_answer(s2, _answer(s2, [], ["left axis deviation, marked", "none"]), valid=False),
        record_from_answer(s3, _answer(s3, ["lead V1", "lead II"], ["lead II", "lead V1"])),
    ]


def test_record_from_answer() -> None:
    records = _records()
    assert [r.correct for r in records] == [True, False, True]  # order-free match on the third
    assert [r.valid for r in records] == [True, False, True]
    assert records[0].reports == ["sinus rhythm, normal ecg"]
    assert records[2].ecg_id == 103 and records[2].raw_text == "lead V1, lead II"


def test_write_results_files(tmp_path, monkeypatch) -> None:
    from qheart.evaluation import metrics

    monkeypatch.setattr(metrics, "WORDNET_DIRS", ())  # METEOR without WordNet: fast, and flagged
    monkeypatch.delenv("QHEART_WORDNET_DIR", raising=False)
    records = _records()
    em = exact_match([r.predicted for r in records], [r.gold for r in records],
                     [r.question_type for r in records], [r.attribute_type for r in records])
    text = text_metrics([r.predicted for r in records], [r.gold for r in records],
                        bertscore_model=None)
    paths = write_results(tmp_path / "out", em=em, records=records, text=text,
                          meta={"model": "runs/m", "decode": "generate"})
    md = paths["markdown"].read_text()
    assert "| verify | 1 | 1 | 1.000 |" in md and "**avg** (mean of types)" in md
    assert "- decode: generate" in md and "invalid answers (no option recognised): 1 of 3" in md
    assert "ROUGE-L" in md and "**without synonyms**" in md
    payload = json.loads(paths["json"].read_text())  # standard JSON: NaN written as null
    assert payload["exact_match"]["by_type"][V]["accuracy"] == 1.0
    assert payload["exact_match"]["avg"]["accuracy"] == pytest.approx(2 / 3)
    assert payload["invalid_answers"] == 1 and payload["meta"]["model"] == "runs/m"
    with paths["csv"].open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[0]["question"] == "question 1, with a comma?"
    assert json.loads(rows[1]["options"]) == ["left axis deviation, marked", "none"]  # comma safe
    assert json.loads(rows[2]["predicted"]) == ["lead V1", "lead II"]
    assert json.loads(rows[0]["retrieved_reports"]) == ["sinus rhythm, normal ecg"]
    assert [r["correct"] for r in rows] == ["1", "0", "1"] and rows[1]["valid"] == "0"


def _em(verify: float, choose: float, query: float, n: int = 20):
    """An ExactMatch with the given per-type accuracies over n questions each."""
    pred, gold, types = [], [], []
    for qtype, acc in ((V, verify), (C, choose), (Q, query)):
        k = round(acc * n)
        pred += [["yes"]] * k + [["no"]] * (n - k)
        gold += [["yes"]] * n
        types += [qtype] * n
    return exact_match(pred, gold, types)


def test_comparison_rows_order_stats_and_paper_numbers() -> None:
    results = {
        "mine-extra": [_em(0.5, 0.5, 0.5)],
        "blind": [_em(0.6, 0.3, 0.2), _em(0.7, 0.3, 0.2), _em(0.65, 0.35, 0.2)],
        "Q-HEART": [_em(0.9, 0.6, 0.3), _em(0.8, 0.6, 0.4)],
        "w/o retrieval": [_em(0.85, 0.55, 0.3)],
    }
    rows = comparison_rows(results)
    assert [r.system for r in rows] == ["Q-HEART", "blind", "w/o retrieval", "mine-extra"]
    qheart, blind, no_retrieval, extra = rows
    assert qheart.cells["verify"].mean == pytest.approx(0.85)
    assert qheart.cells["avg"].mean == pytest.approx(((0.9 + 0.6 + 0.3) / 3 + (0.8 + 0.6 + 0.4) / 3) / 2)
    assert blind.cells["verify"].n == 3 and blind.cells["verify"].half_width > 0
    assert qheart.paper == PAPER_ROWS["qheart"] and qheart.paper.avg == 0.614
    assert no_retrieval.paper.avg == 0.605 and no_retrieval.paper.verify is None
    assert extra.paper is None
    ten = comparison_rows(results, paper_subset="10% test")
    assert ten[0].paper.avg == 0.628


def test_comparison_markdown_labels_paper_as_other_data(tmp_path) -> None:
    rows = comparison_rows({"qheart": [_em(0.9, 0.6, 0.3), _em(0.8, 0.6, 0.4)],
                            "deaf": [_em(0.7, 0.3, 0.25)], "frozen-llm": [_em(0.8, 0.5, 0.3)]})
    md = comparison_markdown(rows, data_label="synthetic test")
    assert f'Columns "paper …": {PAPER_LABEL}' in md and "ours, on synthetic test" in md
    assert "| system | verify | choose | query | avg | lead-specific | seeds | paper verify |" in md
    assert "0.850 ± " in md  # two seeds: mean ± interval
    assert "(1 seed)" in md
    assert "0.583 (10% test)" in md  # ablation numbers exist only on the 10% subset
    assert "Different data from ours" in md
    paths = write_comparison(tmp_path, rows, meta={"budget": "10 min"})
    payload = json.loads(paths["json"].read_text())
    assert payload["paper_label"] == PAPER_LABEL
    assert payload["rows"][0]["paper"]["avg"] == 0.614
    assert payload["rows"][1]["cells"]["verify"]["ci_low"] is None  # one seed: no interval (null)


def test_comparison_has_lead_specific_column_from_the_scope_cells() -> None:
    pred = [["yes"], ["no"], ["yes"], ["yes"]]
    gold = [["yes"]] * 4
    em = exact_match(pred, gold, [V] * 4, lead_specific=[True, True, False, False])
    rows = comparison_rows({"qheart": [em], "blind": [_em(0.5, 0.5, 0.5)]})
    assert rows[0].cells["lead-specific"].mean == 0.5
    assert rows[1].cells["lead-specific"].n == 0  # not scored by scope: an empty cell
    md = comparison_markdown(rows)
    assert "| qheart | 0.750 (1 seed) | – | – | 0.750 (1 seed) | 0.500 (1 seed) |" in md


def test_yardstick_markdown() -> None:
    samples = [QASample(i, 0, 1, V, "scp_code", "q", (("yes", "no")[i % 2],), i, ("sinus rhythm",))
               for i in range(10)]  # fmt: skip
    table = score_yardstick(samples, [list(s.answer) for s in samples])
    md = yardstick_markdown(table, skipped={"atrial flutter": "no positive record (1 records read)"})
    assert "| sinus rhythm | 10 | 5 | 1.000 |" in md and "| **overall** |" in md
    assert "Chance = 0.50" in md and "Skipped: atrial flutter" in md
    assert "AUC of p(yes)" not in md  # generate decoding: no scores, no column
    scored = score_yardstick(samples, [["no"]] * 10, [0.9 if i % 2 == 0 else 0.2 for i in range(10)])
    md = yardstick_markdown(scored)
    assert "| AUC of p(yes) |" in md and "| sinus rhythm | 10 | 5 | 0.500 |" in md
    assert md.splitlines()[2].endswith("| 1.000 |")
