"""`generate_benchmark`: the embedded default benchmark on disk.

    DIR/store/                       SignalStore of the QA ECGs (metadata: split, findings, report,
                                     ground truth: axis, intervals in ms, lead findings, noise …)
    DIR/ecgqa/synthetic/             an ECG-QA dataset folder (answers*.csv,
                                     {paraphrased,template}/{train,valid,test}/<first id>.json)
    DIR/corpus/                      optional SignalStore of extra ECGs with reports (split
                                     "corpus", ecg_ids disjoint from the QA ones)
    DIR/synth.json                   configuration, counts and the blind prior baseline
                                     (`priors.prior_baseline`, train → test)

Every ECG is drawn from its own random stream seeded by (seed, stream, index), so the output
depends on the seed only — not on the number of worker processes or the chunk size — and the
same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from qheart.data.leads import LEADS
from qheart.data.store import StoreWriter
from qheart.data.synth import findings as F
from qheart.data.synth.ecg import Truth, simulate
from qheart.data.synth.priors import prior_baseline
from qheart.data.synth.questions import TEMPLATES, AnswerBalance, Facts, Offers, Question, ask
from qheart.data.synth.realism import DEFAULT_REALISM, get_realism
from qheart.data.synth.reports import report_text

QA_STREAM, CORPUS_STREAM, QUESTION_STREAM, SPLIT_STREAM = 0, 1, 2, 3
CORPUS_ID_OFFSET = 10_000_000
"""Corpus ecg_ids start here, far above any QA id, so the two stores never share an id."""
SAMPLES_PER_FILE = 10_000
SPLIT_FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}
DATASET_NAME = "synthetic"


@dataclass(frozen=True)
class SynthConfig:
    """What `generate_benchmark` makes."""

    n_ecgs: int
    seed: int = 0
    corpus_ecgs: int = 0
    questions_per_ecg: int = 10
    """ECG-QA (PTB-XL) has about 10 single-ECG questions per ECG."""
    chunk_size: int = 250
    realism: str = DEFAULT_REALISM
    """Generator settings (`realism.REALISM`): "v3" (default), "v2" or "v1", the first generator."""

    def __post_init__(self) -> None:
        get_realism(self.realism)  # unknown names fail here
        if self.n_ecgs < 3:
            raise ValueError(f"n_ecgs must be at least 3 (one per split), got {self.n_ecgs}")
        if self.corpus_ecgs < 0 or self.questions_per_ecg < 1 or self.chunk_size < 1:
            raise ValueError("corpus_ecgs >= 0, questions_per_ecg >= 1 and chunk_size >= 1 required")


# ------------------------------------------------------------------------------ one chunk of ECGs


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def truth_row(ecg_id: int, truth: Truth, split: str) -> dict:
    """One metadata row: the contract columns plus the ground truth the tests and models use."""
    features = truth.features
    plan = truth.plan
    return {
        "ecg_id": ecg_id,
        "patient_id": ecg_id,
        "report": report_text(truth),
        "split": split,
        "findings": _json(truth.findings),
        "rhythm": plan.rhythm,
        "axis": truth.labels.axis,
        "heart_rate_bpm": round(60_000.0 / features["rr interval"], 1),
        **{f"{name.replace(' ', '_')}_ms": (np.nan if v is None else round(v, 1))
           for name, v in features.items()},
        "feature_ranges": _json(truth.feature_ranges),
        "lead_findings": _json({k: list(v) for k, v in truth.labels.lead_findings.items()}),
        "noise": _json({k: list(v) for k, v in plan.noise.items()}),
        "mi_territory": plan.mi_territory or "",
        "mi_stage": plan.mi_stage or "",
        "extrasystole": truth.extrasystole or "",
        "n_premature": truth.n_premature,
    }


def _chunk(args: tuple[int, int, list[int], list[str], int, str]) -> tuple[int, np.ndarray, list[dict]]:
    """Simulate one chunk: (chunk, float32 signals (n, 12, 5000), metadata rows)."""
    seed, stream, indices, splits, id_offset, realism = args
    signals = np.empty((len(indices), len(LEADS), 5000), dtype=np.float32)  # (n, 12, 5000)
    rows = []
    for k, (index, split) in enumerate(zip(indices, splits, strict=True)):
        sim = simulate(np.random.default_rng([seed, stream, index]), realism)
        signals[k] = sim.signal
        rows.append(truth_row(id_offset + index, sim.truth, split))
    return indices[0], signals, rows


def _jobs(seed: int, stream: int, splits: list[str], chunk_size: int, id_offset: int,
          realism: str = DEFAULT_REALISM):
    for chunk, start in enumerate(range(0, len(splits), chunk_size)):
        idx = list(range(start, min(start + chunk_size, len(splits))))
        yield chunk, (seed, stream, [i + 1 for i in idx], [splits[i] for i in idx], id_offset,
                      realism)


def _write_store(
    root: Path, source: str, seed: int, stream: int, splits: list[str], config: SynthConfig,
    workers: int, id_offset: int = 0, progress=None,
) -> list[dict]:
    """Simulate all ECGs of one store chunk by chunk (in parallel) and write them; return rows."""
    writer = StoreWriter(root, source=source)
    jobs = list(_jobs(seed, stream, splits, config.chunk_size, id_offset, config.realism))
    rows: list[dict] = []
    results: Iterator
    if workers > 1:
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(_chunk, [job for _, job in jobs])
    else:
        pool = None
        results = map(_chunk, [job for _, job in jobs])
    try:
        for (chunk, _), (_, signals, chunk_rows) in zip(jobs, results, strict=True):
            writer.write_chunk(chunk, signals, pd.DataFrame(chunk_rows))
            rows.extend(chunk_rows)
            if progress is not None:
                progress(len(chunk_rows))
    finally:
        if pool is not None:
            pool.shutdown()
    writer.finalize({"synthetic": {"seed": seed, "stream": stream, "realism": config.realism}})
    return rows


# ------------------------------------------------------------------------------ questions


def assign_splits(n: int, seed: int) -> list[str]:
    """Split by ECG (each ECG is one patient): 80/10/10, at least one ECG per split."""
    order = np.random.default_rng([seed, SPLIT_STREAM]).permutation(n)
    n_valid = max(1, round(n * SPLIT_FRACTIONS["valid"]))
    n_test = max(1, round(n * SPLIT_FRACTIONS["test"]))
    splits = ["train"] * n
    for rank, index in enumerate(order):
        if rank < n_valid:
            splits[index] = "valid"
        elif rank < n_valid + n_test:
            splits[index] = "test"
    return splits


def facts_from_row(row: dict) -> Facts:
    findings = set(json.loads(row["findings"]))
    stage = next((s for s in F.STAGES.values() if s in findings), None)
    extra = next((e for e in (F.VES, F.SVES) if e in findings), None)
    scp = frozenset(f for f in findings if f in set(F.RHYTHMS) | set(F.DIAGNOSTIC) | set(F.FORMS))
    return Facts(
        scp=scp,
        lead_findings={k: tuple(v) for k, v in json.loads(row["lead_findings"]).items()},
        axis=row["axis"],
        stage=stage,
        extrasystole=extra,
        noise={k: tuple(v) for k, v in json.loads(row["noise"]).items()},
        feature_ranges=json.loads(row["feature_ranges"]),
    )


def make_questions(rows: list[dict], seed: int, per_ecg: int) -> dict[str, list[tuple[int, Question]]]:
    """Questions per split as (ecg_id, question), ECGs in id order."""
    out: dict[str, list[tuple[int, Question]]] = {s: [] for s in SPLIT_FRACTIONS}
    offers: dict = defaultdict(Offers)  # shared: every split is thinned at the same rates
    balance = {s: AnswerBalance(offers) for s in SPLIT_FRACTIONS}
    for row in sorted(rows, key=lambda r: r["ecg_id"]):
        rng = np.random.default_rng([seed, QUESTION_STREAM, int(row["ecg_id"])])
        for question in ask(facts_from_row(row), per_ecg, rng, balance[row["split"]]):
            out[row["split"]].append((int(row["ecg_id"]), question))
    return out


def _records(questions: list[tuple[int, Question]], qids: dict, variant: str) -> list[dict]:
    return [
        {
            "template_id": q.template_id,
            "question_id": qids[(q.template_id, q.template_text)],
            "sample_id": sample_id,
            "question_type": q.question_type,
            "attribute_type": q.attribute_type,
            "question": q.template_text if variant == "template" else q.paraphrased_text,
            "answer": list(q.answer),
            "ecg_id": [ecg_id],
            "attribute": list(q.attribute),
        }
        for sample_id, (ecg_id, q) in enumerate(questions)
    ]


def write_ecgqa(root: Path, by_split: dict[str, list[tuple[int, Question]]]) -> None:
    """The ECG-QA folder: per-template answers, all answers, and the JSON files of each split."""
    keys = sorted({(q.template_id, q.template_text) for qs in by_split.values() for _, q in qs})
    qids = {key: i for i, key in enumerate(keys)}
    for variant in ("paraphrased", "template"):
        for split, questions in by_split.items():
            folder = root / variant / split
            folder.mkdir(parents=True, exist_ok=True)
            records = _records(questions, qids, variant)
            for start in range(0, max(len(records), 1), SAMPLES_PER_FILE):
                part = records[start : start + SAMPLES_PER_FILE]
                text = json.dumps(part, indent=4, ensure_ascii=False)
                (folder / f"{start}.json").write_text(text + "\n", encoding="utf-8")
    used = sorted({q.template_id for qs in by_split.values() for _, q in qs})
    lines = ["template_id,classes"]
    for tid in used:
        classes = sorted(TEMPLATES[tid].classes)
        lines.append(f'{tid},"{classes!r}"')
    (root / "answers_for_each_template.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    answers: list[str] = []
    for tid in used:
        answers += [c for c in sorted(TEMPLATES[tid].classes) if c not in answers]
    body = "\n".join(f'{i},"{a}"' if "," in a else f"{i},{a}" for i, a in enumerate(answers))
    (root / "answers.csv").write_text("index,class\n" + body + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------ counts


def question_counts(by_split: dict[str, list[tuple[int, Question]]]) -> dict:
    """Per split and overall: per type, per template, yes/no of verify, share naming a lead."""
    def count(items: list[tuple[int, Question]]) -> dict:
        verify = Counter(q.answer[0] for _, q in items if q.question_type == "single-verify")
        return {
            "n": len(items),
            "per_type": dict(sorted(Counter(q.question_type for _, q in items).items())),
            "per_template": {str(k): v for k, v in sorted(Counter(q.template_id for _, q in items).items())},
            "verify_yes": verify.get("yes", 0),
            "verify_no": verify.get("no", 0),
            "lead_share": round(sum(" lead " in f" {q.paraphrased_text} " for _, q in items)
                                / max(len(items), 1), 3),
        }  # fmt: skip

    everything = [item for items in by_split.values() for item in items]
    return {"all": count(everything), **{s: count(items) for s, items in by_split.items()}}


def finding_counts(rows: list[dict]) -> dict[str, int]:
    counter: Counter[str] = Counter()
    for row in rows:
        counter.update(json.loads(row["findings"]))
    return dict(sorted(counter.items()))


# ------------------------------------------------------------------------------ entry point


def _clear_previous(out: Path) -> None:
    """Remove a previous run's outputs (only ours, recognised by synth.json)."""
    targets = [out / "store", out / "corpus", out / "ecgqa" / DATASET_NAME]
    if (out / "synth.json").is_file():
        for target in targets:
            shutil.rmtree(target, ignore_errors=True)
        (out / "synth.json").unlink()
        return
    busy = [str(t) for t in targets if t.exists() and any(t.iterdir())]
    if busy:
        raise FileExistsError(f"{out}: {busy[0]} exists and holds no synthetic benchmark; choose an empty folder")


def generate_benchmark(
    out: str | Path,
    n_ecgs: int,
    seed: int = 0,
    corpus_ecgs: int = 0,
    *,
    workers: int = 1,
    questions_per_ecg: int = 10,
    chunk_size: int = 250,
    realism: str = DEFAULT_REALISM,
    progress=None,
) -> dict:
    """Write the synthetic benchmark under `out`; returns the summary also saved as synth.json.

    `progress(n)` (optional) is called after every chunk with the number of ECGs just written.
    """
    config = SynthConfig(n_ecgs, seed, corpus_ecgs, questions_per_ecg, chunk_size, realism)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out)
    splits = assign_splits(n_ecgs, seed)
    rows = _write_store(out / "store", "synthetic", seed, QA_STREAM, splits, config, workers,
                        progress=progress)  # fmt: skip
    by_split = make_questions(rows, seed, questions_per_ecg)
    write_ecgqa(out / "ecgqa" / DATASET_NAME, by_split)
    corpus_rows: list[dict] = []
    if corpus_ecgs:
        corpus_rows = _write_store(out / "corpus", "synthetic-corpus", seed, CORPUS_STREAM,
                                   ["corpus"] * corpus_ecgs, config, workers,
                                   id_offset=CORPUS_ID_OFFSET, progress=progress)  # fmt: skip
    summary = {
        "config": {
            "n_ecgs": n_ecgs, "seed": seed, "corpus_ecgs": corpus_ecgs,
            "questions_per_ecg": questions_per_ecg, "realism": realism,
        },
        "paths": {"store": "store", "ecgqa": f"ecgqa/{DATASET_NAME}",
                  **({"corpus": "corpus"} if corpus_ecgs else {})},
        "ecgs_per_split": dict(sorted(Counter(r["split"] for r in rows).items())),
        "questions": question_counts(by_split),
        "prior_baseline": prior_baseline([q for _, q in by_split["train"]],
                                         [q for _, q in by_split["test"]]),
        "findings": finding_counts(rows),
        "corpus_findings": finding_counts(corpus_rows) if corpus_rows else {},
    }  # fmt: skip
    (out / "synth.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary
