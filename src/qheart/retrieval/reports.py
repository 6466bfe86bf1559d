"""The report store: one SQLite row per FAISS row, so a search hit maps to its ECG and report.

SQLite rather than a parquet file because search needs random access to a few reports out of
hundreds of thousands without loading them all, and the standard library ships it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPORT_COLUMNS = ("row", "ecg_id", "patient_id", "report", "findings", "source")

_SCHEMA = """
CREATE TABLE reports (
    row INTEGER PRIMARY KEY,      -- the FAISS row (0..n-1, no gaps)
    ecg_id INTEGER NOT NULL UNIQUE,
    patient_id INTEGER,           -- NULL when the corpus has none
    report TEXT NOT NULL,
    findings TEXT,                -- JSON list where the corpus has labelled findings, else NULL
    source TEXT NOT NULL          -- the signal store the ECG came from
);
CREATE INDEX reports_patient ON reports(patient_id);
"""


class ReportStoreError(RuntimeError):
    """A report database that is missing or disagrees with its index."""


@dataclass(frozen=True)
class ReportRow:
    """One indexed ECG: its FAISS row, ids and report."""

    row: int
    ecg_id: int
    patient_id: int | None
    report: str
    findings: str | None = None


def write_reports(path: Path, rows: pd.DataFrame) -> None:
    """Create `path` holding `rows` (columns ecg_id, patient_id, report, [findings], source),
    the i-th row of the frame becoming FAISS row i."""
    if path.exists():
        raise ReportStoreError(f"{path}: already exists")
    frame = pd.DataFrame({
        "row": np.arange(len(rows), dtype=np.int64),
        "ecg_id": rows["ecg_id"].to_numpy(np.int64),
        "patient_id": [None if pd.isna(p) else int(p) for p in rows["patient_id"]],
        "report": rows["report"].fillna("").astype(str).to_numpy(),
        "findings": [f if isinstance(f, str) else None
                     for f in (rows["findings"] if "findings" in rows else [None] * len(rows))],
        "source": rows["source"].astype(str).to_numpy(),
    })
    with sqlite3.connect(path) as db:
        db.executescript(_SCHEMA)
        db.executemany(
            "INSERT INTO reports VALUES (?, ?, ?, ?, ?, ?)",
            frame.itertuples(index=False, name=None),
        )
    # sqlite3's context manager commits but does not close.
    db.close()


class ReportStore:
    """Read side: ids of every row (for leakage filtering) and reports on demand."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ReportStoreError(f"{self.path}: report database not found")
        self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        ids = self._db.execute("SELECT row, ecg_id, patient_id FROM reports ORDER BY row").fetchall()
        table = np.array([(r, e, -1 if p is None else p) for r, e, p in ids], dtype=np.int64)
        table = table.reshape(-1, 3)
        if not np.array_equal(table[:, 0], np.arange(len(table))):
            raise ReportStoreError(f"{self.path}: rows are not 0..{len(table) - 1} without gaps")
        self.ecg_ids = table[:, 1]
        """int64 ecg_id per FAISS row."""
        self.patient_ids = table[:, 2]
        """int64 patient_id per FAISS row, -1 where unknown (never matches an exclusion)."""

    def __len__(self) -> int:
        return len(self.ecg_ids)

    def get(self, rows: Sequence[int]) -> list[ReportRow]:
        """The rows asked for, in the order asked (repeats allowed)."""
        wanted = sorted({int(r) for r in rows})
        found: dict[int, ReportRow] = {}
        for start in range(0, len(wanted), 900):  # SQLite's bound-parameter limit is 999
            part = wanted[start : start + 900]
            marks = ",".join("?" * len(part))
            for row, ecg_id, patient_id, report, findings in self._db.execute(
                "SELECT row, ecg_id, patient_id, report, findings FROM reports "
                f"WHERE row IN ({marks})", part,
            ):
                found[row] = ReportRow(row, ecg_id, patient_id, report, findings)
        missing = [r for r in wanted if r not in found]
        if missing:
            raise ReportStoreError(f"{self.path}: no report for FAISS row(s) {missing[:5]}")
        return [found[int(r)] for r in rows]

    def close(self) -> None:
        self._db.close()
