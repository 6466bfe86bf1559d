"""Build a report index: embed every corpus ECG, index the vectors in FAISS, keep the reports.

Layout of an index folder (written by `build_index`, read by `qheart.retrieval.search.Retriever`):

    manifest.json     written last: a folder without it never loads
    index.faiss       FAISS index over unit-norm embeddings (inner product = cosine), by default
                      behind a PCA-whitening + L2norm pre-transform fitted on this corpus
                      (qheart.retrieval.factory); queries pass through it inside FAISS
    reports.sqlite    one row per FAISS row: ecg_id, patient_id, report, findings, source

The build is resumable and atomic. Embeddings go chunk by chunk into a work folder beside the
output (`.<name>.build/emb-000000.npy`, each file moved into place with `os.replace`, so a chunk
file is whole or absent); a re-run with the same corpus and encoder embeds only the missing
chunks. The chunk files hold the unwhitened embeddings, so a resumed build may change the
index configuration (kind, whitening) freely. The FAISS index and report database are then written into a temporary folder that
becomes the output by one `os.replace`, manifest last. A build killed at any instant therefore
leaves either no output folder or the previous complete one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from qheart.data.store import SignalStore
from qheart.retrieval.factory import (
    IndexConfig,
    IndexPlan,
    create_index,
    plan_index,
    train_index,
)
from qheart.retrieval.reports import ReportStore, write_reports

Embedder = Callable[[np.ndarray], np.ndarray]
"""(B, 12, 5000) float32 ECGs → (B, d) float32 embeddings (normalised again here)."""

INDEX_FORMAT = "qheart-report-index"
INDEX_VERSION = 1
MANIFEST = "manifest.json"
INDEX_FILE = "index.faiss"
REPORTS_FILE = "reports.sqlite"
WORK_STATE = "build.json"


class IndexBuildError(RuntimeError):
    """A build that cannot start or finish (bad corpus, mismatched resume, existing output)."""


# ----------------------------------------------------------------------------- corpus


def corpus_table(
    stores: Sequence[SignalStore],
    splits: Sequence[str] | None = None,
    skip_empty_reports: bool = True,
) -> pd.DataFrame:
    """One row per ECG to index, in FAISS order: store, store_row, ecg_id, patient_id, report,
    findings (where the store has them) and source (the store folder)."""
    frames = []
    for i, store in enumerate(stores):
        meta = store.metadata
        keep = np.ones(len(meta), dtype=bool)
        if splits:
            if "split" not in meta:
                raise IndexBuildError(f"{store.root}: no `split` column to filter on {list(splits)}")
            keep &= meta["split"].isin(list(splits)).to_numpy()
        if skip_empty_reports:
            keep &= meta["report"].str.strip().ne("").to_numpy()
        rows = np.flatnonzero(keep)
        frame = pd.DataFrame({
            "store": i,
            "store_row": rows,
            "ecg_id": meta["ecg_id"].to_numpy(np.int64)[rows],
            "patient_id": meta["patient_id"].iloc[rows].to_numpy(),
            "report": meta["report"].iloc[rows].to_numpy(),
            "findings": meta["findings"].iloc[rows].to_numpy(object)
            if "findings" in meta else None,
            "source": str(store.root),
        })
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if table.empty:
        raise IndexBuildError(f"no ECG with a report to index in {[str(s.root) for s in stores]}")
    dups = table["ecg_id"][table["ecg_id"].duplicated()]
    if len(dups):
        raise IndexBuildError(f"ecg_id(s) appear in more than one store, e.g. {dups.head(5).tolist()}")
    return table


def _sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def encoder_fingerprint(checkpoint: str | Path) -> dict[str, str]:
    """Identify an encoder folder by content, so a resumed build never mixes two encoders."""
    checkpoint = Path(checkpoint)
    weights = checkpoint / "model.safetensors"
    if not weights.is_file():
        raise IndexBuildError(f"{checkpoint}: no model.safetensors (not an encoder folder)")
    return {"path": str(checkpoint.resolve()), "sha256": _sha256_file(weights)}


def _work_state(table: pd.DataFrame, stores: Sequence[SignalStore], encoder: dict,
                chunk_size: int) -> dict[str, Any]:
    """What the chunk files in a work folder depend on; a resume must match it exactly."""
    ids = np.ascontiguousarray(table["ecg_id"].to_numpy(np.int64))
    return {
        "sources": [{"root": str(s.root.resolve()),
                     "store_json_sha256": _sha256_file(s.root / "store.json")} for s in stores],
        "n": len(table),
        "ecg_ids_sha256": hashlib.sha256(ids.tobytes()).hexdigest(),
        "chunk_size": chunk_size,
        "encoder": encoder,
    }


# ----------------------------------------------------------------------------- embedding


def _chunk_path(work: Path, chunk: int) -> Path:
    return work / f"emb-{chunk:06d}.npy"


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def embed_rows(store: SignalStore, rows: np.ndarray, embed: Embedder, batch_size: int) -> np.ndarray:
    """Unit-norm embeddings of `rows` of `store`, read and embedded `batch_size` at a time."""
    parts = []
    for start in range(0, len(rows), batch_size):
        signals = store.signals(rows[start : start + batch_size])  # (B, 12, 5000)
        z = np.ascontiguousarray(embed(signals), dtype=np.float32)  # (B, d)
        if z.ndim != 2 or len(z) != len(signals):
            raise IndexBuildError(f"embed returned shape {z.shape} for {len(signals)} ECGs")
        if not np.isfinite(z).all():
            raise IndexBuildError(f"{store.root}: non-finite embedding near row {rows[start]}")
        faiss.normalize_L2(z)
        parts.append(z)
    return np.concatenate(parts)


def _embed_chunk(stores: Sequence[SignalStore], part: pd.DataFrame, embed: Embedder,
                 batch_size: int) -> np.ndarray:
    """Embeddings of one chunk of the corpus table (it may span two stores), in table order."""
    pieces = [embed_rows(stores[int(i)], group["store_row"].to_numpy(np.int64), embed, batch_size)
              for i, group in part.groupby("store", sort=True)]
    return np.concatenate(pieces)  # (n_chunk, d): groups are contiguous and in store order


def embed_corpus(
    stores: Sequence[SignalStore],
    table: pd.DataFrame,
    embed: Embedder,
    work: Path,
    *,
    chunk_size: int,
    batch_size: int,
    progress: bool = True,
) -> int:
    """Write one embedding file per chunk into `work`, skipping chunks already there.
    Returns the number of chunks."""
    n_chunks = -(-len(table) // chunk_size)
    todo = [c for c in range(n_chunks) if not _chunk_path(work, c).is_file()]
    done_rows = len(table) - sum(min(chunk_size, len(table) - c * chunk_size) for c in todo)
    bar = tqdm(total=len(table), initial=done_rows, desc="embed", unit="ecg", disable=not progress)
    for chunk in todo:
        part = table.iloc[chunk * chunk_size : (chunk + 1) * chunk_size]
        _save_npy_atomic(_chunk_path(work, chunk), _embed_chunk(stores, part, embed, batch_size))
        bar.update(len(part))
    bar.close()
    return n_chunks


# ----------------------------------------------------------------------------- FAISS


def _chunks(work: Path, n_chunks: int) -> list[np.ndarray]:
    return [np.load(_chunk_path(work, c), mmap_mode="r") for c in range(n_chunks)]


def _training_sample(chunks: list[np.ndarray], size: int, seed: int = 0) -> np.ndarray:
    """`size` embeddings drawn without replacement across chunks (deterministic)."""
    sizes = np.array([len(c) for c in chunks])
    rows = np.sort(np.random.default_rng(seed).choice(sizes.sum(), size=size, replace=False))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    which = np.searchsorted(starts, rows, side="right") - 1
    return np.concatenate([np.asarray(chunks[c][rows[which == c] - starts[c]], dtype=np.float32)
                           for c in np.unique(which)])


def assemble_index(work: Path, n_chunks: int, plan: IndexPlan, config: IndexConfig,
                   progress: bool = True) -> faiss.Index:
    """Fit the whitening and train the index (where the plan needs it), then fill it from the
    chunk files."""
    chunks = _chunks(work, n_chunks)
    dim = chunks[0].shape[1]
    index = create_index(plan, dim, config)
    if plan.train_size:
        try:
            train_index(index, plan, config, _training_sample(chunks, plan.train_size))
        except ValueError as error:  # e.g. embeddings without variance to whiten
            raise IndexBuildError(f"{work}: cannot train the index: {error}") from error
    for emb in tqdm(chunks, desc="index", unit="chunk", disable=not progress):
        index.add(np.ascontiguousarray(emb, dtype=np.float32))  # (n_chunk, d)
    return index


# ----------------------------------------------------------------------------- output folder


def _write_folder(tmp: Path, index: faiss.Index, table: pd.DataFrame, manifest: dict) -> None:
    tmp.mkdir(parents=True)
    faiss.write_index(index, str(tmp / INDEX_FILE))
    write_reports(tmp / REPORTS_FILE, table)
    if len(ReportStore(tmp / REPORTS_FILE)) != index.ntotal:
        raise IndexBuildError(f"{tmp}: report rows disagree with the {index.ntotal} FAISS rows")
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")  # last


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the finished temp folder to `out` (an existing index is swapped out, then removed)."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        if not overwrite:
            raise IndexBuildError(f"{out}: already exists (pass overwrite=True / --overwrite)")
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _prepare_work(work: Path, state: dict, restart: bool) -> None:
    """Create or validate the work folder; a folder from another corpus/encoder is refused."""
    state_path = work / WORK_STATE
    if restart and work.exists():
        shutil.rmtree(work)
    if state_path.is_file():
        previous = json.loads(state_path.read_text(encoding="utf-8"))
        if previous != state:
            raise IndexBuildError(
                f"{work}: holds embeddings of a different corpus, encoder or chunk size; "
                "pass restart=True / --restart to discard them")
    else:
        work.mkdir(parents=True, exist_ok=True)
        for stale in work.glob("emb-*.npy"):
            stale.unlink()  # no state file: these chunks cannot be trusted
        state_path.write_text(json.dumps(state, indent=1), encoding="utf-8")
    for leftover in work.glob("*.tmp-*"):
        leftover.unlink()


def build_index(
    stores: Sequence[SignalStore],
    embed: Embedder,
    out: str | Path,
    *,
    config: IndexConfig | None = None,
    encoder: dict[str, str] | None = None,
    splits: Sequence[str] | None = None,
    chunk_size: int = 4096,
    batch_size: int = 64,
    overwrite: bool = False,
    restart: bool = False,
    progress: bool = True,
) -> Path:
    """Index every ECG with a report in `stores` (optionally only `splits`) into folder `out`.

    `encoder` identifies the embedder (see `encoder_fingerprint`); it is recorded in the manifest
    and guards resumption. Returns `out`.
    """
    config = config or IndexConfig()
    out = Path(out)
    if out.exists() and not overwrite:
        raise IndexBuildError(f"{out}: already exists (pass overwrite=True / --overwrite)")
    if chunk_size < 1 or batch_size < 1:
        raise IndexBuildError("chunk_size and batch_size must be ≥ 1")
    encoder = encoder or {}
    started = time.perf_counter()
    table = corpus_table(stores, splits)
    work = out.with_name(f".{out.name}.build")
    _prepare_work(work, _work_state(table, stores, encoder, chunk_size), restart)
    n_chunks = embed_corpus(stores, table, embed, work, chunk_size=chunk_size,
                            batch_size=batch_size, progress=progress)
    dim = int(np.load(_chunk_path(work, 0), mmap_mode="r").shape[1])
    plan = plan_index(config, len(table), dim)
    index = assemble_index(work, n_chunks, plan, config, progress)
    manifest = {
        "format": INDEX_FORMAT, "version": INDEX_VERSION, "qheart_version": _version(),
        "build_id": uuid.uuid4().hex, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "n": int(index.ntotal), "dim": dim, "metric": "inner_product (cosine on unit vectors"
        + (", PCA-whitened then L2-normalised)" if plan.whiten else ")"),
        "plan": plan.to_dict(), "config": asdict(config), "encoder": encoder,
        "sources": [str(s.root) for s in stores], "splits": list(splits) if splits else None,
        "files": {"index": INDEX_FILE, "reports": REPORTS_FILE},
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    for stale in out.parent.glob(f".{out.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a build killed while writing
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        _write_folder(tmp, index, table, manifest)
        _publish(tmp, out, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(work)
    return out


def _version() -> str:
    from qheart import __version__

    return __version__
