"""Top-k retrieved reports for every question of an ECG-QA split, computed once and cached.

Training draws one of the top-3 reports per step and evaluation puts them in every prompt, so
searching on the fly would repeat the same encoder pass for every epoch. The cache is a JSON file
keyed by ecg_id (hits) and sample_id (→ ecg_id); it records the index build it came from, so a
consumer can refuse a cache made with another index.

Leakage: each ECG's own record is always excluded, and by default every record of its patient
too, so neither training nor evaluation ever sees the query's own report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from qheart.data.ecgqa import QASample, join_store
from qheart.data.store import SignalStore
from qheart.retrieval.index import Embedder, embed_rows
from qheart.retrieval.search import Retriever

CACHE_FORMAT = "qheart-retrieved-reports"
CACHE_VERSION = 1


@dataclass(frozen=True)
class RetrievedReport:
    """One cached hit."""

    ecg_id: int
    score: float
    report: str


@dataclass
class RetrievedReports:
    """Cached top-k reports: `.for_sample(sample_id)` / `.for_ecg(ecg_id)` → report strings."""

    by_ecg: dict[int, list[RetrievedReport]]
    samples: dict[int, int]
    info: dict

    def for_ecg(self, ecg_id: int) -> list[str]:
        return [hit.report for hit in self.by_ecg[int(ecg_id)]]

    def for_sample(self, sample_id: int) -> list[str]:
        return self.for_ecg(self.samples[int(sample_id)])

    def save(self, path: str | Path) -> Path:
        """Write atomically (temp file + os.replace): a killed run leaves no half cache."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            **self.info,
            "ecgs": {str(e): [asdict(h) for h in hits] for e, hits in self.by_ecg.items()},
            "samples": {str(s): e for s, e in self.samples.items()},
        }
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path, *, build_id: str | None = None) -> RetrievedReports:
        """Read a cache; with `build_id`, refuse one computed against another index build."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != CACHE_FORMAT or data.get("version") != CACHE_VERSION:
            raise ValueError(f"{path}: not a version-{CACHE_VERSION} {CACHE_FORMAT} file")
        if build_id is not None and data["index_build_id"] != build_id:
            raise ValueError(f"{path}: computed with index build {data['index_build_id']}, "
                             f"not {build_id}; run `qheart index precompute` again")
        by_ecg = {int(e): [RetrievedReport(**h) for h in hits] for e, hits in data.pop("ecgs").items()}
        samples = {int(s): int(e) for s, e in data.pop("samples").items()}
        return cls(by_ecg, samples, data)


def retrieve_for_ecgs(
    retriever: Retriever,
    store: SignalStore,
    ecg_ids: Sequence[int],
    embed: Embedder,
    *,
    k: int = 3,
    exclude_same_patient: bool = True,
    batch_size: int = 64,
    progress: bool = True,
) -> dict[int, list[RetrievedReport]]:
    """Embed each ECG from `store` and retrieve its top-k reports, never its own."""
    ecg_ids = [int(e) for e in ecg_ids]
    rows = np.array([store.row_of(e) for e in ecg_ids], dtype=np.int64)
    patients = store.metadata["patient_id"].iloc[rows]
    out: dict[int, list[RetrievedReport]] = {}
    step = max(batch_size, 256)  # search in blocks: one FAISS call per block, not per ECG
    for start in tqdm(range(0, len(rows), step), desc="retrieve", unit="block",
                      disable=not progress):
        block = slice(start, start + step)
        z = embed_rows(store, rows[block], embed, batch_size)  # (b, d)
        pats = ([None if pd.isna(p) else int(p) for p in patients.iloc[block]]
                if exclude_same_patient else None)
        hits = retriever.search(z, k, exclude_ecg_ids=ecg_ids[block], exclude_patient_ids=pats)
        for ecg_id, found in zip(ecg_ids[block], hits, strict=True):
            out[ecg_id] = [RetrievedReport(h.ecg_id, round(h.score, 6), h.report) for h in found]
    return out


def precompute_reports(
    retriever: Retriever,
    samples: Sequence[QASample],
    store: SignalStore,
    embed: Embedder,
    *,
    k: int = 3,
    exclude_same_patient: bool = True,
    batch_size: int = 64,
    info: dict | None = None,
    progress: bool = True,
) -> RetrievedReports:
    """Top-k reports for each distinct ECG of `samples` (those present in `store`)."""
    kept, missing = join_store(samples, store)
    mapping: dict[int, int] = {}
    for sample in kept:
        if mapping.setdefault(sample.sample_id, sample.ecg_id) != sample.ecg_id:
            raise ValueError(f"sample_id {sample.sample_id} names two ECGs")
    ecg_ids = sorted(set(mapping.values()))
    by_ecg = retrieve_for_ecgs(retriever, store, ecg_ids, embed, k=k,
                               exclude_same_patient=exclude_same_patient,
                               batch_size=batch_size, progress=progress)
    meta = {"format": CACHE_FORMAT, "version": CACHE_VERSION,
            "index": str(retriever.root), "index_build_id": retriever.build_id, "k": k,
            "exclude_same_patient": exclude_same_patient, "store": str(store.root),
            "n_samples": len(mapping), "n_ecgs": len(ecg_ids),
            "n_samples_missing_ecg": len(missing), **(info or {})}
    return RetrievedReports(by_ecg, mapping, meta)
