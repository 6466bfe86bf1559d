"""A stand-in for `qheart.api.QHeart` with exactly its interface, for service/CLI tests and
`benchmarks/bench_serve.py --fake`.

Answers are deterministic functions of (ECG, question), so a test can check that the service
answered exactly what the API answers. `ask_many` can cost a configurable time that grows
sub-linearly with the batch (a batch of 8 costs `batch8_cost` × one question, like a model whose
forward pass is mostly fixed cost), and can be held on a gate (queue-full and timeout tests).
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qheart.api import Answer, ECGInput, RetrievedReportView
from qheart.data.leads import LEADS
from qheart.data.options import LEAD_OPTIONS, NUMERIC_FEATURE_OPTIONS, RANGE_OPTIONS, VERIFY_OPTIONS

_REPORTS = (
    "Sinus rhythm. Normal ECG.",
    "Atrial fibrillation. Left axis deviation. Abnormal ECG.",
    "Sinus bradycardia. ST elevation in lead(s) II, III, aVF. Abnormal ECG.",
    "Sinus tachycardia. Right axis deviation. Borderline ECG.",
    "Sinus rhythm. Left ventricular hypertrophy. Abnormal ECG.",
)
EXAMPLE_QUESTIONS: dict[str, list[str]] = {
    "single-verify": ["Does this ECG show atrial fibrillation?",
                      "Does this ECG show left axis deviation?"],
    "single-choose": ["Which rhythm does this ECG show, sinus rhythm or atrial fibrillation?"],
    "single-query": ["What leads show ST elevation?",
                     "What range is the qt interval of this ECG in?"],
}
CHOOSE_OPTIONS = ["sinus rhythm", "atrial fibrillation", "none"]


def _read_array(array: np.ndarray, sample_rate: float | None, source: str) -> np.ndarray:
    """`qheart.data.readers.read_array` when present; else the same steps done here."""
    from qheart.data import readers

    if hasattr(readers, "read_array"):
        return readers.read_array(array, sample_rate, source=source)
    x = np.asarray(array)
    if x.ndim != 2 or len(LEADS) not in x.shape:
        from qheart.data.errors import UnreadableRecordError

        raise UnreadableRecordError(source, f"array shape {x.shape}: expected (12, N) or (N, 12)")
    x = x if x.shape[0] == len(LEADS) else x.T
    return readers.to_canonical(x.astype(np.float64), LEADS, sample_rate, source)


def _options(question: str) -> tuple[str, list[str], list[str]]:
    q = " ".join(question.lower().split())
    if q.startswith("what leads"):
        return "single-query", list(LEAD_OPTIONS), []
    if q.startswith("what numeric features"):
        return "single-query", list(NUMERIC_FEATURE_OPTIONS), []
    if q.startswith("what range"):
        return "single-query", list(RANGE_OPTIONS), []
    if q.startswith("which") or " or " in q:
        return "single-choose", list(CHOOSE_OPTIONS), []
    if q.split(" ", 1)[0] in {"does", "is", "are", "do", "can"}:
        return "single-verify", list(VERIFY_OPTIONS), []
    return "single-verify", list(VERIFY_OPTIONS), ["fits no Table 1 row; taken as a yes/no question"]


class FakeQHeart:
    """Deterministic fake with the QHeart interface; `batch_sizes` records every ask_many call."""

    def __init__(self, model_dir: str | Path = "fake", *, delay_s: float = 0.0,
                 batch8_cost: float = 1.5) -> None:
        self.model_dir = str(model_dir)
        self.delay_s = delay_s
        self.batch8_cost = batch8_cost
        self.gate: threading.Event | None = None
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | None = None) -> FakeQHeart:
        return cls(directory)

    @staticmethod
    def load_ecg(ecg: ECGInput, sample_rate: float | None = None) -> np.ndarray:
        if isinstance(ecg, np.ndarray):
            return _read_array(ecg, sample_rate, "<array>")
        from qheart.data.readers import read_ecg

        return read_ecg(ecg, sample_rate=sample_rate)

    def describe(self) -> dict:
        return {"model_dir": self.model_dir, "llm": "fake", "kind": "FakeQHeart", "version": "test"}

    def example_questions(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in EXAMPLE_QUESTIONS.items()}

    def batch_cost_s(self, n: int) -> float:
        """Seconds one ask_many of n questions takes: linear from 1× (n=1) to batch8_cost× (n=8)."""
        return self.delay_s * (1.0 + (self.batch8_cost - 1.0) * (n - 1) / 7.0)

    def ask(self, ecg: ECGInput, question: str, *, sample_rate: float | None = None,
            decode: str = "rank") -> Answer:
        return self.ask_many([ecg], [question], sample_rate=sample_rate, decode=decode)[0]

    def ask_many(self, ecgs: Sequence[ECGInput], questions: Sequence[str], *,
                 sample_rate: float | None = None, decode: str = "rank") -> list[Answer]:
        if len(ecgs) != len(questions):
            raise ValueError(f"{len(ecgs)} ECGs but {len(questions)} questions")
        if decode not in {"rank", "generate"}:
            raise ValueError(f"decode={decode!r}: rank or generate")
        signals = [self.load_ecg(e, sample_rate) for e in ecgs]
        with self._lock:
            if self.gate is not None:
                self.gate.wait(timeout=30)
            self.batch_sizes.append(len(signals))
            if self.delay_s:
                time.sleep(self.batch_cost_s(len(signals)))
            return [self._answer(s, q, decode) for s, q in zip(signals, questions, strict=True)]

    @staticmethod
    def _answer(signal: np.ndarray, question: str, decode: str) -> Answer:
        if not question.strip():
            raise ValueError("empty question")
        qtype, options, notes = _options(question)
        seed = zlib.crc32(question.encode()) ^ zlib.crc32(np.round(signal, 2).tobytes())
        rng = np.random.default_rng(seed)
        logits = rng.normal(0, 1.5, len(options))
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        scores = {o: round(float(p), 4) for o, p in zip(options, probs, strict=True)}
        if qtype == "single-query" and options == list(LEAD_OPTIONS):
            answer = [o for o in options if scores[o] >= 1.0 / len(options)]
        else:
            answer = [options[int(np.argmax(probs))]]
        ids = rng.choice(len(_REPORTS), size=3, replace=False)
        reports = [RetrievedReportView(int(1000 + i), round(0.9 - 0.03 * k, 3), _REPORTS[i])
                   for k, i in enumerate(ids)]
        if decode == "generate":
            return Answer(answer, question, qtype, options, None, reports, decode,
                          raw_text=", ".join(answer), notes=notes)
        return Answer(answer, question, qtype, options, scores, reports, decode, notes=notes)
