"""The signal store: many ECGs as memory-mapped float16 shards, an id index and a metadata table.

Layout of a store folder (written by `StoreWriter`, read by `SignalStore`):

    store.json                 written last, atomically: a store without it never opens
    shards/chunk-000000.npy    float16 (n, 12, 5000), millivolts; only the good records of a chunk
    shards/chunk-000000.skipped.json  records of the chunk that were skipped, with their reasons
    shards/chunk-000000.parquet  the chunk's metadata rows, same order (ecg_id first); written
                               after the .npy and the .skipped.json, so it is the chunk's
                               completion marker
    metadata.parquet           all rows in store order + `chunk`, `row_in_chunk`
    skipped.csv                every skipped record: chunk, record, reason, kind
    prepare.json               (`qheart data prepare` only) the options that fix chunk boundaries

Every file is written to a temporary name in the same folder and moved into place with
`os.replace`, which is atomic: a run killed at any instant leaves either the whole file or no
file, never half of one. Leftover temporaries are removed when a writer opens the folder.
Chunk files are not fsynced (that was about a third of the writer's time per chunk here);
instead a chunk only counts as finished when its .npy has exactly the size its header promises
and its .parquet ends with the Parquet magic, so a chunk that a power loss left empty or short
is redone (on ext4's default ordered journaling a file never shows its new size before its
data). The final metadata.parquet, skipped.csv and store.json are fsynced.

Chunks are numbered by position in the (sorted, deterministic) job list, so an interrupted run
resumes by skipping finished chunks and ends with the same store as an uninterrupted one.

Precision: float16 has an 11-bit significand, so a value x in mV is stored with a relative error
of at most 2**-11 (≈ 0.049 %): ≤ 0.49 µV at |x| < 1 mV, ≤ 4.9 µV at |x| < 10 mV. Recorders
quantise at about 1 µV (PTB-XL: 16 bit, 1000 units/mV), so the store loses nothing a clinician or
a model can see; values beyond ±65504 mV would overflow and are refused.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qheart.data.leads import LEADS, N_LEADS, N_SAMPLES, SAMPLE_RATE_HZ

REQUIRED_COLUMNS = ("ecg_id", "patient_id", "report")
"""Every store's metadata has these: int64 ecg_id (PTB-XL ecg_id, MIMIC study_id, CODE exam_id),
patient_id (nullable Int64), report (str, "" if none). Corpus-specific columns follow."""

STORE_FORMAT = "qheart-signal-store"
STORE_VERSION = 1
STORE_DTYPE = np.float16
FLOAT16_RELATIVE_ERROR = 2.0**-11
"""Round-to-nearest float16 keeps |stored - x| <= |x| * 2**-11 for normal values (|x| >= 6.1e-5)."""
FLOAT16_ABSOLUTE_FLOOR = 2.0**-25
"""Below the normal range float16 is evenly spaced at 2**-24, so the error is at most half that."""

_CHUNK_RE = re.compile(r"^chunk-(\d{6})\.parquet$")
_TMP_MARK = ".tmp-"


class StoreError(RuntimeError):
    """A store folder that is missing, unfinished or inconsistent, or that cannot be written."""


def write_error(where: str | Path, exc: OSError) -> StoreError:
    """An OSError met while writing a store, as one line: a full disk says so and how to go on
    (finished chunks are kept, store.json is not written, so a re-run resumes)."""
    text = str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text or "quota" in text:
        return StoreError(
            f"{where}: disk full ({exc.strerror or text}) while writing "
            f"{exc.filename or 'the store'}; finished chunks are kept: free space and re-run the "
            "same command to complete it"
        )
    return StoreError(f"{where}: cannot write {exc.filename or 'the store'}: {exc.strerror or text}")


@dataclass(frozen=True)
class SkippedRecord:
    """A record left out of the store, with the reason (an ECGError message) and its error type."""

    record: str
    reason: str
    kind: str = ""


# ----------------------------------------------------------------------------- atomic file writes


def _atomic_write(path: Path, write: Any, *, durable: bool = False) -> None:
    """Call write(tmp_path), optionally fsync it, then move it over `path` in one atomic step."""
    tmp = path.with_name(f"{path.name}{_TMP_MARK}{os.getpid()}")
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class _PythonWrites:
    """np.save through Python's file.write: on a real file object numpy calls fwrite itself and
    a full disk only says "300000 requested and 118720 written" (no errno, no file name)."""

    def __init__(self, fh) -> None:
        self.write = fh.write


def _write_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(_PythonWrites(fh), array, allow_pickle=False)

    _atomic_write(path, write)


def write_text_atomic(path: Path, text: str, *, durable: bool = False) -> None:
    """Replace `path` with `text` in one atomic step (other writers of small state files use it)."""
    _atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), durable=durable)


def _npy_complete(path: Path) -> bool:
    """The .npy exists and holds every byte its header promises."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            expected = fh.tell() + int(np.prod(shape)) * dtype.itemsize
    except (OSError, ValueError):
        return False
    return path.stat().st_size == expected


def _parquet_complete(path: Path) -> bool:
    """A Parquet file ends with its footer and the 4-byte magic PAR1."""
    try:
        with open(path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return fh.read(4) == b"PAR1"
    except OSError:
        return False


def _chunk_stem(chunk: int) -> str:
    return f"chunk-{chunk:06d}"


# ----------------------------------------------------------------------------- metadata typing


def normalise_rows(rows: pd.DataFrame, source: str) -> pd.DataFrame:
    """Coerce the required columns to their contract types and put them first."""
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise StoreError(f"{source}: metadata rows lack required column(s) {missing}")
    out = rows.reset_index(drop=True).copy()
    try:
        out["ecg_id"] = out["ecg_id"].astype(np.int64)
        out["patient_id"] = pd.to_numeric(out["patient_id"]).astype("Int64")
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{source}: ecg_id/patient_id are not integers ({exc})") from exc
    out["report"] = out["report"].fillna("").astype(str)
    rest = [c for c in out.columns if c not in REQUIRED_COLUMNS]
    return out[[*REQUIRED_COLUMNS, *rest]]


def to_store_dtype(signals: np.ndarray, source: str) -> np.ndarray:
    """(n, 12, 5000) float → float16, refusing shapes off the contract and values float16 can't hold."""
    signals = np.asarray(signals)
    if signals.ndim != 3 or signals.shape[1:] != (N_LEADS, N_SAMPLES):
        raise StoreError(
            f"{source}: signals must be (n, {N_LEADS}, {N_SAMPLES}), got {signals.shape}"
        )
    with np.errstate(over="ignore"):
        half = signals.astype(STORE_DTYPE)
    if not np.isfinite(half).all():
        raise StoreError(f"{source}: signals hold NaN/inf or values beyond float16 range (±65504)")
    return half


@dataclass(frozen=True)
class EncodedRows:
    """A chunk's metadata rows already typed and serialised as Parquet bytes."""

    data: bytes
    n: int


def encode_rows(rows: pd.DataFrame, source: str) -> EncodedRows:
    """Type-check and serialise metadata rows. Parquet encoding costs more than writing the
    signals, so `prepare` calls this in its workers rather than in the single writer."""
    if len(rows):
        rows = normalise_rows(rows, source)
    else:
        rows = pd.DataFrame({"ecg_id": pd.Series([], dtype=np.int64)})
    return EncodedRows(rows.to_parquet(index=False), len(rows))


# ----------------------------------------------------------------------------- write side


class StoreWriter:
    """Write side: chunk by chunk, each chunk atomic; `finalize` writes store.json last."""

    def __init__(self, root: str | Path, *, source: str) -> None:
        self.root = Path(root)
        self.source = source
        self.shards = self.root / "shards"
        self.shards.mkdir(parents=True, exist_ok=True)
        # While chunks are being (re)written the folder is not a finished store: drop the marker
        # first so no reader opens a store whose chunks may be about to change.
        (self.root / "store.json").unlink(missing_ok=True)
        for leftover in self.shards.glob(f"*{_TMP_MARK}*"):
            leftover.unlink(missing_ok=True)
        for leftover in self.root.glob(f"*{_TMP_MARK}*"):
            leftover.unlink(missing_ok=True)

    def finished_chunks(self) -> set[int]:
        """Chunks already complete on disk (a resumed run skips them)."""
        done = set()
        for path in self.shards.iterdir():
            match = _CHUNK_RE.match(path.name)
            stem = path.name.removesuffix(".parquet")
            if (match and _parquet_complete(path) and _npy_complete(self.shards / f"{stem}.npy")
                    and (self.shards / f"{stem}.skipped.json").is_file()):
                done.add(int(match.group(1)))
        return done

    def write_chunk(
        self,
        chunk: int,
        signals: np.ndarray,
        rows: pd.DataFrame | EncodedRows,
        skipped: Sequence[SkippedRecord] = (),
    ) -> None:
        """Write one chunk atomically. signals: (n, 12, 5000) float; rows: n metadata rows
        (a DataFrame, or `encode_rows` output made in a worker process to spare the writer)."""
        where = f"{self.root} chunk {chunk}"
        if chunk < 0:
            raise StoreError(f"{where}: chunk numbers start at 0")
        half = to_store_dtype(signals, where)  # (n, 12, 5000) float16
        if not isinstance(rows, EncodedRows):
            rows = encode_rows(rows, where)
        if rows.n != len(half):
            raise StoreError(f"{where}: {len(half)} signals but {rows.n} metadata rows")
        stem = self.shards / _chunk_stem(chunk)
        try:
            # Order matters: the .parquet is the completion marker, so it goes last.
            (self.shards / f"{stem.name}.parquet").unlink(missing_ok=True)
            _write_npy(stem.with_suffix(".npy"), half)
            write_text_atomic(
                self.shards / f"{stem.name}.skipped.json",
                json.dumps([asdict(s) for s in skipped], indent=1),
            )
            _atomic_write(self.shards / f"{stem.name}.parquet",
                          lambda tmp: tmp.write_bytes(rows.data))
        except OSError as exc:
            raise write_error(where, exc) from exc

    def finalize(self, extra: dict | None = None) -> SignalStore:
        """Merge chunk metadata into metadata.parquet, then write store.json (atomic).

        Streams: chunk rows go to the Parquet file in blocks, so 800k records' metadata never
        sits in memory at once here (only their int64 ids, to refuse duplicates).
        """
        try:
            self._finalize(extra)
        except OSError as exc:
            raise write_error(self.root, exc) from exc
        return SignalStore(self.root)

    def _finalize(self, extra: dict | None) -> None:
        skipped, shard_info, ids = [], [], []
        with _MetadataSink(self.root / "metadata.parquet") as sink:
            for chunk in sorted(self.finished_chunks()):
                stem = self.shards / _chunk_stem(chunk)
                rows = pd.read_parquet(self.shards / f"{stem.name}.parquet")
                n = _npy_rows(stem.with_suffix(".npy"))
                if n != len(rows):
                    raise StoreError(f"{stem}: {n} signals but {len(rows)} metadata rows")
                shard_info.append({"chunk": chunk, "file": f"shards/{stem.name}.npy", "n": n})
                if n:
                    ids.append(rows["ecg_id"].to_numpy(np.int64))
                    sink.add(rows.assign(chunk=chunk, row_in_chunk=np.arange(n, dtype=np.int64)))
                skipped_path = self.shards / f"{stem.name}.skipped.json"
                for item in json.loads(skipped_path.read_text(encoding="utf-8")):
                    skipped.append({"chunk": chunk, **item})
            all_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
            unique, counts = np.unique(all_ids, return_counts=True)
            if (counts > 1).any():
                dups = unique[counts > 1][:5].tolist()
                raise StoreError(f"{self.root}: duplicate ecg_id(s) across chunks, e.g. {dups}")
        skipped_frame = pd.DataFrame(skipped, columns=["chunk", "record", "reason", "kind"])
        _atomic_write(self.root / "skipped.csv", lambda tmp: skipped_frame.to_csv(tmp, index=False),
                      durable=True)
        info = _store_info(self.source, len(all_ids), len(skipped_frame), shard_info)
        clash = sorted(set(extra or {}) & set(info))
        if clash:
            raise StoreError(f"{self.root}: extra keys {clash} would overwrite store.json fields")
        write_text_atomic(self.root / "store.json", json.dumps({**info, **(extra or {})}, indent=1),
                          durable=True)


def _npy_rows(path: Path) -> int:
    """Row count from the .npy header, without reading the data."""
    return int(np.load(path, mmap_mode="r").shape[0])


class _MetadataSink:
    """Append metadata rows to one Parquet file in blocks; the file appears only on success."""

    BLOCK_ROWS = 65_536

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f"{path.name}{_TMP_MARK}{os.getpid()}")
        self._pending: list[pd.DataFrame] = []
        self._n_pending = 0
        self._writer = None
        self._schema = None

    def add(self, rows: pd.DataFrame) -> None:
        self._pending.append(rows)
        self._n_pending += len(rows)
        if self._n_pending >= self.BLOCK_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._pending:
            block = normalise_rows(pd.concat(self._pending, ignore_index=True), str(self.path))
        elif self._writer is None:  # an empty store still gets a typed, empty table
            block = pd.DataFrame({c: pd.Series([], dtype=t) for c, t in (
                ("ecg_id", np.int64), ("patient_id", "Int64"), ("report", str),
                ("chunk", np.int64), ("row_in_chunk", np.int64))})
        else:
            return
        self._pending, self._n_pending = [], 0
        table = pa.Table.from_pandas(block, preserve_index=False)
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self.tmp, self._schema)
        elif not table.schema.equals(self._schema, check_metadata=False):
            # Only an all-missing column (Arrow type null) may take the first block's type; any
            # other difference (e.g. float vs text, which a cast would turn into "nan") is a bug.
            clash = [f"{f.name}: {f.type} vs {self._schema.field(f.name).type}"
                     for f in table.schema
                     if f.name in self._schema.names and f.type != pa.null()
                     and f.type != self._schema.field(f.name).type]
            if clash or table.schema.names != self._schema.names:
                raise StoreError(f"{self.path}: chunk metadata columns disagree between chunks "
                                 f"({clash or [table.schema.names, self._schema.names]})")
            table = table.cast(self._schema)
        self._writer.write_table(table)

    def __enter__(self) -> _MetadataSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._flush()
            if self._writer is not None:
                self._writer.close()
            if exc_type is None:
                with open(self.tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)


def _store_info(source: str, n: int, n_skipped: int, shards: list[dict]) -> dict:
    from qheart import __version__

    return {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "qheart_version": __version__,
        "source": source,
        "n_records": n,
        "n_skipped": n_skipped,
        "dtype": np.dtype(STORE_DTYPE).name,
        "units": "mV",
        "sample_rate_hz": SAMPLE_RATE_HZ,
        "leads": list(LEADS),
        "record_shape": [N_LEADS, N_SAMPLES],
        "shards": shards,
    }


# ----------------------------------------------------------------------------- read side


class SignalStore:
    """Read side: random access to canonical ECGs (float32 (12, 5000) on the way out).

    Shards are memory-mapped lazily and never pickled, so a store can be handed to DataLoader
    worker processes: each maps the files itself and the OS page cache is shared between them.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        info_path = self.root / "store.json"
        if not info_path.is_file():
            raise StoreError(
                f"{self.root}: no store.json — not a signal store, or its preparation has not "
                "finished (re-run the same `qheart data prepare` command to complete it)"
            )
        self.info: dict = json.loads(info_path.read_text(encoding="utf-8"))
        if self.info.get("format") != STORE_FORMAT or self.info.get("version") != STORE_VERSION:
            raise StoreError(f"{info_path}: not a version-{STORE_VERSION} {STORE_FORMAT}")
        self._metadata = pd.read_parquet(self.root / "metadata.parquet")
        if len(self._metadata) != self.info["n_records"]:
            raise StoreError(f"{self.root}: metadata.parquet rows disagree with store.json")
        self._files = {s["chunk"]: self.root / s["file"] for s in self.info["shards"]}
        missing = [str(p) for p in self._files.values() if not p.is_file()]
        if missing:
            raise StoreError(f"{self.root}: shard file(s) missing: {missing[:3]}")
        self._ids = self._metadata["ecg_id"].to_numpy(np.int64)
        self._chunk = self._metadata["chunk"].to_numpy(np.int64)
        self._row_in_chunk = self._metadata["row_in_chunk"].to_numpy(np.int64)
        self._index = pd.Index(self._ids)
        self._maps: dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_maps"} | {"_maps": {}}

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"SignalStore({str(self.root)!r}, n={len(self)}, source={self.info['source']!r})"

    @property
    def ids(self) -> np.ndarray:
        """int64 ecg_id per row, in store order."""
        return self._ids

    @property
    def metadata(self) -> pd.DataFrame:
        """One row per record, in store order (index = row number)."""
        return self._metadata

    @property
    def skipped(self) -> pd.DataFrame:
        """Records left out during preparation: chunk, record, reason, kind (error type)."""
        frame = pd.read_csv(self.root / "skipped.csv", dtype=str, keep_default_na=False)
        return frame.astype({"chunk": np.int64})

    def row_of(self, ecg_id: int) -> int:
        """Row number of an ecg_id; KeyError naming the store when absent."""
        try:
            return int(self._index.get_loc(ecg_id))
        except (KeyError, TypeError):
            raise KeyError(f"ecg_id {ecg_id!r} is not in the signal store {self.root}") from None

    def __contains__(self, ecg_id: object) -> bool:
        try:
            self.row_of(ecg_id)  # type: ignore[arg-type]
        except KeyError:
            return False
        return True

    def _shard(self, chunk: int) -> np.ndarray:
        if chunk not in self._maps:
            self._maps[chunk] = np.load(self._files[chunk], mmap_mode="r")  # (n, 12, 5000) f16
        return self._maps[chunk]

    def _check_rows(self, rows: np.ndarray) -> None:
        bad = rows[(rows < 0) | (rows >= len(self))]
        if bad.size:
            raise IndexError(f"row {int(bad[0])} out of range for {len(self)} rows in {self.root}")

    def signal(self, row: int) -> np.ndarray:
        """float32 (12, 5000) for one row."""
        self._check_rows(np.asarray([row]))
        shard = self._shard(int(self._chunk[row]))
        return np.asarray(shard[self._row_in_chunk[row]], dtype=np.float32)

    def signals(self, rows: Sequence[int]) -> np.ndarray:
        """float32 (B, 12, 5000) for many rows (any order, repeats allowed)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        self._check_rows(rows)
        out = np.empty((len(rows), N_LEADS, N_SAMPLES), dtype=np.float32)  # (B, 12, 5000)
        chunks = self._chunk[rows]
        for chunk in np.unique(chunks):
            where = np.flatnonzero(chunks == chunk)
            local = self._row_in_chunk[rows[where]]
            out[where] = self._shard(int(chunk))[local]  # one fancy read per shard
        return out
