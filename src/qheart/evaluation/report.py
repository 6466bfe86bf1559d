"""Evaluation results as files people read and tools parse: Markdown, JSON, per-question CSV.

Also the Table 3/4-style comparison: one row per system (Q-HEART, blind, deaf, the six
ablations), EM per question type as mean ± 95% CI over seeds, with the paper's numbers beside
them, labelled as what they are: the paper's, on real ECG-QA, i.e. other data than ours.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qheart.data.options import answers_match
from qheart.evaluation.metrics import (
    LEAD_SPECIFIC,
    TYPE_SHORT,
    Cell,
    ExactMatch,
    MeanCI,
    TextMetrics,
    mean_ci,
)

if TYPE_CHECKING:
    from qheart.api import Answer
    from qheart.data.ecgqa import QASample
    from qheart.evaluation.yardstick import FindingCount, YardstickTable

__all__ = [
    "CSV_COLUMNS",
    "PAPER_LABEL",
    "PAPER_ROWS",
    "PAPER_SOURCE",
    "SYSTEMS",
    "ComparisonRow",
    "PaperRow",
    "QuestionRecord",
    "comparison_markdown",
    "comparison_rows",
    "em_markdown",
    "read_questions_csv",
    "record_from_answer",
    "text_metrics_markdown",
    "write_comparison",
    "write_questions_csv",
    "write_results",
    "yardstick_markdown",
]

COLUMNS: tuple[str, ...] = ("verify", "choose", "query", "avg")
LEAD_COLUMN = LEAD_SPECIFIC
"""Ours only (the paper has no such column): EM on questions that name a lead, where removing
the lead-positional skip should cost accuracy."""


# ------------------------------------------------------------------------------ per question


@dataclass(frozen=True)
class QuestionRecord:
    """One evaluated question, as a row of the per-question CSV."""

    question: str
    question_type: str
    attribute_type: str
    gold: list[str]
    predicted: list[str]
    options: list[str]
    reports: list[str]
    """The retrieved reports that were in the prompt, most similar first."""
    correct: bool
    sample_id: int | None = None
    ecg_id: int | None = None
    valid: bool = True
    """False where generated text named no option (the answer is then empty)."""
    raw_text: str | None = None
    probabilities: dict[str, float] | None = None
    """Rank decoding: each option's probability as the whole answer (None for generate)."""


CSV_COLUMNS: tuple[str, ...] = (
    "sample_id", "ecg_id", "question", "question_type", "attribute_type", "gold", "predicted",
    "options", "retrieved_reports", "correct", "valid", "raw_text", "option_probabilities",
)  # fmt: skip
"""List cells (gold, predicted, options, retrieved_reports) are JSON arrays: options may hold
commas, so a JSON array is the one unambiguous way to write a list into one cell;
option_probabilities is a JSON object (empty for generate)."""
OPTIONAL_COLUMNS: tuple[str, ...] = ("option_probabilities",)
"""Columns a results CSV from an earlier version lacks; reading it leaves them None."""


def record_from_answer(sample: QASample, answer: Answer, *, valid: bool = True) -> QuestionRecord:
    """A CSV row from an ECG-QA sample and what `QHeart` answered for it."""
    return QuestionRecord(
        question=sample.question, question_type=sample.question_type,
        attribute_type=sample.attribute_type, gold=list(sample.answer),
        predicted=list(answer.answer), options=list(answer.options),
        reports=[r.report for r in answer.reports],
        correct=answers_match(answer.answer, sample.answer), sample_id=sample.sample_id,
        ecg_id=sample.ecg_id, valid=valid and bool(answer.answer), raw_text=answer.raw_text,
        probabilities=dict(answer.scores) if answer.scores is not None else None,
    )  # fmt: skip


def write_questions_csv(path: str | Path, records: Iterable[QuestionRecord]) -> Path:
    """One row per question (columns `CSV_COLUMNS`), UTF-8, header first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in records:
            writer.writerow([
                "" if r.sample_id is None else r.sample_id, "" if r.ecg_id is None else r.ecg_id,
                r.question, r.question_type, r.attribute_type, json.dumps(r.gold),
                json.dumps(r.predicted), json.dumps(r.options), json.dumps(r.reports),
                int(r.correct), int(r.valid), "" if r.raw_text is None else r.raw_text,
                "" if r.probabilities is None else json.dumps(r.probabilities),
            ])  # fmt: skip
    return path


def read_questions_csv(path: str | Path) -> list[QuestionRecord]:
    """The records `write_questions_csv` wrote (to compare two systems question by question).
    A file without the columns of `CSV_COLUMNS` is refused, naming the file and what it lacks."""
    path = Path(path)
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS
                   if c not in (reader.fieldnames or []) and c not in OPTIONAL_COLUMNS]
        if missing:
            raise ValueError(f"{path}: not a per-question results CSV (no column "
                             f"{', '.join(missing)})")
        optional_int = lambda v: int(v) if v else None  # noqa: E731
        try:
            return [QuestionRecord(
                question=row["question"], question_type=row["question_type"],
                attribute_type=row["attribute_type"], gold=json.loads(row["gold"]),
                predicted=json.loads(row["predicted"]), options=json.loads(row["options"]),
                reports=json.loads(row["retrieved_reports"]), correct=row["correct"] == "1",
                sample_id=optional_int(row["sample_id"]), ecg_id=optional_int(row["ecg_id"]),
                valid=row["valid"] == "1", raw_text=row["raw_text"] or None,
                probabilities=json.loads(row["option_probabilities"])
                if row.get("option_probabilities") else None,
            ) for row in reader]  # fmt: skip
        except (ValueError, TypeError) as e:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"{path}, line {reader.line_num}: {e}") from None


# ------------------------------------------------------------------------------ Markdown


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _ci(cell: Cell) -> str:
    return f"{_num(cell.ci_low)}–{_num(cell.ci_high)}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def em_markdown(em: ExactMatch) -> str:
    """Per-type, avg and overall EM with counts and 95% intervals; then per attribute type."""
    rows = [(TYPE_SHORT.get(t, t), c.n, c.correct, _num(c.accuracy), _ci(c))
            for t, c in em.by_type.items()]  # fmt: skip
    rows.append(("**avg** (mean of types)", em.avg.n, em.avg.correct, _num(em.avg.accuracy),
                 _ci(em.avg)))  # fmt: skip
    rows.append(("overall (all questions)", em.overall.n, em.overall.correct,
                 _num(em.overall.accuracy), _ci(em.overall)))  # fmt: skip
    text = _table(("question type", "n", "correct", "EM", "95% CI"), rows)
    text += "\n\nIntervals: Wilson score per cell; avg: stratified percentile bootstrap."
    if em.by_attribute:
        attr_rows = [(a, c.n, _num(c.accuracy), _ci(c)) for a, c in em.by_attribute.items()]
        text += "\n\n" + _table(("attribute type", "n", "EM", "95% CI"), attr_rows)
    if em.by_scope:
        scope_rows = [(s, c.n, _num(c.accuracy), _ci(c)) for s, c in em.by_scope.items()]
        text += "\n\n" + _table(("question scope", "n", "EM", "95% CI"), scope_rows)
    return text


def text_metrics_markdown(tm: TextMetrics) -> str:
    rows = [
        ("BERTScore F1", _num(tm.bertscore_f1),
         f"{tm.bertscore_model}, layer {tm.bertscore_layer}" if tm.bertscore_model else "not computed"),
        ("ROUGE-L F1", _num(tm.rouge_l), "rouge-score"),
        ("METEOR", _num(tm.meteor),
         "nltk, WordNet synonyms" if tm.meteor_synonyms else "nltk, **without synonyms** (no WordNet)"),
        ("BLEU-1", _num(tm.bleu1), "nltk sentence BLEU, unigram"),
    ]  # fmt: skip
    text = _table(("metric", "mean", "how"), rows)
    text += f"\n\n{tm.n} answers, each list joined as sorted, normalised text."
    return text + "".join(f"\n\nNote: {note}" for note in tm.notes)


def yardstick_markdown(table: YardstickTable, counts: Sequence[FindingCount] | None = None,
                       skipped: Mapping[str, str] | None = None) -> str:
    """Accuracy per finding vs chance, with exact binomial intervals; skipped findings listed."""
    with_auc = table.overall.auc is not None

    def line(r: Any, bold: bool = False) -> tuple:
        name = f"**{r.finding}**" if bold else r.finding
        p = "<0.001" if r.p_above_chance < 0.001 else _num(r.p_above_chance)
        cells = (name, r.n, r.n_yes, _num(r.accuracy), f"{_num(r.ci_low)}–{_num(r.ci_high)}", p)
        return (*cells, "–" if r.auc is None else _num(r.auc)) if with_auc else cells

    rows = [line(r) for r in table.rows] + [line(table.overall, bold=True)]
    header = ("finding", "n", "yes", "accuracy", "95% CI (exact)", "p (> chance)")
    text = _table((*header, "AUC of p(yes)") if with_auc else header, rows)
    text += f"\n\nChance = {table.chance:.2f} (balanced yes/no per finding)."
    if with_auc:
        text += (" AUC of p(yes): how well the model's yes-probability ranks the yes records above"
                 " the no records (0.5 = the ECG does not move it), whatever its threshold.")
    if counts:
        ambiguous = sum(c.ambiguous for c in counts)
        text += f" Units left out as ambiguous by the label table: {ambiguous}."
    if skipped:
        text += "\n\nSkipped: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + "."
    return text


# ------------------------------------------------------------------------------ JSON + all files


def _jsonable(value: Any) -> Any:
    """NaN → null so the JSON is standard (json.dumps would write NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def write_results(
    out_dir: str | Path,
    *,
    em: ExactMatch,
    records: Sequence[QuestionRecord] | None = None,
    text: TextMetrics | None = None,
    meta: Mapping[str, Any] | None = None,
    title: str = "Evaluation",
    stem: str = "results",
) -> dict[str, Path]:
    """`<stem>.md`, `<stem>.json` and (with records) `<stem>_questions.csv` in `out_dir`.

    `meta` (model, data, split, decode, subset, ...) heads the Markdown and is kept in the JSON.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    invalid = None if records is None else sum(not r.valid for r in records)
    md = [f"# {title}", ""]
    md += [f"- {k}: {v}" for k, v in meta.items()]
    if invalid is not None and records:
        md.append(f"- invalid answers (no option recognised): {invalid} of {len(records)} "
                  f"({invalid / len(records):.1%})")  # fmt: skip
    md += ["", "## Exact match", "", em_markdown(em)]
    if text is not None:
        md += ["", "## Text metrics", "", text_metrics_markdown(text)]
    paths = {"markdown": out / f"{stem}.md", "json": out / f"{stem}.json"}
    paths["markdown"].write_text("\n".join(md) + "\n", encoding="utf-8")
    payload = {"meta": meta, "exact_match": em.to_dict(),
               "text_metrics": None if text is None else text.to_dict(),
               "invalid_answers": invalid, "n_questions": None if records is None else len(records)}
    paths["json"].write_text(json.dumps(_jsonable(payload), indent=2) + "\n", encoding="utf-8")
    if records is not None:
        paths["csv"] = write_questions_csv(out / f"{stem}_questions.csv", records)
    return paths


# ------------------------------------------------------------------------------ Tables 3–4


@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's Tables 3–4 (EM-Acc); None where the paper gives no number."""

    label: str
    subset: str
    verify: float | None
    choose: float | None
    query: float | None
    avg: float | None


PAPER_SOURCE = ("Q-HEART paper, Table 3 (all / 10% test) and Table 4 (ablations, 10% test): "
                "EM accuracy on the real ECG-QA (PTB-XL) test split; as copied in SPEC §5")
PAPER_LABEL = "paper, real ECG-QA (other data)"
PAPER_ROWS: dict[str, PaperRow] = {
    "qheart": PaperRow("Q-HEART", "all test", 0.909, 0.603, 0.329, 0.614),
    "qheart-10pct": PaperRow("Q-HEART", "10% test", 0.913, 0.626, 0.345, 0.628),
    "m3ae": PaperRow("M3AE (classification)", "all test", 0.746, 0.571, 0.410, 0.576),
    "blind": PaperRow("Blind (question only)", "all test", 0.677, 0.310, 0.240, 0.409),
    "deaf": PaperRow("Deaf (ECG only)", "all test", 0.673, 0.314, 0.270, 0.419),
    "no-dynamic-prompting": PaperRow("w/o dynamic prompting", "10% test", None, None, None, 0.616),
    "no-retrieval": PaperRow("w/o retrieval", "10% test", None, None, None, 0.605),
    "no-et-mapper": PaperRow("w/o ET-Mapper", "10% test", None, None, None, 0.600),
    "no-positional-skip": PaperRow("w/o positional skip", "10% test", None, None, None, 0.582),
    "frozen-llm": PaperRow("frozen LLM", "10% test", None, None, None, 0.583),
    "frozen-encoder": PaperRow("frozen encoder", "10% test", None, None, None, 0.587),
}
SYSTEMS: tuple[str, ...] = (
    "qheart", "blind", "deaf", "no-dynamic-prompting", "no-retrieval", "no-et-mapper",
    "no-positional-skip", "frozen-llm", "frozen-encoder",
)  # fmt: skip
"""The systems of the comparison, in the order the table prints them (PAPER_ROWS keys)."""
_ALIASES: dict[str, str] = {
    "q-heart": "qheart", "full": "qheart", "wo-dynamic-prompting": "no-dynamic-prompting",
    "no-dynamic-prompt": "no-dynamic-prompting", "static-prompting": "no-dynamic-prompting",
    "wo-retrieval": "no-retrieval", "wo-et-mapper": "no-et-mapper", "no-mapper": "no-et-mapper",
    "wo-positional-skip": "no-positional-skip", "no-skip": "no-positional-skip",
    "no-pos-skip": "no-positional-skip",
}


def _paper_key(system: str) -> str | None:
    key = re.sub(r"[^a-z0-9]+", "-", system.lower().replace("w/o", "wo")).strip("-")
    key = _ALIASES.get(key, key)
    return key if key in PAPER_ROWS else None


@dataclass(frozen=True)
class ComparisonRow:
    """One system: mean ± 95% CI over seeds per column, and the paper's row if it has one."""

    system: str
    cells: dict[str, MeanCI]
    paper: PaperRow | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"system": self.system, "cells": {k: asdict(v) for k, v in self.cells.items()},
                "paper": None if self.paper is None else asdict(self.paper), "notes": self.notes}


def _column_value(em: ExactMatch, column: str) -> float:
    if column == "avg":
        return em.avg.accuracy
    if column == LEAD_COLUMN:
        cell = em.by_scope.get(LEAD_COLUMN)
        return math.nan if cell is None else cell.accuracy
    cell = em.by_type.get(f"single-{column}")
    return math.nan if cell is None else cell.accuracy


def comparison_rows(results: Mapping[str, Sequence[ExactMatch]], *,
                    paper_subset: str = "all test") -> list[ComparisonRow]:
    """Rows for the comparison: `results` maps a system name to its runs (one ExactMatch per
    seed). Known systems come in `SYSTEMS` order, others after them in the order given.
    `paper_subset`: which Q-HEART row of the paper to print, "all test" or "10% test" (the
    ablations exist only on the 10% subset)."""
    if paper_subset not in ("all test", "10% test"):
        raise ValueError(f"paper_subset must be 'all test' or '10% test', got {paper_subset!r}")
    def order(name: str) -> tuple[int, int]:
        key = _paper_key(name)
        known = SYSTEMS.index(key) if key in SYSTEMS else len(SYSTEMS)
        return known, list(results).index(name)

    rows = []
    for system in sorted(results, key=order):
        runs = results[system]
        cells = {c: mean_ci([_column_value(em, c) for em in runs])
                 for c in (*COLUMNS, LEAD_COLUMN)}
        key = _paper_key(system)
        if key == "qheart" and paper_subset == "10% test":
            key = "qheart-10pct"
        rows.append(ComparisonRow(system, cells, PAPER_ROWS.get(key) if key else None))
    return rows


def _mean_pm(m: MeanCI) -> str:
    if m.n == 0:
        return "–"
    if m.n == 1:
        return f"{m.mean:.3f} (1 seed)"
    return f"{m.mean:.3f} ± {m.half_width:.3f}"


def comparison_markdown(rows: Sequence[ComparisonRow], *, data_label: str = "ours") -> str:
    """Our EM (mean ± 95% CI over seeds) beside the paper's numbers, in one Markdown table."""
    header = ["system", *COLUMNS, LEAD_COLUMN, "seeds", *(f"paper {c}" for c in COLUMNS)]
    lines = []
    for row in rows:
        seeds = max((m.n for m in row.cells.values()), default=0)
        paper = [_num(getattr(row.paper, c)) if row.paper else "–" for c in COLUMNS]
        if row.paper is not None and row.paper.subset != "all test":
            paper[-1] += f" ({row.paper.subset})"
        ours = [_mean_pm(row.cells[c]) for c in (*COLUMNS, LEAD_COLUMN)]
        lines.append([row.system, *ours, str(seeds), *paper])
    return (f"Columns verify…avg: ours, on {data_label}. Columns \"paper …\": {PAPER_LABEL}.\n\n"
            + _table(header, lines)
            + "\n\nOurs: EM accuracy, mean ± 95% Student-t interval over seeds; avg = mean of the"
            " verify/choose/query accuracies; lead-specific = questions that name a lead or ask"
            " which leads (where the positional skip should matter).\n"
            f"Paper: {PAPER_SOURCE}. Different data from ours: compare trends, not levels.")


def write_comparison(out_dir: str | Path, rows: Sequence[ComparisonRow], *,
                     meta: Mapping[str, Any] | None = None, data_label: str = "ours",
                     stem: str = "comparison", extra_markdown: str = "") -> dict[str, Path]:
    """The comparison as `<stem>.md` and `<stem>.json`; `extra_markdown` (the paired
    comparisons) follows the table in the Markdown."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(meta or {})
    md = ["# Tables 3–4: systems compared", "", *(f"- {k}: {v}" for k, v in meta.items()), "",
          comparison_markdown(rows, data_label=data_label)]  # fmt: skip
    if extra_markdown:
        md += ["", extra_markdown]
    paths = {"markdown": out / f"{stem}.md", "json": out / f"{stem}.json"}
    paths["markdown"].write_text("\n".join(md) + "\n", encoding="utf-8")
    payload = {"meta": meta, "paper_source": PAPER_SOURCE, "paper_label": PAPER_LABEL,
               "rows": [r.to_dict() for r in rows]}
    paths["json"].write_text(json.dumps(_jsonable(payload), indent=2) + "\n", encoding="utf-8")
    return paths
