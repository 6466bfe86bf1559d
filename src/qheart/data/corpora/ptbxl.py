"""PTB-XL 1.0.3 as published: `ptbxl_database.csv` + `records500/NNNNN/XXXXX_hr.{hea,dat}`.

Rows keep the database's own text: `scp_codes` stays the dict literal of the CSV (parse it with
`parse_scp_codes`), the noise columns stay lead lists as text (e.g. `", I-AVR,"`). The 500 Hz
records (`filename_hr`) are read; the 100 Hz copies would only lose bandwidth.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from qheart.data.corpora import Corpus, CorpusError, read_each, require_columns, require_file
from qheart.data.corpora import text_column as _text

DATABASE = "ptbxl_database.csv"

TEXT_COLUMNS = (
    "report", "scp_codes", "heart_axis", "infarction_stadium1", "infarction_stadium2",
    "baseline_drift", "static_noise", "burst_noise", "electrodes_problems", "extra_beats",
    "pacemaker", "recording_date",
)  # fmt: skip
NOISE_COLUMNS = ("baseline_drift", "static_noise", "burst_noise", "electrodes_problems")
_NEEDED = ["ecg_id", "patient_id", "age", "sex", "strat_fold", "filename_hr", *TEXT_COLUMNS]


def parse_scp_codes(text: str, source: str = DATABASE) -> dict[str, float]:
    """`"{'NORM': 100.0, 'SR': 0.0}"` → dict. ast.literal_eval: a CSV field is data, never code."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        # exc's text can hold memory addresses: keep it out so skip reasons are reproducible
        raise CorpusError(f"{source}: scp_codes {text!r} is not a dict literal") from exc
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise CorpusError(f"{source}: scp_codes {text!r} is not a dict of SCP code → likelihood")
    return {k: float(v) for k, v in value.items()}


def load_database(root: Path, limit: int | None = None) -> pd.DataFrame:
    """The database rows as store metadata, sorted by ecg_id (first `limit` only, if given)."""
    path = require_file(root / DATABASE)
    frame = pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, keep_default_na=True)
    require_columns(frame, _NEEDED, path)
    frame = frame.sort_values("ecg_id", kind="stable")
    if limit is not None:
        frame = frame.head(limit)
    rows = pd.DataFrame({
        "ecg_id": frame["ecg_id"].astype(np.int64),
        "patient_id": pd.to_numeric(frame["patient_id"]).astype("Int64"),
        "report": _text(frame["report"]),
        "record": _text(frame["filename_hr"]),
        "age": pd.to_numeric(frame["age"]).astype(np.float64),
        "sex": pd.to_numeric(frame["sex"]).astype("Int64"),
        "strat_fold": pd.to_numeric(frame["strat_fold"]).astype("Int64"),
        "scp_codes": _text(frame["scp_codes"]),
    })
    for column in TEXT_COLUMNS:
        if column not in rows:
            rows[column] = _text(frame[column])
    return rows.reset_index(drop=True)


def list_chunks(root: Path, chunk_size: int, limit: int | None) -> Iterator[pd.DataFrame]:
    # 21,799 rows: the whole table fits in memory; only the signals are streamed.
    rows = load_database(root, limit)
    for start in range(0, len(rows), chunk_size):
        yield rows.iloc[start : start + chunk_size].reset_index(drop=True)


def count(root: Path, limit: int | None) -> int:
    n = len(pd.read_csv(require_file(root / DATABASE), usecols=["ecg_id"]))
    return n if limit is None else min(n, limit)


def read_chunk(root: Path, rows: pd.DataFrame, *,
               verify_checksums: bool = True) -> list[np.ndarray | Exception]:
    from qheart.data.readers import read_wfdb

    def read_one(row: pd.Series) -> np.ndarray:
        parse_scp_codes(row["scp_codes"], f"{DATABASE} ecg_id {row['ecg_id']}")
        return read_wfdb(root / row["record"], verify_checksums=verify_checksums)  # (12, 5000)

    return read_each(rows, read_one)


CORPUS = Corpus(name="ptbxl", chunks=list_chunks, read=read_chunk, count=count)
