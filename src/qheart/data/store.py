"""The signal store: many ECGs as memory-mapped float16 shards, an id index and a metadata table.

Layout of a store folder (written by `StoreWriter`, read by `SignalStore`):

    store.json                 written last, atomically: a store without it never opens
    shards/chunk-000000.npy    float16 (n, 12, 5000), millivolts; only the good records of a chunk
    shards/chunk-000000.parquet  the chunk's metadata rows, same order (ecg_id first); written after
                               the .npy, so it is the chunk's completion marker
    shards/chunk-000000.skipped.json  records of the chunk that were skipped, with their reasons
    metadata.parquet           all rows in store order + `chunk`, `row_in_chunk`
    skipped.csv                every skipped record: id, path, reason

Chunks are numbered by position in the (sorted, deterministic) job list, so an interrupted run
resumes by skipping finished chunks and ends with the same store as an uninterrupted one.

IMPLEMENTATION PENDING (issue 2): signatures below are the contract other modules code against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("ecg_id", "patient_id", "report")
"""Every store's metadata has these: int64 ecg_id (PTB-XL ecg_id, MIMIC study_id, CODE exam_id),
patient_id (nullable Int64), report (str, "" if none). Corpus-specific columns follow."""


class StoreError(RuntimeError):
    """A store folder that is missing, unfinished or inconsistent."""


@dataclass(frozen=True)
class SkippedRecord:
    """A record left out of the store, with the reason (an ECGError message)."""

    record: str
    reason: str


class SignalStore:
    """Read side: random access to canonical ECGs (float32 (12, 5000) on the way out)."""

    def __init__(self, root: str | Path) -> None:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def ids(self) -> np.ndarray:
        """int64 ecg_id per row, in store order."""
        raise NotImplementedError

    @property
    def metadata(self) -> pd.DataFrame:
        """One row per record, in store order (index = row number)."""
        raise NotImplementedError

    def row_of(self, ecg_id: int) -> int:
        """Row number of an ecg_id; KeyError naming the store when absent."""
        raise NotImplementedError

    def __contains__(self, ecg_id: object) -> bool:
        raise NotImplementedError

    def signal(self, row: int) -> np.ndarray:
        """float32 (12, 5000) for one row."""
        raise NotImplementedError

    def signals(self, rows: Sequence[int]) -> np.ndarray:
        """float32 (B, 12, 5000) for many rows (any order, repeats allowed)."""
        raise NotImplementedError


class StoreWriter:
    """Write side: chunk by chunk, each chunk atomic; `finalize` writes store.json last."""

    def __init__(self, root: str | Path, *, source: str) -> None:
        raise NotImplementedError

    def finished_chunks(self) -> set[int]:
        """Chunks already complete on disk (a resumed run skips them)."""
        raise NotImplementedError

    def write_chunk(
        self,
        chunk: int,
        signals: np.ndarray,
        rows: pd.DataFrame,
        skipped: Sequence[SkippedRecord] = (),
    ) -> None:
        """Write one chunk atomically. signals: (n, 12, 5000) float; rows: n metadata rows."""
        raise NotImplementedError

    def finalize(self, extra: dict | None = None) -> SignalStore:
        """Merge chunk metadata into metadata.parquet, then write store.json (atomic)."""
        raise NotImplementedError
