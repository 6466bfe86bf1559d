"""Corpus → signal store, in parallel, resumable, skipping bad records with their reason.

Pipeline: the corpus lists its records as numbered chunks of metadata rows (deterministic order)
→ worker processes read and convert a chunk's signals (canonical (12, 5000), then float16)
→ the parent writes each finished chunk atomically with `StoreWriter` → `finalize` writes the
merged metadata and store.json.

- Parallel: a process pool (reading WFDB/HDF5 and resampling is CPU-bound, so threads would
  serialise on the GIL); only the parent writes, so no two processes touch the same file.
- Flat memory: at most `2 × workers` chunks are in flight; the corpus listing is a generator.
- Resumable: a chunk is either finished on disk (its .parquet exists) or absent; a re-run skips
  finished chunks and ends with the same store as an uninterrupted run. `prepare.json` pins the
  options that decide the chunk boundaries, so a resume with different ones is refused.
- Bad records: a record that cannot be read becomes a `SkippedRecord` (printed as one line, kept
  in skipped.csv); it never aborts the run. Every reader check applies (`qheart.data.readers`:
  strict WFDB headers, checksums, regular files, size limits, amplitudes), so a malformed record
  costs one line and never a hang.
- A full disk stops the run with one `StoreError` line; the chunks finished so far are kept, the
  store has no store.json (it refuses to open), and the same command resumes once there is space.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from qheart.data.corpora import CorpusError, get_corpus
from qheart.data.errors import ECGError
from qheart.data.leads import N_LEADS, N_SAMPLES
from qheart.data.store import (
    STORE_DTYPE,
    EncodedRows,
    SignalStore,
    SkippedRecord,
    StoreError,
    StoreWriter,
    encode_rows,
    write_error,
    write_text_atomic,
)

PLAN_FILE = "prepare.json"
DEFAULT_CHUNK_SIZE = 128
"""128 records = 15 MB of float16 per chunk: small enough to keep memory flat with many workers,
large enough that per-chunk file overhead stays negligible (6,250 shards for MIMIC-IV-ECG)."""
CHUNKS_PER_WORKER = 4
"""Small corpora get smaller chunks (down to 8 records) so that every worker has some to do."""
IN_FLIGHT_PER_WORKER = 2


class PrepareError(RuntimeError):
    """The output folder belongs to a different preparation, or the options are invalid."""


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class PrepareConfig:
    """One preparation run; `corpus`, `chunk_size` and `limit` fix the chunk boundaries."""

    corpus: str
    """Registered corpus name: ptbxl, mimic-iv-ecg or code15."""
    root: Path
    """The corpus folder as published."""
    out: Path
    """The store folder to create or resume."""
    workers: int = field(default_factory=default_workers)
    """Worker processes; 1 converts in the calling process (no pool)."""
    chunk_size: int | None = None
    """Records per chunk, the unit of parallel work and of resuming. None: the size the folder
    was started with when resuming, else `auto_chunk_size`."""
    limit: int | None = None
    """Only the first `limit` records in the corpus's order (for trials)."""
    verify_checksums: bool = True
    """Compare WFDB checksums with the data (False: store records whose checksums are wrong;
    pinned in prepare.json like the chunk options, so one store never mixes both)."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise PrepareError(f"workers must be ≥ 1, got {self.workers}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise PrepareError(f"chunk size must be ≥ 1, got {self.chunk_size}")
        if self.limit is not None and self.limit < 0:
            raise PrepareError(f"limit must be ≥ 0, got {self.limit}")



def auto_chunk_size(n_records: int, workers: int) -> int:
    """DEFAULT_CHUNK_SIZE, or smaller when the corpus has fewer than CHUNKS_PER_WORKER full
    chunks per worker. Recorded in prepare.json, so a resume keeps it whatever --workers says."""
    per_chunk = -(-n_records // (CHUNKS_PER_WORKER * workers))
    return max(8, min(DEFAULT_CHUNK_SIZE, per_chunk))


@dataclass(frozen=True)
class PrepareResult:
    """What a run did: the finished store and this run's own counts and timing."""

    store: SignalStore
    processed: int
    """Records read in this run (finished chunks of an earlier run are not re-read)."""
    resumed_chunks: int
    """Chunks found finished on disk and skipped."""
    skipped: list[SkippedRecord]
    """Records skipped in this run (all runs' skips are in `store.skipped`)."""
    elapsed_s: float

    @property
    def records_per_s(self) -> float:
        return self.processed / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass(frozen=True)
class ChunkResult:
    """A converted chunk on its way from a worker to the writer."""

    chunk: int
    signals: np.ndarray  # (n, 12, 5000) float16
    rows: EncodedRows
    skipped: list[SkippedRecord]


def _skip(record: str, root: Path, exc: BaseException) -> SkippedRecord:
    """The skip line names the record: typed errors already start with it, others get it added."""
    if isinstance(exc, ECGError | CorpusError):
        reason = str(exc)
    else:
        reason = f"{root / record}: {type(exc).__name__}: {exc}"
    return SkippedRecord(record=record, reason=" ".join(reason.split()), kind=type(exc).__name__)


def _to_store_record(signal: np.ndarray, source: Path) -> np.ndarray:
    """Canonical float32 (12, 5000) → float16, rejecting what the store cannot hold faithfully."""
    signal = np.asarray(signal)
    if signal.shape != (N_LEADS, N_SAMPLES):
        raise ValueError(f"{source}: reader returned shape {signal.shape}, not (12, 5000)")
    with np.errstate(over="ignore"):
        half = signal.astype(STORE_DTYPE)
    if not np.isfinite(half).all():
        raise ValueError(f"{source}: values beyond the float16 range (±65504 mV)")
    return half


def convert_chunk(corpus_name: str, root: Path, chunk: int, rows: pd.DataFrame,
                  verify_checksums: bool = True) -> ChunkResult:
    """Worker side: read one chunk's records; good ones become float16 rows, bad ones skips."""
    corpus = get_corpus(corpus_name)
    try:
        results = corpus.read(root, rows, verify_checksums=verify_checksums)
    except Exception as exc:  # a reader bug must cost this chunk's records, not the run
        results = [exc] * len(rows)
    keep, signals, skipped = [], [], []
    for position, result in enumerate(results):
        record = str(rows["record"].iat[position])
        if not isinstance(result, Exception):
            try:
                signals.append(_to_store_record(result, root / record))
                keep.append(position)
                continue
            except ValueError as exc:
                result = exc
        skipped.append(_skip(record, root, result))
    stacked = (np.stack(signals) if signals
               else np.zeros((0, N_LEADS, N_SAMPLES), STORE_DTYPE))  # (n, 12, 5000) float16
    kept = rows.iloc[keep].reset_index(drop=True)
    try:
        encoded = encode_rows(kept, f"{corpus_name} chunk {chunk}")
    except StoreError as exc:  # a corpus module bug (wrong column types): stop, don't skip
        raise RuntimeError(str(exc)) from exc
    return ChunkResult(chunk, stacked, encoded, skipped)


def _resolve_plan(config: PrepareConfig, n_records: int) -> dict:
    """The options that fix chunk boundaries, pinned in the output folder by the first run;
    a resume adopts them, and is refused if it asks for different ones."""
    path = config.out / PLAN_FILE
    started = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    if started is not None:
        started.setdefault("verify_checksums", True)  # folders started before the option existed
    chunk_size = config.chunk_size or (started["chunk_size"] if started
                                       else auto_chunk_size(n_records, config.workers))
    plan = {"corpus": config.corpus, "chunk_size": chunk_size, "limit": config.limit,
            "verify_checksums": config.verify_checksums}
    if started is not None:
        if started != plan:
            raise PrepareError(
                f"{config.out} was started with {started}, this run asks for {plan}; re-run with "
                "the same --chunk-size/--limit/--no-verify-checksums to resume, or choose a new "
                "--out"
            )
        return plan
    if config.out.exists() and any(config.out.iterdir()):
        raise PrepareError(f"{config.out} exists and is not a preparation folder; choose a new --out")
    try:
        config.out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(plan, indent=1))
    except OSError as exc:
        raise write_error(config.out, exc) from exc
    return plan


def _pool(workers: int) -> ProcessPoolExecutor:
    """Workers forked from a clean server process that has already imported the heavy modules.

    forkserver rather than fork: the parent runs a progress-bar thread, and forking a process
    with threads can copy a held lock into the child; spawn would re-import pandas/scipy per worker.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["qheart.data.prepare", "qheart.data.readers", "wfdb", "h5py",
                                    "qheart.data.corpora.ptbxl", "qheart.data.corpora.mimic_iv_ecg",
                                    "qheart.data.corpora.code15"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _expected_done(done: set[int], total: int, chunk_size: int) -> int:
    return sum(max(0, min(chunk_size, total - c * chunk_size)) for c in done)


def _converted(
    corpus_name: str, root: Path, chunks: Iterator[tuple[int, pd.DataFrame]], workers: int,
    verify_checksums: bool = True,
) -> Iterator[ChunkResult]:
    """Convert chunks in worker processes, yielding each as it finishes (any order), with at
    most IN_FLIGHT_PER_WORKER × workers chunks submitted, so memory stays flat."""
    if workers == 1:
        for chunk, rows in chunks:
            yield convert_chunk(corpus_name, root, chunk, rows, verify_checksums)
        return
    pool = _pool(workers)
    in_flight: set[Future] = set()
    try:
        for chunk, rows in chunks:
            in_flight.add(pool.submit(convert_chunk, corpus_name, root, chunk, rows,
                                      verify_checksums))
            while len(in_flight) >= IN_FLIGHT_PER_WORKER * workers:
                finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in finished)
        while in_flight:
            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            yield from (future.result() for future in finished)
    finally:  # also on Ctrl-C or an error: drop queued chunks, let running ones end
        pool.shutdown(wait=True, cancel_futures=True)


def prepare(
    config: PrepareConfig,
    *,
    progress: bool = True,
    on_skip: Callable[[SkippedRecord], None] | None = None,
) -> PrepareResult:
    """Prepare (or resume preparing) `config.corpus` into the store at `config.out`."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    corpus = get_corpus(config.corpus)
    root = Path(config.root)
    if not root.is_dir():
        raise CorpusError(f"{root}: corpus folder not found")
    total = corpus.count(root, config.limit)
    plan = _resolve_plan(config, total)
    writer = StoreWriter(config.out, source=corpus.name)
    done = writer.finished_chunks()
    todo = ((chunk, rows)
            for chunk, rows in enumerate(corpus.chunks(root, plan["chunk_size"], config.limit))
            if chunk not in done)
    skipped: list[SkippedRecord] = []
    processed = 0
    with tqdm(total=total, initial=_expected_done(done, total, plan["chunk_size"]), unit="rec",
              desc=f"prepare {corpus.name}", disable=not progress, file=sys.stderr,
              dynamic_ncols=True) as bar:
        for result in _converted(corpus.name, root, todo, config.workers,
                                 config.verify_checksums):
            writer.write_chunk(result.chunk, result.signals, result.rows, result.skipped)
            for item in result.skipped:
                skipped.append(item)
                if on_skip is None:
                    bar.write(f"skipped {item.reason}")
                else:
                    on_skip(item)
            processed += result.rows.n + len(result.skipped)
            bar.update(result.rows.n + len(result.skipped))
    store = writer.finalize({"corpus_root": str(root.resolve()), "prepare": plan})
    return PrepareResult(store=store, processed=processed, resumed_chunks=len(done),
                         skipped=skipped, elapsed_s=time.perf_counter() - start)


def describe(result: PrepareResult) -> dict:
    """Summary numbers of a run, for printing or logging."""
    store = result.store
    by_kind = store.skipped["kind"].value_counts().to_dict() if store.info["n_skipped"] else {}
    return {
        "store": str(store.root),
        "records_in_store": len(store),
        "skipped_in_store": int(store.info["n_skipped"]),
        "skipped_by_kind": by_kind,
        "processed_this_run": result.processed,
        "skipped_this_run": len(result.skipped),
        "chunks": len(store.info["shards"]),
        "chunk_size": store.info["prepare"]["chunk_size"],
        "resumed_chunks": result.resumed_chunks,
        "elapsed_s": round(result.elapsed_s, 2),
        "records_per_s": round(result.records_per_s, 1),
    }

