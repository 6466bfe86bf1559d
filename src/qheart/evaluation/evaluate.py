"""`qheart evaluate`: a trained model on an ECG-QA split (Tables 3–4) and on the real-data
yardstick (SPEC §6), batched, resumable, written as Markdown + JSON + per-question CSV.

Prompts at evaluation are deterministic (options in Table 1 order, the top-1 cached report) and
the reports come from the same leakage-controlled cache training uses (never the ECG's own
report, nor its patient's).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qheart.api import Answer, QHeart, RetrievedReportView
from qheart.data.ecgqa import QASample, fixed_subset
from qheart.evaluation.report import QuestionRecord, record_from_answer
from qheart.models.question_kinds import ResolvedQuestion
from qheart.training.instruct_data import Benchmark, QASet

PROGRESS_NAME = "progress.jsonl"
"""Answered questions, one JSON record per line: a re-run continues after the last one."""


@dataclass
class EvalRun:
    """The records of one evaluation and where they were written."""

    records: list[QuestionRecord]
    out: Path | None


def split_questions(model: QHeart, bench: Benchmark, split: str, subset: float | None,
                    limit: int | None, *, progress: bool) -> QASet:
    """The split's questions with their options and (when the model retrieves) cached reports."""
    retrieved = None
    if model.config.retrieval_active and model.meta.get("index"):
        from qheart.training.instruct import TrainInputs, retrieval_cache

        encoder = model.directory / "retrieval_encoder"
        inputs = TrainInputs(bench, encoder if encoder.is_dir() else None,
                             Path(model.meta["index"]["path"]))
        retrieved = retrieval_cache(inputs, split, progress=progress)
    data = QASet.load(bench, split, retrieved)
    if subset is not None:
        keep = {s.sample_id for s in fixed_subset(data.samples, subset)}
        data = data.select([i for i, s in enumerate(data.samples) if s.sample_id in keep])
    if limit is not None and limit < len(data):
        data = data.select(list(range(limit)))
    if model.config.measurements_active:
        from qheart.training.instruct import measurement_cache

        scope = model.config.measurement_scope
        data.add_measurements(measurement_cache(bench, scope), scope=scope, progress=progress)
    if model.hint_reader is not None:
        data.add_hints(model.hint_reader, progress=progress)
    return data


def _load_progress(path: Path) -> dict[int, QuestionRecord]:
    done: dict[int, QuestionRecord] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
            done[int(row["sample_id"])] = QuestionRecord(**row)
    return done


def answer_questions(model: QHeart, data: QASet, *, decode: str = "rank", batch_size: int = 16,
                     out: Path | None = None, progress: bool = True) -> EvalRun:
    """Answer every question of `data` in batches; with `out`, resumable via progress.jsonl."""
    from tqdm.auto import tqdm

    log = out / PROGRESS_NAME if out is not None else None
    done = _load_progress(log) if log is not None else {}
    todo = [i for i, s in enumerate(data.samples) if s.sample_id not in done]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(data), initial=len(data) - len(todo), desc=f"evaluate ({decode})",
               unit="q", disable=not progress)
    for start in range(0, len(todo), batch_size):
        indices = todo[start : start + batch_size]
        samples = [data.samples[i] for i in indices]
        signals = data.store.signals(data.rows[indices]) if indices else None
        resolved = [ResolvedQuestion(s.question_type, data.options[i], s.template_id, [])
                    for s, i in zip(samples, indices, strict=True)]
        measured = [data.measurements[i] for i in indices] if data.measurements else None
        hints = [data.hints[i] for i in indices] if data.hints is not None else None
        reports = [[RetrievedReportView(-1, float("nan"), r) for r in data.reports[i][:1]]
                   for i in indices]
        answers = model.answer_resolved(signals, [s.question for s in samples], resolved,
                                        reports, decode, measurements=measured, hints=hints)
        lines = []
        for sample, answer in zip(samples, answers, strict=True):
            # parse_generated's rule: generated text is valid when it names an option
            record = record_from_answer(sample, answer, valid=decode == "rank" or bool(answer.answer))
            done[sample.sample_id] = record
            lines.append(json.dumps(record.__dict__))
        if log is not None:
            with log.open("a") as fh:
                fh.write("\n".join(lines) + "\n")
        bar.update(len(indices))
    bar.close()
    return EvalRun([done[s.sample_id] for s in data.samples if s.sample_id in done], out)


def yardstick_questions(ptbxl_dir: Path, *, seed: int = 0, max_per_side: int | None = None
                        ) -> tuple[list[QASample], np.ndarray, object]:
    """The yardstick's balanced yes/no questions and the canonical signals of their records
    (read straight from the PTB-XL folder's WFDB files)."""
    import pandas as pd

    from qheart.data.readers import read_ecg
    from qheart.evaluation.yardstick import build_yardstick

    yardstick = build_yardstick(ptbxl_dir, seed=seed, max_per_side=max_per_side)
    table = pd.read_csv(ptbxl_dir / "ptbxl_database.csv", index_col="ecg_id")
    ids = sorted({s.ecg_id for s in yardstick.samples})
    signals = {e: read_ecg(ptbxl_dir / table.loc[e, "filename_hr"]) for e in ids}
    stacked = np.stack([signals[s.ecg_id] for s in yardstick.samples]) if ids else np.zeros(
        (0, 12, 5000), np.float32)
    return yardstick.samples, stacked, yardstick


def answer_yardstick(model: QHeart, samples: Sequence[QASample], signals: np.ndarray, *,
                     decode: str = "rank", batch_size: int = 16, progress: bool = True
                     ) -> list[Answer]:
    """Answers to the yardstick's questions (reports retrieved live from the model's index)."""
    from tqdm.auto import tqdm

    from qheart.data.options import VERIFY_OPTIONS

    answers: list[Answer] = []
    for start in tqdm(range(0, len(samples), batch_size), desc="yardstick", unit="batch",
                      disable=not progress):
        part = list(samples[start : start + batch_size])
        sig = signals[start : start + batch_size]
        resolved = [ResolvedQuestion(s.question_type, list(VERIFY_OPTIONS), s.template_id, [])
                    for s in part]
        reports = model.retrieve(sig)
        answers += model.answer_resolved(sig, [s.question for s in part], resolved, reports, decode)
    return answers
