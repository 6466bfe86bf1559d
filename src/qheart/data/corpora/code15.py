"""CODE-15% as published: `exams_part*.hdf5` (`tracings` (N, 4096, 12) at 400 Hz, `exam_id` (N,))
plus `exams.csv` (exam_id, patient_id, age, is_male, the six labels, trace_file, …).

Records are listed file by file (natural order: part2 before part10), row by row, so chunk
numbers are stable. Each HDF5 file ends with an all-zero padding row whose exam_id is 0; it is not
an exam and is left out. CODE-15 has no report text, so `report` is "". exams.csv (345k rows of a
few numbers) is read whole; only the signals are streamed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from qheart.data.corpora import Corpus, CorpusError, require_columns, require_file

EXAMS = "exams.csv"
LABELS = ("1dAVb", "RBBB", "LBBB", "SB", "AF", "ST")
PADDING_EXAM_ID = 0


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def hdf5_files(root: Path) -> list[Path]:
    files = sorted([*root.glob("*.hdf5"), *root.glob("*.h5")], key=_natural_key)
    if not files:
        raise CorpusError(f"{root}: no .hdf5 files (expected exams_part0.hdf5 …)")
    return files


def _exam_ids(path: Path) -> np.ndarray:
    import h5py  # local: the CLI imports corpora lazily, workers only when reading

    from qheart.data.errors import ECGError
    from qheart.data.input_files import check_regular_file

    try:
        check_regular_file(path, what="HDF5 file")  # a FIFO would block h5py forever
    except ECGError as exc:
        raise CorpusError(str(exc)) from None
    try:
        with h5py.File(path, "r") as handle:
            if "exam_id" not in handle:
                raise CorpusError(f"{path}: no 'exam_id' dataset (CODE-15 layout expected)")
            return np.asarray(handle["exam_id"][:], dtype=np.int64)
    except (OSError, TypeError, ValueError) as exc:  # not HDF5, corrupt, exam_id not integers
        raise CorpusError(f"{path}: cannot read exam_id: {exc}") from None


def _load_exams(root: Path) -> pd.DataFrame:
    path = require_file(root / EXAMS)
    exams = pd.read_csv(path)
    require_columns(exams, ["exam_id", "patient_id", "age", "is_male", *LABELS], path)
    exams = exams.drop_duplicates("exam_id").set_index("exam_id")
    return exams


def _rows(file: Path, ids: np.ndarray, exams: pd.DataFrame) -> pd.DataFrame:
    index = np.flatnonzero(ids != PADDING_EXAM_ID)
    ids = ids[index]
    info = exams.reindex(ids)
    rows = pd.DataFrame({
        "ecg_id": ids,
        "patient_id": pd.to_numeric(info["patient_id"]).astype("Int64").to_numpy(),
        "report": "",
        "record": [f"{file.name}[{i}]" for i in index],
        "trace_file": file.name,
        "trace_index": index.astype(np.int64),
        "age": pd.to_numeric(info["age"]).astype(np.float64).to_numpy(),
        "is_male": info["is_male"].astype("boolean").to_numpy(),
    })
    for label in LABELS:
        rows[label] = info[label].astype("boolean").to_numpy()
    if "normal_ecg" in info:
        rows["normal_ecg"] = info["normal_ecg"].astype("boolean").to_numpy()
    return rows


def list_chunks(root: Path, chunk_size: int, limit: int | None) -> Iterator[pd.DataFrame]:
    exams = _load_exams(root)
    pending: list[pd.DataFrame] = []
    n_pending = 0
    left = limit
    for file in hdf5_files(root):
        rows = _rows(file, _exam_ids(file), exams)
        if left is not None:
            rows = rows.head(left)
            left -= len(rows)
        pending.append(rows)
        n_pending += len(rows)
        while n_pending >= chunk_size:
            merged = pd.concat(pending, ignore_index=True)
            yield merged.iloc[:chunk_size].reset_index(drop=True)
            pending, n_pending = [merged.iloc[chunk_size:]], len(merged) - chunk_size
        if left is not None and left <= 0:
            break
    if n_pending:
        yield pd.concat(pending, ignore_index=True)


def count(root: Path, limit: int | None) -> int:
    require_file(root / EXAMS)  # the layout check comes first, before any HDF5 is opened
    n = sum(int((_exam_ids(f) != PADDING_EXAM_ID).sum()) for f in hdf5_files(root))
    return n if limit is None else min(n, limit)


def read_chunk(root: Path, rows: pd.DataFrame, *,
               verify_checksums: bool = True) -> list[np.ndarray | Exception]:
    """One HDF5 block read per file touched by the chunk, not one open per record.
    (HDF5 carries no checksums to verify: `verify_checksums` is accepted and has no effect.)"""
    from qheart.data.readers import iter_code15

    results: list[np.ndarray | Exception | None] = [None] * len(rows)
    for file, group in rows.groupby("trace_file", sort=False):
        wanted = dict(zip(group["trace_index"].tolist(), group.index.tolist(), strict=True))
        try:
            for item in iter_code15(root / file, min(wanted), max(wanted) + 1):
                if item.index in wanted:
                    results[wanted[item.index]] = item.signal if item.error is None else item.error
        except Exception as exc:  # the whole file is unreadable: every record in it is skipped
            for position in wanted.values():
                results[position] = results[position] if results[position] is not None else exc
    for position, result in enumerate(results):
        if result is None:
            results[position] = CorpusError(f"{rows['record'][position]}: not in its HDF5 file")
    return results  # type: ignore[return-value]


CORPUS = Corpus(name="code15", chunks=list_chunks, read=read_chunk, count=count)
