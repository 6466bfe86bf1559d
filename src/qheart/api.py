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
    measurements: str | None = None
    """The measurement text that was in the prompt (models trained with use_measurements): the
    whole block, or the line of what the question asks (measurement_scope "asked")."""
    hint: str | None = None
    """The encoder's reading of the findings the question names, as it was in the prompt
    (models trained with finding_hints)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class QHeart:
    """A trained Q-HEART model, ready to answer. Thread-safe: one instance can serve a server's
    threads (model calls are serialised by a lock; batching is the caller's `ask_many`)."""

    def __init__(self, directory: Path, model, tokenizer, meta: dict, retriever, retrieval_embed,
                 catalogue: dict, notes: list[str]) -> None:
        import threading

        from qheart.models.decoding import MULTI_RULE
        from qheart.models.prompts import PromptTokenizer

        self.directory = directory
        self.model = model
        self.tokenizer = tokenizer
        self.meta = meta
        self.config = model.config
        self.prompts = PromptTokenizer(tokenizer, model.config.n_prefix)
        self.retriever = retriever
        self.retrieval_embed = retrieval_embed
        self.catalogue = catalogue
        self.load_notes = notes
        self.multi_rule = MULTI_RULE
        """How rank decoding sizes multi-answer sets (models/decoding.py: grow | threshold)."""
        self.hint_reader = None
        """The finding-hint reader (models/finding_hints.py) of models trained with hints."""
        if model.config.hints_active:
            from qheart.models.finding_hints import HINTS_DIR, HintReader

            self.hint_reader = HintReader.load(directory / HINTS_DIR)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | None = None) -> QHeart:
        """Restore a `qheart train` output folder; needs no other argument. The retrieval index
        recorded in it is used when it is still there (otherwise answers carry a note)."""
        import json

        import torch

        from qheart.models.encoder import ECGEncoder
        from qheart.models.model_folder import QUESTIONS_NAME, load_model_folder

        directory = Path(directory)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, tokenizer, meta = load_model_folder(directory, device=device)
        notes: list[str] = []
        retriever = embed = None
        index = meta.get("index")
        if model.config.retrieval_active and index:
            from qheart.retrieval.search import IndexLoadError, Retriever

            try:
                retriever = Retriever.load(index["path"])
            except (IndexLoadError, FileNotFoundError, OSError) as error:
                notes.append(f"retrieval index unavailable ({error}); answering without reports")
            if retriever is not None and retriever.build_id != index["build_id"]:
                notes.append(f"{index['path']}: rebuilt since training (build "
                             f"{retriever.build_id[:8]} ≠ {index['build_id'][:8]})")
            encoder_dir = directory / "retrieval_encoder"
            embed = (ECGEncoder.from_pretrained(encoder_dir).embed if encoder_dir.is_dir()
                     else model.encoder.embed)
        catalogue = json.loads((directory / QUESTIONS_NAME).read_text())
        return cls(directory, model, tokenizer, meta, retriever, embed, catalogue, notes)

    @staticmethod
    def load_ecg(ecg: ECGInput, sample_rate: float | None = None) -> np.ndarray:
        """Canonical (12, 5000) float32 mV from a path or an array; typed errors otherwise."""
        from qheart.data import readers

        if isinstance(ecg, np.ndarray):
            if sample_rate is None:
                from qheart.data.errors import SampleRateError

                raise SampleRateError("array", "an array needs its sample_rate")
            read_array = getattr(readers, "read_array", None)
            if read_array is not None:
                return read_array(ecg, sample_rate, source="array")
            return readers.to_canonical(np.asarray(ecg, dtype=np.float32), sample_rate, "array")
        return readers.read_ecg(Path(ecg), sample_rate=sample_rate)

    # ------------------------------------------------------------------ answering

    def ask(self, ecg: ECGInput, question: str, *, sample_rate: float | None = None,
            decode: str = "rank", options: list[str] | None = None) -> Answer:
        """Answer one question about one ECG."""
        return self.ask_many([ecg], [question], sample_rate=sample_rate, decode=decode,
                             options=None if options is None else [options])[0]

    def ask_many(self, ecgs: list[ECGInput], questions: list[str], *,
                 sample_rate: float | None = None, decode: str = "rank",
                 options: list[list[str]] | None = None) -> list[Answer]:
        """Answer a batch: one encoder pass, one retrieval search and one batched LLM pass."""
        from qheart.data.options import OptionsError
        from qheart.models.question_kinds import (
            ResolvedQuestion,
            catalogue_template_options,
            question_type_of,
            resolve_question,
        )

        if len(ecgs) != len(questions):
            raise ValueError(f"{len(ecgs)} ECGs but {len(questions)} questions")
        if decode not in ("rank", "generate"):
            raise ValueError(f"decode must be 'rank' or 'generate', got {decode!r}")
        signals = np.stack([self.load_ecg(e, sample_rate) for e in ecgs])  # (B, 12, 5000)
        resolved = []
        for i, question in enumerate(questions):
            if not question or not question.strip():
                raise ValueError("the question is empty")
            given = list(options[i]) if options is not None and options[i] else None
            try:
                r = resolve_question(question, self.catalogue)
            except OptionsError:
                if given is None:
                    raise
                # The caller's options answer the question anyway; its type decides how many
                # options rank decoding may return.
                kind = question_type_of(question, catalogue_template_options(self.catalogue))
                r = ResolvedQuestion(kind, given, None, [])
            if given is not None:
                r = type(r)(r.question_type, given, r.template_id,
                            ["options given by the caller"])
            resolved.append(r)
        with self._lock:
            reports = self.retrieve(signals)
            return self.answer_resolved(signals, questions, resolved, reports, decode)

    def retrieve(self, signals: np.ndarray) -> list[list[RetrievedReportView]]:
        if self.retriever is None or self.retrieval_embed is None:
            return [[] for _ in signals]
        hits = self.retriever.search(self.retrieval_embed(signals), 3)
        return [[RetrievedReportView(h.ecg_id, round(float(h.score), 4), h.report) for h in row]
                for row in hits]

    def answer_resolved(self, signals: np.ndarray, questions: list[str], resolved: list,
                        reports: list[list[RetrievedReportView]], decode: str = "rank",
                        measurements: list[str] | None = None,
                        hints: list[str | None] | None = None) -> list[Answer]:
        """Answer canonical ECGs (B, 12, 5000) whose question types and options are known
        (`ResolvedQuestion`s) with the given reports: the batched core that `ask_many` and
        `qheart evaluate` share. Not locked: callers from several threads go through ask_many."""
        import torch

        from qheart.evaluation.parse import parse_generated
        from qheart.models.decoding import generate, rank_decode

        config = self.config
        if config.measurements_active and measurements is None:
            from qheart.measurements import (
                asked_measurement_text,
                feature_readings,
                measure_ecg,
                measurement_text,
            )

            measured_ecgs = [measure_ecg(np.asarray(x)) for x in signals]
            measurements = ([measurement_text(m) for m in measured_ecgs]
                            if config.measurement_scope == "all" else
                            [asked_measurement_text(feature_readings(m), q)
                             for m, q in zip(measured_ecgs, questions, strict=True)])
        if config.hints_active and hints is None:
            hints = self.hint_reader.hints(np.asarray(signals, dtype=np.float32), questions,
                                           [r.options for r in resolved])
        texts = self.prompt_texts(questions, resolved, reports, measurements, hints)
        sig = torch.as_tensor(np.asarray(signals, dtype=np.float32)) if config.use_ecg else None
        measured = lambda i: measurements[i] if config.measurements_active else None  # noqa: E731
        hinted = lambda i: hints[i] if hints is not None else None  # noqa: E731
        out: list[Answer] = []
        if decode == "rank":
            ranked = rank_decode(self.model, self.prompts, texts, [r.options for r in resolved],
                                 [r.question_type for r in resolved], sig, self.multi_rule)
            for question, r, hits, (answer, scores) in zip(questions, resolved, reports, ranked,
                                                            strict=True):
                out.append(Answer(answer, question, r.question_type, r.options, scores,
                                  hits if config.retrieval_active else [], "rank",
                                  notes=[*self.load_notes, *r.notes],
                                  measurements=measured(len(out)), hint=hinted(len(out))))
            return out
        generated = generate(self.model, self.prompts, texts, sig)
        for question, r, hits, text in zip(questions, resolved, reports, generated, strict=True):
            answer, valid = parse_generated(text, r.options)
            notes = [*self.load_notes, *r.notes]
            if not valid:
                notes.append("the generated text matches none of the options")
            out.append(Answer(answer, question, r.question_type, r.options, None,
                              hits if config.retrieval_active else [], "generate", raw_text=text,
                              notes=notes, measurements=measured(len(out)),
                              hint=hinted(len(out))))
        return out

    def prompt_texts(self, questions: list[str], resolved: list,
                     reports: list[list[RetrievedReportView]],
                     measurements: list[str] | None = None,
                     hints: list[str | None] | None = None) -> list:
        """The user turns the model reads (`PromptText`s): the config's switches applied, the
        top-1 report, options in their canonical order."""
        from qheart.models.prompts import PromptParts, prompt_text

        config = self.config
        texts = []
        for i, (question, r, hits) in enumerate(zip(questions, resolved, reports, strict=True)):
            parts = PromptParts(question=question, options=r.options,
                                report=hits[0].report if hits and config.retrieval_active else None,
                                hint=hints[i] if config.hints_active and hints is not None
                                else None,
                                **config.measurement_fields(
                                    measurements[i] if measurements is not None else None))
            texts.append(prompt_text(parts, with_ecg=config.use_ecg,
                                     with_question=config.use_question))
        return texts

    # ------------------------------------------------------------------ describing

    def describe(self) -> dict[str, Any]:
        """What is loaded (JSON-safe), for `GET /v1/model` and `qheart ask --json`."""
        return {"model_dir": str(self.directory), "qheart_version": self.meta.get("qheart_version"),
                "llm": self.meta.get("llm"), "model": self.meta.get("model"),
                "index": self.meta.get("index"), "retrieval": self.retriever is not None,
                "notes": self.load_notes}

    def example_questions(self) -> dict[str, list[str]]:
        """A few training questions per question type (suggestions for a UI)."""
        out: dict[str, list[str]] = {}
        for entry in self.catalogue.get("templates", {}).values():
            bucket = out.setdefault(entry["question_type"], [])
            if len(bucket) < 6 and entry["examples"]:
                bucket.append(entry["examples"][0])
        return out
