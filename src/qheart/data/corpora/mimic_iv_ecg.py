"""MIMIC-IV-ECG v1.0 as published: `record_list.csv`, `machine_measurements.csv`, `files/…`.

Streaming: 800,035 records never sit in memory at once. `record_list.csv` is read `chunk_size`
rows at a time, and `machine_measurements.csv` is read alongside it block by block: its rows wait
in a small buffer until their study comes up. The release writes both files in the same order, so
the buffer stays at about one block; a file in another order still joins correctly, the buffer
just grows (a warning says so).

Metadata per record: ecg_id = study_id (ECG-QA's key for this corpus), patient_id = subject_id,
report = the non-empty machine statements report_0 … report_17 joined with "; ", plus the
machine's intervals and axes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from qheart.data.corpora import Corpus, read_each, require_columns, require_file, text_column

RECORD_LIST = "record_list.csv"
MEASUREMENTS = "machine_measurements.csv"
REPORT_COLUMNS = tuple(f"report_{i}" for i in range(18))
MEASURE_COLUMNS = (
    "rr_interval", "p_onset", "p_end", "qrs_onset", "qrs_end", "t_end", "p_axis", "qrs_axis",
    "t_axis",
)  # fmt: skip
REPORT_SEPARATOR = "; "
JOIN_BLOCK_ROWS = 10_000
BUFFER_WARNING_ROWS = 200_000


def join_report(statements: pd.DataFrame) -> pd.Series:
    """Per row, the non-empty statements in column order joined with "; "."""
    parts = [text_column(statements[c]).str.strip() for c in statements.columns]
    joined = []
    for values in zip(*parts, strict=True):
        joined.append(REPORT_SEPARATOR.join(v for v in values if v))
    return pd.Series(joined, index=statements.index, dtype=object)


class MeasurementJoin:
    """Look up machine_measurements rows by study_id while reading the file only once, forward."""

    def __init__(self, path: Path, block_rows: int = JOIN_BLOCK_ROWS) -> None:
        header = pd.read_csv(path, nrows=0).columns.tolist()
        require_columns(header, ["study_id"], path)
        self.path = path
        self.reports = [c for c in REPORT_COLUMNS if c in header]
        self.measures = [c for c in MEASURE_COLUMNS if c in header]
        text = {c: str for c in self.reports}
        self._blocks = pd.read_csv(path, chunksize=block_rows, dtype=text,
                                   usecols=["study_id", *self.reports, *self.measures])
        self._buffer = self._shape(pd.DataFrame(columns=["study_id", *self.reports, *self.measures]))
        self._exhausted = False
        self._warned = False
        self.peak_buffer_rows = 0

    def _shape(self, block: pd.DataFrame) -> pd.DataFrame:
        """Buffer rows: report text joined, measures as float, indexed by study_id."""
        out = pd.DataFrame({"report": join_report(block[self.reports])}, index=block.index)
        for column in self.measures:
            out[column] = pd.to_numeric(block[column], errors="coerce").astype(np.float64)
        out.index = block["study_id"].astype(np.int64).to_numpy()
        return out

    def _read_block(self) -> bool:
        try:
            block = next(self._blocks)
        except StopIteration:
            self._exhausted = True
            return False
        shaped = self._shape(block)
        self._buffer = pd.concat([self._buffer, shaped[~shaped.index.duplicated()]])
        self._buffer = self._buffer[~self._buffer.index.duplicated()]
        self.peak_buffer_rows = max(self.peak_buffer_rows, len(self._buffer))
        if len(self._buffer) > BUFFER_WARNING_ROWS and not self._warned:
            self._warned = True
            print(f"warning: {self.path} is not in {RECORD_LIST} order; buffering its rows "
                  "to join them (memory grows with the disorder)", file=sys.stderr)
        return True

    def take(self, study_ids: np.ndarray) -> pd.DataFrame:
        """Rows for these study_ids (in that order; all-missing where the file has none)."""
        while not self._exhausted and not np.isin(study_ids, self._buffer.index).all():
            self._read_block()
        found = self._buffer.reindex(study_ids)
        found["report"] = found["report"].fillna("")
        self._buffer = self._buffer.drop(index=study_ids, errors="ignore")
        return found.reset_index(drop=True)


def _record_rows(records: pd.DataFrame, measurements: pd.DataFrame, path: Path) -> pd.DataFrame:
    require_columns(records, ["subject_id", "study_id", "path"], path)
    rows = pd.DataFrame({
        "ecg_id": records["study_id"].astype(np.int64).to_numpy(),
        "patient_id": pd.to_numeric(records["subject_id"]).astype("Int64").to_numpy(),
        "report": measurements["report"].astype(str).to_numpy(),
        "record": text_column(records["path"]).to_numpy(),
        "ecg_time": text_column(records.get("ecg_time", pd.Series("", index=records.index)))
        .to_numpy(),
    })
    for column in MEASURE_COLUMNS:
        values = measurements.get(column, np.nan)
        rows[column] = np.asarray(values, dtype=np.float64)
    return rows


def list_chunks(root: Path, chunk_size: int, limit: int | None) -> Iterator[pd.DataFrame]:
    record_path = require_file(root / RECORD_LIST)
    join = MeasurementJoin(require_file(root / MEASUREMENTS))
    left = limit
    text = {"path": str, "ecg_time": str, "file_name": str}
    for records in pd.read_csv(record_path, chunksize=chunk_size, dtype=text):
        if left is not None:
            if left <= 0:
                return
            records = records.head(left)
            left -= len(records)
        study_ids = records["study_id"].astype(np.int64).to_numpy()
        yield _record_rows(records.reset_index(drop=True), join.take(study_ids), record_path)


def count(root: Path, limit: int | None) -> int:
    """Data lines of record_list.csv, counted without parsing (one quick pass)."""
    with open(require_file(root / RECORD_LIST), "rb") as fh:
        n = max(sum(1 for line in fh if line.strip()) - 1, 0)
    return n if limit is None else min(n, limit)


def read_chunk(root: Path, rows: pd.DataFrame, *,
               verify_checksums: bool = True) -> list[np.ndarray | Exception]:
    from qheart.data.readers import read_wfdb

    return read_each(rows, lambda row: read_wfdb(  # (12, 5000) each
        root / row["record"], verify_checksums=verify_checksums))


CORPUS = Corpus(name="mimic-iv-ecg", chunks=list_chunks, read=read_chunk, count=count)
