"""The Python API every front end wraps (CLI `qheart ask`, the HTTP service, notebooks).

`QHeart.from_pretrained(MODEL)` restores a model folder written by `qheart train`;
`.ask(ecg, question)` answers one question, `.ask_many(ecgs, questions)` a batch.
An `ecg` is a file path (any format `qheart.data.readers.read_ecg` accepts) or an array with
its sampling rate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ECGInput = str | Path | np.ndarray
"""A path to a record, or an array (12, n) / (n, 12) in mV with `sample_rate` given."""


@dataclass(frozen=True)
class RetrievedReportView:
    """One retrieved report as shown to a user."""

    ecg_id: int
    similarity: float
    report: str


@dataclass(frozen=True)
class Answer:
    """What the model answered, and what it considered."""

    answer: list[str]
    """The answer set, in the options' canonical order (e.g. ["lead II", "lead V1"] or ["yes"])."""
    question: str
    question_type: str
    """single-verify | single-choose | single-query (as ECG-QA names them)."""
    options: list[str]
    """The candidate options shown to the model (paper Table 1)."""
    scores: dict[str, float] | None
    """Per-option probability under rank decoding; None for free generation."""
    reports: list[RetrievedReportView]
    """The retrieved reports that were in the prompt (most similar first)."""
    decode: str
    """"rank" or "generate"."""
    raw_text: str | None = None
    """The generated text (generate decoding) before it was parsed into options."""
    notes: list[str] = field(default_factory=list)
    """Assumptions made, e.g. which question kind a free-form question was taken as."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
