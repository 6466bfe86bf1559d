"""Search a report index: top-k reports of the ECGs most similar to a query, without leakage.

Leakage control: a query may name its own record (`exclude_ecg_ids`) and, on request, its
patient (`exclude_patient_ids`); hits from them are dropped. The search over-fetches k + a margin
and, when exclusions leave fewer than k hits (a patient with many ECGs), fetches again with a
larger window, so a query still gets k hits whenever the corpus has them. Ids are compared as
numbers whatever corpus a row came from, so an exclusion may also drop an unrelated record of
another corpus that happens to share the number — a lost candidate, never a leak.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qheart.retrieval.factory import apply_search_params, whitening
from qheart.retrieval.index import INDEX_FORMAT, INDEX_VERSION, MANIFEST
from qheart.retrieval.reports import ReportStore

FETCH_MARGIN = 8
"""Extra candidates fetched beyond k so that exclusions rarely force a second search."""
_NO_ID = np.iinfo(np.int64).min  # a query without an id to exclude; matches no row


class IndexLoadError(RuntimeError):
    """An index folder that is missing, unfinished or inconsistent."""


@dataclass(frozen=True)
class Hit:
    """One retrieved ECG: its FAISS row, ids, report and cosine similarity to the query (of
    the whitened vectors when the index whitens)."""

    row: int
    ecg_id: int
    patient_id: int | None
    report: str
    score: float
    findings: str | None = None


def _ids_per_query(ids: Sequence[int | None] | None, n: int, what: str) -> np.ndarray:
    if ids is None:
        return np.full(n, _NO_ID, dtype=np.int64)
    if len(ids) != n:
        raise ValueError(f"{what}: {len(ids)} ids for {n} queries (give one per query, or None)")
    return np.array([_NO_ID if i is None else int(i) for i in ids], dtype=np.int64)


class Retriever:
    """A loaded index: FAISS vectors plus the report database, searched with leakage control."""

    def __init__(self, root: Path, index: faiss.Index, reports: ReportStore, manifest: dict) -> None:
        self.root = root
        self.index = index
        self.reports = reports
        self.manifest = manifest
        self.search_params: dict[str, int] = dict(manifest["plan"]["search_params"])

    @classmethod
    def load(cls, root: str | Path, **search_params: int) -> Retriever:
        """Open an index folder; `search_params` (nprobe=, efSearch=) override the manifest's."""
        root = Path(root)
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise IndexLoadError(
                f"{root}: no {MANIFEST} — not a report index, or its build did not finish "
                "(re-run the same `qheart index build` command to resume it)")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != INDEX_FORMAT or manifest.get("version") != INDEX_VERSION:
            raise IndexLoadError(f"{manifest_path}: not a version-{INDEX_VERSION} {INDEX_FORMAT}")
        files = manifest["files"]
        index = faiss.read_index(str(root / files["index"]))
        reports = ReportStore(root / files["reports"])
        if not (index.ntotal == len(reports) == manifest["n"]) or index.d != manifest["dim"]:
            raise IndexLoadError(
                f"{root}: FAISS rows {index.ntotal}, report rows {len(reports)} and manifest "
                f"n={manifest['n']} (dim {index.d} vs {manifest['dim']}) must agree")
        retriever = cls(root, index, reports, manifest)
        retriever.search_params.update(search_params)
        return retriever

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def build_id(self) -> str:
        return str(self.manifest["build_id"])

    def search_rows(
        self,
        embeddings: np.ndarray,
        k: int = 3,
        *,
        exclude_ecg_ids: Sequence[int | None] | None = None,
        exclude_patient_ids: Sequence[int | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """FAISS rows (B, k) (-1 where the corpus has too few) and cosine scores (B, k)."""
        queries = np.ascontiguousarray(np.atleast_2d(embeddings), dtype=np.float32)  # (B, d)
        if queries.shape[1] != self.dim:
            raise ValueError(f"query embeddings have {queries.shape[1]} dims, index has {self.dim}")
        if k < 1:
            raise ValueError(f"k must be ≥ 1, got {k}")
        # Unit norm first, as the corpus vectors were before the index's own whitening saw
        # them; a whitened index then transforms the queries inside `search`.
        faiss.normalize_L2(queries)
        n_q, n = len(queries), len(self)
        ex_ecg = _ids_per_query(exclude_ecg_ids, n_q, "exclude_ecg_ids")
        ex_pat = _ids_per_query(exclude_patient_ids, n_q, "exclude_patient_ids")
        rows = np.full((n_q, k), -1, dtype=np.int64)
        scores = np.full((n_q, k), np.nan, dtype=np.float32)
        todo, fetch = np.arange(n_q), min(n, k + FETCH_MARGIN)
        while todo.size:
            apply_search_params(self.index, self.search_params, fetch)
            dist, found = self.index.search(queries[todo], fetch)  # (b, fetch)
            safe = found.clip(min=0)
            keep = ((found >= 0)
                    & (self.reports.ecg_ids[safe] != ex_ecg[todo, None])
                    & (self.reports.patient_ids[safe] != ex_pat[todo, None]))
            # Fetch again only where the window was full: an approximate index that ran out of
            # candidates (-1 padding) would not find more with a larger window.
            retry = (keep.sum(axis=1) < k) & (found[:, -1] >= 0) & (fetch < n)
            for j in np.flatnonzero(~retry):
                sel = np.flatnonzero(keep[j])[:k]
                rows[todo[j], : len(sel)] = found[j, sel]
                scores[todo[j], : len(sel)] = dist[j, sel]
            todo, fetch = todo[retry], min(n, fetch * 4)
        return rows, scores

    def search(
        self,
        embeddings: np.ndarray,
        k: int = 3,
        *,
        exclude_ecg_ids: Sequence[int | None] | None = None,
        exclude_patient_ids: Sequence[int | None] | None = None,
    ) -> list[list[Hit]]:
        """Top-k hits per query embedding (B, d), best first, with leakage control."""
        rows, scores = self.search_rows(embeddings, k, exclude_ecg_ids=exclude_ecg_ids,
                                        exclude_patient_ids=exclude_patient_ids)
        found = self.reports.get([r for r in rows.ravel() if r >= 0])
        by_row = {r.row: r for r in found}
        return [
            [Hit(int(r), by_row[r].ecg_id, by_row[r].patient_id, by_row[r].report, float(s),
                 by_row[r].findings)
             for r, s in zip(row_q, score_q, strict=True) if r >= 0]
            for row_q, score_q in zip(rows, scores, strict=True)
        ]

    def describe(self) -> dict[str, Any]:
        """A short summary for CLI output."""
        plan = self.manifest["plan"]
        return {"root": str(self.root), "n": len(self), "dim": self.dim, "kind": plan["kind"],
                "factory": plan["factory"], "whiten": self.whitened,
                "search_params": self.search_params}

    @property
    def whitened(self) -> bool:
        """Whether the index whitens vectors and queries (False for indexes built before
        whitening existed, or with whiten=False)."""
        return whitening(self.index) is not None
