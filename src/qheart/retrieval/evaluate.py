"""Does retrieval find clinically similar ECGs? Findings shared by retrieved vs random reports.

On a corpus with labelled findings (the synthetic benchmark writes a JSON list per ECG), each
query ECG's top-k hits are compared with its own findings, and so are k reports drawn at random
from the same index under the same exclusions. A useful encoder + index puts the retrieved rates
far above the random ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from qheart.data.store import SignalStore
from qheart.retrieval.index import Embedder, embed_rows
from qheart.retrieval.search import Retriever


@dataclass(frozen=True)
class Agreement:
    """Finding agreement between queries and their k neighbours (one side: retrieved or random)."""

    same_findings: float
    """Share of (query, hit) pairs whose finding sets are identical."""
    jaccard: float
    """Mean |Fq ∩ Fh| / |Fq ∪ Fh| over (query, hit) pairs."""
    query_coverage: float
    """Mean share of the query's findings that the hit also has."""
    pairs: int


@dataclass(frozen=True)
class FindingsReport:
    """Retrieved vs random agreement on one set of queries."""

    retrieved: Agreement
    random: Agreement
    n_queries: int
    k: int


def parse_findings(value: object) -> frozenset[str]:
    """A findings cell (JSON list text) → set of finding strings; empty when missing."""
    if not isinstance(value, str) or not value:
        return frozenset()
    return frozenset(json.loads(value))


def agreement(queries: Sequence[frozenset[str]], hits: Sequence[Sequence[frozenset[str]]]) -> Agreement:
    """Agreement of each query's finding set with each of its hits' finding sets."""
    same, jac, cov = [], [], []
    for fq, fhs in zip(queries, hits, strict=True):
        for fh in fhs:
            union = fq | fh
            same.append(fq == fh)
            jac.append(len(fq & fh) / len(union) if union else 1.0)
            cov.append(len(fq & fh) / len(fq) if fq else float(not fh))
    if not same:
        raise ValueError("no (query, hit) pairs to compare")
    return Agreement(float(np.mean(same)), float(np.mean(jac)), float(np.mean(cov)), len(same))


def random_rows(retriever: Retriever, ecg_ids: Sequence[int], patient_ids: Sequence[int | None],
                k: int, seed: int = 0) -> np.ndarray:
    """k random index rows per query under the same exclusions as search: (B, k)."""
    rng = np.random.default_rng(seed)
    n = len(retriever)
    ids, pats = retriever.reports.ecg_ids, retriever.reports.patient_ids
    out = np.empty((len(ecg_ids), k), dtype=np.int64)
    for i, (ecg_id, patient) in enumerate(zip(ecg_ids, patient_ids, strict=True)):
        picked: list[int] = []
        for _ in range(100 * k + n):  # rejection sampling; bounded so a tiny index cannot hang
            row = int(rng.integers(n))
            if row in picked or ids[row] == ecg_id or (patient is not None and pats[row] == patient):
                continue
            picked.append(row)
            if len(picked) == k:
                break
        else:
            raise ValueError(f"could not draw {k} allowed rows for ecg_id {ecg_id}")
        out[i] = picked
    return out


def findings_agreement(
    retriever: Retriever,
    store: SignalStore,
    embed: Embedder,
    *,
    split: str | None = "test",
    k: int = 3,
    limit: int | None = None,
    exclude_same_patient: bool = True,
    batch_size: int = 64,
    seed: int = 0,
) -> FindingsReport:
    """Compare the findings of retrieved and of random reports with each query's own."""
    meta = store.metadata
    if "findings" not in meta:
        raise ValueError(f"{store.root}: metadata has no `findings` column to compare")
    rows = np.arange(len(meta))
    if split is not None:
        if "split" not in meta:
            raise ValueError(f"{store.root}: no `split` column to pick {split!r} queries")
        rows = rows[(meta["split"] == split).to_numpy()]
    if limit is not None:
        rows = rows[:limit]
    if not len(rows):
        raise ValueError(f"{store.root}: no query ECGs (split={split!r})")
    ecg_ids = meta["ecg_id"].to_numpy(np.int64)[rows].tolist()
    patients = [None if pd.isna(p) or not exclude_same_patient else int(p)
                for p in meta["patient_id"].iloc[rows]]
    queries = [parse_findings(f) for f in meta["findings"].iloc[rows]]
    z = embed_rows(store, rows, embed, batch_size)  # (B, d)
    found, _ = retriever.search_rows(z, k, exclude_ecg_ids=ecg_ids, exclude_patient_ids=patients)
    drawn = random_rows(retriever, ecg_ids, patients, k, seed)

    def findings_of(table: np.ndarray) -> list[list[frozenset[str]]]:
        reports = {r.row: r for r in retriever.reports.get([r for r in table.ravel() if r >= 0])}
        return [[parse_findings(reports[r].findings) for r in line if r >= 0] for line in table]

    return FindingsReport(agreement(queries, findings_of(found)),
                          agreement(queries, findings_of(drawn)), len(rows), k)
