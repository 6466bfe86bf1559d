"""What instruction tuning reads: ECG-QA questions joined to a signal store, their Table 1
options and cached retrieved reports, turned into length-bucketed, seeded token batches.

Everything a step needs is in memory or memory-mapped: signals come from the store's float16
shards in one read per batch (never one file per sample), reports from the precomputed cache
(retrieval never runs inside the loop), and the questions of a batch about the same ECG share
one encoder pass and one context (chat head, prefix, report) through the LLM. With
`questions_per_ecg` > 1 the plan puts that many questions of one ECG side by side on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from qheart.data.ecgqa import QASample, join_store, load_split, load_template_options
from qheart.data.options import OptionsError, candidate_options, options_name_the_candidates
from qheart.data.store import SignalStore
from qheart.models.prompts import (
    PromptParts,
    PromptTokenizer,
    canonical_answer,
    join_segments,
    pad_right,
    pick_report,
    prompt_text,
    shuffled,
)
from qheart.models.qheart_model import ModelConfig

SYNTHETIC_SUBDIR = Path("ecgqa") / "synthetic"


@dataclass(frozen=True)
class Benchmark:
    """Where a benchmark's questions and signals are: an ECG-QA folder + a signal store."""

    dataset_dir: Path
    store_dir: Path
    variant: str = "paraphrased"

    @classmethod
    def from_path(cls, path: str | Path, store: str | Path | None = None,
                  variant: str = "paraphrased") -> Benchmark:
        """A synthetic benchmark folder (ecgqa/synthetic + store/), or an ECG-QA folder with
        `store` pointing at a prepared signal store."""
        path = Path(path)
        if store is None and (path / SYNTHETIC_SUBDIR).is_dir():
            return cls(path / SYNTHETIC_SUBDIR, path / "store", variant)
        if store is None:
            raise FileNotFoundError(f"{path}: not a synthetic benchmark folder (no "
                                    f"{SYNTHETIC_SUBDIR}/); for real ECG-QA pass the prepared "
                                    "signal store too (--store)")
        return cls(path, Path(store), variant)


@dataclass
class QASet:
    """The questions of one split that have their ECG in the store, with options and reports."""

    samples: list[QASample]
    options: list[list[str]]
    """Table 1 options per question, canonical order."""
    rows: np.ndarray
    """Store row of each question's ECG."""
    reports: list[list[str]]
    """Top-k retrieved reports per question (empty lists without retrieval)."""
    store: SignalStore
    n_missing: int = 0
    """Questions dropped: ECG not in the store or no options."""
    dataset_dir: Path | None = None
    """The ECG-QA folder the questions came from."""
    measurements: list[str | None] | None = None
    """Each question's measurement text (only with `use_measurements`): its ECG's block, or
    the line of what it asks about (`measurement_scope="asked"`; None when it asks none)."""
    hints: list[str | None] | None = None
    """The finding hint of each question (only with `finding_hints`)."""

    def __len__(self) -> int:
        return len(self.samples)

    @classmethod
    def load(cls, bench: Benchmark, split: str, retrieved=None, limit: int | None = None,
             seed: int = 0) -> QASet:
        """`retrieved`: a RetrievedReports cache (or None); `limit`: a seeded subset."""
        qa = load_split(bench.dataset_dir, bench.variant, split)
        store = SignalStore(bench.store_dir)
        kept, _ = join_store(qa.samples, store)
        template_options = load_template_options(bench.dataset_dir)
        samples, options = [], []
        for sample in kept:
            try:
                options.append(candidate_options(sample, template_options))
            except OptionsError:
                continue
            samples.append(sample)
        n_missing = len(qa.samples) - len(samples)
        if limit is not None and limit < len(samples):
            keep = np.sort(np.random.default_rng([seed, 7]).choice(len(samples), limit,
                                                                    replace=False))
            samples, options = [samples[i] for i in keep], [options[i] for i in keep]
        rows = np.array([store.row_of(s.ecg_id) for s in samples], dtype=np.int64)
        reports = [list(retrieved.for_sample(s.sample_id)) if retrieved is not None else []
                   for s in samples]
        return cls(samples, options, rows, reports, store, n_missing, bench.dataset_dir)

    def select(self, indices: Sequence[int]) -> QASet:
        """The questions at `indices`, in that order."""
        idx = list(indices)
        return QASet([self.samples[i] for i in idx], [self.options[i] for i in idx],
                     self.rows[idx], [self.reports[i] for i in idx], self.store, self.n_missing,
                     self.dataset_dir,
                     None if self.measurements is None else [self.measurements[i] for i in idx],
                     None if self.hints is None else [self.hints[i] for i in idx])

    def add_hints(self, reader, *, batch_size: int = 64, progress: bool = False) -> None:
        """The finding hint of every question (`reader`: a finding_hints.HintReader); each
        distinct ECG is embedded once."""
        from tqdm.auto import tqdm

        unique, owner = np.unique(self.rows, return_inverse=True)
        scores = np.zeros((len(unique), len(reader.bank.names)), dtype=np.float32)
        for start in tqdm(range(0, len(unique), batch_size), desc="finding hints", unit="batch",
                          disable=not progress):
            part = unique[start : start + batch_size]
            scores[start : start + len(part)] = reader.bank.probabilities(
                reader.embed(self.store.signals(part)))
        from qheart.models.finding_hints import hint_line, hinted_findings

        self.hints = [hint_line(reader.bank, scores[owner[i]],
                                hinted_findings(reader.bank, s.question, o, s.attribute))
                      for i, (s, o) in enumerate(zip(self.samples, self.options, strict=True))]

    def add_measurements(self, cache: Path, *, scope: str = "all", progress: bool = False,
                         workers: int | None = None) -> None:
        """Measure each distinct ECG once (cached as JSON by ecg_id in `cache`; on `workers`
        processes, None for all cores) and keep each question's text: its ECG's block (scope
        "all") or the line of what it asks ("asked")."""
        import json
        import os

        from tqdm.auto import tqdm

        from qheart.measurements import (
            asked_measurement_text,
            feature_readings,
            measurement_text,
        )
        from qheart.measurements.parallel import measure_rows

        render = measurement_text if scope == "all" else feature_readings
        known: dict = json.loads(cache.read_text()) if cache.is_file() else {}
        todo = sorted({(s.ecg_id, int(r)) for s, r in zip(self.samples, self.rows, strict=True)
                       if str(s.ecg_id) not in known})
        measured = measure_rows(self.store, [row for _, row in todo], render, workers=workers)
        for (ecg_id, _), value in tqdm(zip(todo, measured, strict=True), total=len(todo),
                                       desc="measure", unit="ecg", disable=not progress):
            known[str(ecg_id)] = value
        if todo:
            cache.parent.mkdir(parents=True, exist_ok=True)
            # per process: runs side by side on one benchmark share the cache (the retrieval
            # cache does the same), and one's replace must not move the other's file away
            tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known))
            tmp.replace(cache)
        self.measurements = [known[str(s.ecg_id)] if scope == "all"
                             else asked_measurement_text(known[str(s.ecg_id)], s.question)
                             for s in self.samples]

    def lengths(self) -> np.ndarray:
        """A cheap length estimate per question (characters), for bucketing."""
        return np.array([len(s.question) + sum(map(len, o)) + len(r[0] if r else "")
                         for s, o, r in zip(self.samples, self.options, self.reports, strict=True)])


def bucketed_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int,
                     bucket: int = 50) -> list[np.ndarray]:
    """One epoch of batches: shuffle, sort within windows of `bucket` batches by length (less
    padding), then shuffle the batches. Depends only on (lengths, batch_size, seed, epoch)."""
    rng = np.random.default_rng([seed, epoch, 11])
    order = rng.permutation(len(lengths))
    window = batch_size * bucket
    batches = []
    for start in range(0, len(order), window):
        part = order[start : start + window]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    batches = [b for b in batches if len(b) == batch_size] or batches
    return [batches[i] for i in rng.permutation(len(batches))]


def grouped_batches(rows: np.ndarray, lengths: np.ndarray, batch_size: int, per_ecg: int,
                    seed: int, epoch: int, bucket: int = 50) -> list[np.ndarray]:
    """One epoch of batches in which questions come `per_ecg` at a time from the same ECG.
    Each ECG's questions are shuffled, ordered by length and cut into groups (so a group's
    tails pad little); the groups are shuffled, sorted by length within windows of `bucket`
    batches, packed whole into batches (`pack_groups`), and the batches shuffled. Depends only
    on the arguments."""
    rng = np.random.default_rng([seed, epoch, 13])
    shuffled = rng.permutation(len(rows))  # random order among equal (ECG, length)
    order = shuffled[np.lexsort((lengths[shuffled], rows[shuffled]))]  # by ECG, then length
    groups = []
    for mine in np.split(order, np.flatnonzero(np.diff(rows[order])) + 1):  # one part per ECG
        groups += [mine[i : i + per_ecg] for i in range(0, len(mine), per_ecg)]
    groups = [groups[i] for i in rng.permutation(len(groups))]
    window = max(bucket * batch_size // per_ecg, 1)
    ordered = []
    for start in range(0, len(groups), window):
        part = groups[start : start + window]
        ordered += [part[i] for i in np.argsort([lengths[g].mean() for g in part], kind="stable")]
    batches = pack_groups(ordered, batch_size)
    batches = [b for b in batches if len(b) == batch_size] or batches
    return [batches[i] for i in rng.permutation(len(batches))]


def pack_groups(groups: list[np.ndarray], batch_size: int) -> list[np.ndarray]:
    """First fit: each group goes whole into the first unfilled batch with room for it.

    Why not slice the concatenated groups: with 10 questions per ECG cut into groups of 4
    (4 + 4 + 2), slicing every 8 questions splits groups across batches, and a batch of 8
    carried 2.79 contexts (chat head, ECG prefix, report: ~107 tokens each) on the demo's
    benchmark; packed, the full groups pair up and the short ones fill batches together: 2.38.
    Batches come out in the order they fill, then the unfilled ones."""
    filled: list[np.ndarray] = []
    open_batches: list[list[np.ndarray]] = []
    room: list[int] = []
    for group in groups:
        slot = next((i for i, r in enumerate(room) if r >= len(group)), None)
        if slot is None:
            open_batches.append([])
            room.append(batch_size)
            slot = len(room) - 1
        open_batches[slot].append(group)
        room[slot] -= len(group)
        if room[slot] == 0:
            filled.append(np.concatenate(open_batches.pop(slot)))
            room.pop(slot)
    return filled + [np.concatenate(parts) for parts in open_batches]


class BatchPlan:
    """Step → the indices of its questions, epoch after epoch (a resumed run replays it)."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, bucketed: bool = True,
                 rows: np.ndarray | None = None, per_ecg: int = 1) -> None:
        """`rows` (store row per question) and `per_ecg` > 1 group questions by ECG."""
        self.lengths, self.batch_size, self.seed, self.bucketed = lengths, batch_size, seed, bucketed
        self.rows, self.per_ecg = rows, per_ecg
        if per_ecg > 1 and rows is None:
            raise ValueError("grouping questions by ECG (per_ecg > 1) needs their store rows")
        self._epoch, self._batches = -1, []
        self.per_epoch = max(len(lengths) // batch_size, 1)

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        if self.per_ecg > 1:
            return grouped_batches(self.rows, self.lengths, self.batch_size, self.per_ecg,
                                   self.seed, epoch)
        if self.bucketed:
            return bucketed_batches(self.lengths, self.batch_size, self.seed, epoch)
        order = np.random.default_rng([self.seed, epoch, 11]).permutation(len(self.lengths))
        return [order[i : i + self.batch_size]
                for i in range(0, len(order) - self.batch_size + 1, self.batch_size)] or [order]

    def batch(self, step: int) -> np.ndarray:
        epoch, position = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._batches, self._epoch = self._epoch_batches(epoch), epoch
        return self._batches[position % len(self._batches)]


@dataclass
class Batch:
    """Tensors of one forward pass: G shared contexts and B tails (questions) that continue them
    (both right-padded). Concatenating context_ids[context_index[b]] and tail_ids[b] (real tokens
    only) gives question b's whole sequence."""

    context_ids: torch.Tensor  # (G, Lc)
    context_mask: torch.Tensor  # (G, Lc)
    prefix_start: torch.Tensor  # (G,), -1 where there is no ECG prefix
    signals: torch.Tensor | None  # (U, 12, n) unique ECGs
    ecg_index: torch.Tensor | None  # (G,) row in `signals`
    tail_ids: torch.Tensor  # (B, Lt)
    tail_mask: torch.Tensor  # (B, Lt)
    labels: torch.Tensor  # (B, Lt), the answer's ids, -100 elsewhere
    context_index: torch.Tensor  # (B,) row in context_ids

    def to(self, device: torch.device) -> Batch:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Batch(*(move(getattr(self, f)) for f in self.__dataclass_fields__))

    def as_kwargs(self) -> dict:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    def __len__(self) -> int:
        return len(self.tail_ids)

    def unshared(self) -> dict:
        """The same questions as whole sequences (keyword arguments of `forward_full`)."""
        input_ids, mask, labels = join_segments(self.context_ids, self.context_mask,
                                                self.tail_ids, self.tail_mask, self.labels,
                                                self.context_index)
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels,
                "prefix_start": self.prefix_start[self.context_index], "signals": self.signals,
                "ecg_index": None if self.ecg_index is None else self.ecg_index[self.context_index]}


def question_parts(config: ModelConfig, sample: QASample, options: Sequence[str],
                   report: str | None, rng: np.random.Generator | None,
                   measurements: str | None = None, hint: str | None = None) -> PromptParts:
    """The switches applied to one question; dynamic prompting shuffles options with `rng`
    (None: canonical order). `report` is the one already drawn for the question's ECG."""
    dynamic = rng if config.dynamic_prompting else None
    shown = shuffled(options, dynamic) if dynamic is not None else list(options)
    return PromptParts(question=sample.question, options=shown,
                       report=report if config.retrieval_active else None,
                       hint=hint if config.hints_active else None,
                       **config.measurement_fields(measurements))


def drops_question(config: ModelConfig, options: Sequence[str],
                   rng: np.random.Generator | None) -> bool:
    """Question dropout (training only, `rng` None at evaluation): drawn after the options'
    shuffle, so at 0 every prompt is what it was without the switch."""
    if rng is None or config.question_dropout <= 0 or not config.use_ecg:
        return False
    return options_name_the_candidates(options) and rng.random() < config.question_dropout


def draw_report(config: ModelConfig, reports: Sequence[str], rng: np.random.Generator | None,
                own_report: str | None = None) -> str | None:
    """One of the top-k reports (dynamic prompting, drawn with `rng`) or the top-1 (rng None).
    In training (`rng` given) the ECG's `own_report` instead, at `config.own_report_rate`."""
    if not config.retrieval_active:
        return None
    if rng is not None and config.own_report_rate > 0 and own_report \
            and rng.random() < config.own_report_rate:
        return own_report
    return pick_report(reports, rng if config.dynamic_prompting else None)


def unique_signals(store: SignalStore, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(U, 12, n) signals of the distinct rows (one sorted store read) and each row's index."""
    unique, index = np.unique(rows, return_inverse=True)
    return torch.from_numpy(store.signals(unique)), torch.from_numpy(index.astype(np.int64))


def make_batch(data: QASet, indices: np.ndarray, config: ModelConfig, prompts: PromptTokenizer,
               *, seed: int | None, step: int, with_answer: bool = True) -> Batch:
    """Build one batch. `seed=None`: evaluation prompts (fixed order, top-1 report). Questions
    about the same ECG share its context, with one report drawn per (step, ECG)."""
    indices = np.asarray(indices)
    rows = data.rows[indices]
    own_reports = data.store.metadata["report"] \
        if seed is not None and config.own_report_rate > 0 else None
    contexts: dict[tuple[int, str], int] = {}
    context_rows, context_index, tails, labels = [], [], [], []
    for i, row in zip(indices.tolist(), rows.tolist(), strict=True):
        rng = None if seed is None else np.random.default_rng([seed, step, i])
        ecg_rng = None if seed is None else np.random.default_rng([seed, step, row, 1])
        sample = data.samples[i]
        own = None if own_reports is None else str(own_reports.iat[row])
        parts = question_parts(config, sample, data.options[i],
                               draw_report(config, data.reports[i], ecg_rng, own), rng,
                               None if data.measurements is None else data.measurements[i],
                               None if data.hints is None else data.hints[i])
        text = prompt_text(parts, with_ecg=config.use_ecg,
                           with_question=config.use_question
                           and not drops_question(config, data.options[i], rng))
        key = (row if config.use_ecg else -1, text.context)
        if key not in contexts:
            contexts[key] = len(contexts)
            context_rows.append((row, text))
        context_index.append(contexts[key])
        tail = prompts.question(text)
        answer = prompts.answer(canonical_answer(sample.answer, data.options[i])) \
            if with_answer else []
        tails.append(tail + answer)
        labels.append([-100] * len(tail) + answer)
    encoded = [prompts.context(text) for _, text in context_rows]
    context_ids, context_mask = pad_right([ids for ids, _ in encoded], prompts.placeholder_id)
    tail_ids, tail_mask = pad_right(tails, prompts.placeholder_id)
    padded_labels, _ = pad_right(labels, -100)
    signals = ecg_index = None
    if config.use_ecg:
        signals, ecg_index = unique_signals(data.store, np.array([r for r, _ in context_rows]))
    return Batch(context_ids, context_mask, torch.as_tensor([s for _, s in encoded]), signals,
                 ecg_index, tail_ids, tail_mask, padded_labels, torch.as_tensor(context_index))
