"""The published ECG corpora, each described once for `qheart.data.prepare`.

A corpus module lists its records deterministically as chunks of metadata rows (one row per
record, with a `record` column locating the signal under the corpus root) and reads a chunk's
signals. Everything else — workers, resuming, progress, skipping bad records — is generic and
lives in `qheart.data.prepare`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ChunkLister = Callable[[Path, int, int | None], Iterator[pd.DataFrame]]
"""(root, chunk_size, limit) → chunks of metadata rows, in a fixed order, each ≤ chunk_size rows."""

ChunkReader = Callable[..., list[np.ndarray | Exception]]
"""(root, rows, *, verify_checksums=True) → per row the canonical (12, 5000) float32 signal, or
the exception rejecting it (verify_checksums: compare WFDB checksums with the data)."""


class CorpusError(ValueError):
    """The corpus folder does not have the published layout (missing file or column)."""


@dataclass(frozen=True)
class Corpus:
    """One published corpus: how to list its records and how to read their signals."""

    name: str
    """Store `source` and CLI name, e.g. "ptbxl"."""
    chunks: ChunkLister
    read: ChunkReader
    count: Callable[[Path, int | None], int]
    """(root, limit) → number of records the listing will yield (for the progress bar)."""


def require_columns(frame: pd.DataFrame | list[str], columns: list[str], path: Path) -> None:
    """Raise CorpusError naming the file when any of `columns` is missing."""
    have = set(frame.columns if isinstance(frame, pd.DataFrame) else frame)
    missing = [c for c in columns if c not in have]
    if missing:
        raise CorpusError(f"{path}: missing column(s) {', '.join(missing)}")


def require_file(path: Path) -> Path:
    if not path.is_file():
        raise CorpusError(f"{path}: not found (is --root the corpus folder as published?)")
    return path


def read_each(rows: pd.DataFrame, read_one: Callable[[pd.Series], np.ndarray]) -> list:
    """Apply `read_one` per row, turning each failure into that row's result.

    Any exception is caught on purpose: one bad record must never abort a run over 800k files,
    and the exception becomes the skip reason the user sees.
    """
    results: list[np.ndarray | Exception] = []
    for _, row in rows.iterrows():
        try:
            results.append(read_one(row))
        except Exception as exc:
            results.append(exc)
    return results


def text_column(series: pd.Series) -> pd.Series:
    """A text column as plain str with "" for missing, so every chunk has the same dtype."""
    return series.astype(object).where(series.notna(), "").astype(str)


def get_corpus(name: str) -> Corpus:
    """The corpus registered under `name` (imported lazily: workers import only what they use)."""
    if name == "ptbxl":
        from qheart.data.corpora.ptbxl import CORPUS
    elif name == "mimic-iv-ecg":
        from qheart.data.corpora.mimic_iv_ecg import CORPUS
    elif name == "code15":
        from qheart.data.corpora.code15 import CORPUS
    else:
        raise KeyError(f"unknown corpus {name!r}; known: {', '.join(CORPUS_NAMES)}")
    return CORPUS


CORPUS_NAMES = ("ptbxl", "mimic-iv-ecg", "code15")
