"""The signal store: atomic chunks, resumable writes, random access, float16 precision."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qheart.data import store as store_module
from qheart.data.store import (
    FLOAT16_ABSOLUTE_FLOOR,
    FLOAT16_RELATIVE_ERROR,
    REQUIRED_COLUMNS,
    SignalStore,
    SkippedRecord,
    StoreError,
    StoreWriter,
)


def _signals(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 0.5, size=(n, 12, 5000)).astype(np.float32)  # (n, 12, 5000) mV


def _rows(ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame({
        "ecg_id": ids,
        "patient_id": [float(i * 10) if i != 30 else np.nan for i in ids],  # PTB-XL writes 15709.0
        "report": [f"report {i}" if i % 3 else None for i in ids],
        "strat_fold": [i % 10 + 1 for i in ids],
    })


def _write_two_chunks(root: Path) -> tuple[np.ndarray, np.ndarray]:
    writer = StoreWriter(root, source="test")
    a, b = _signals(3, 0), _signals(2, 1)
    writer.write_chunk(1, b, _rows([40, 50]))
    writer.write_chunk(0, a, _rows([10, 20, 30]), [SkippedRecord("rec/15", "rec/15: flat lead V3", "FlatLeadError")])
    writer.finalize({"corpus_root": "/data/ptbxl"})
    return a, b


def test_round_trip_order_ids_metadata_and_signals(tmp_path: Path) -> None:
    a, b = _write_two_chunks(tmp_path)
    store = SignalStore(tmp_path)
    assert len(store) == 5
    assert store.ids.tolist() == [10, 20, 30, 40, 50]  # chunk order, not write order
    meta = store.metadata
    assert list(meta.columns[:3]) == list(REQUIRED_COLUMNS)
    assert meta["ecg_id"].dtype == np.int64 and meta["patient_id"].dtype == "Int64"
    assert meta["patient_id"].isna().tolist() == [False, False, True, False, False]
    assert meta["report"].tolist() == ["report 10", "report 20", "", "report 40", "report 50"]
    assert meta["strat_fold"].tolist() == [1, 1, 1, 1, 1]
    assert store.row_of(40) == 3 and 40 in store and 41 not in store and "x" not in store
    np.testing.assert_allclose(store.signal(4), b[1], atol=1e-3)
    batch = store.signals([4, 0, 4, 2])  # any order, repeats allowed
    assert batch.shape == (4, 12, 5000) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, np.stack([b[1], a[0], b[1], a[2]]), atol=1e-3)
    assert store.info["corpus_root"] == "/data/ptbxl" and store.info["dtype"] == "float16"
    assert store.skipped.to_dict("records") == [
        {"chunk": 0, "record": "rec/15", "reason": "rec/15: flat lead V3", "kind": "FlatLeadError"}
    ]


def test_missing_ids_and_rows_raise_naming_the_store(tmp_path: Path) -> None:
    _write_two_chunks(tmp_path)
    store = SignalStore(tmp_path)
    with pytest.raises(KeyError, match=r"99.*signal store"):
        store.row_of(99)
    with pytest.raises(IndexError, match="row 5 out of range"):
        store.signals([0, 5])


def test_shards_are_memory_mapped_float16_and_never_pickled(tmp_path: Path) -> None:
    _write_two_chunks(tmp_path)
    shard = np.load(tmp_path / "shards" / "chunk-000000.npy", mmap_mode="r")
    assert isinstance(shard, np.memmap) and shard.dtype == np.float16 and shard.shape == (3, 12, 5000)
    store = SignalStore(tmp_path)
    store.signal(0)
    clone = pickle.loads(pickle.dumps(store))
    assert len(pickle.dumps(store)) < 100_000  # the mapped shards stay out of the pickle
    np.testing.assert_array_equal(clone.signal(0), store.signal(0))


def test_unfinished_store_never_opens(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path, source="test")
    writer.write_chunk(0, _signals(1, 0), _rows([1]))
    with pytest.raises(StoreError, match="not finished"):
        SignalStore(tmp_path)
    writer.finalize()
    SignalStore(tmp_path)
    StoreWriter(tmp_path, source="test")  # re-opening for writing unmarks the finished store
    with pytest.raises(StoreError, match=r"store\.json"):
        SignalStore(tmp_path)


def test_chunk_without_its_parquet_marker_is_not_finished(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path, source="test")
    writer.write_chunk(0, _signals(1, 0), _rows([1]))
    writer.write_chunk(1, _signals(1, 1), _rows([2]))
    # A kill after the .npy but before the .parquet, plus a half-written temporary file.
    (tmp_path / "shards" / "chunk-000001.parquet").unlink()
    (tmp_path / "shards" / "chunk-000002.npy.tmp-123").write_bytes(b"\x93NUMPY half")
    writer = StoreWriter(tmp_path, source="test")
    assert writer.finished_chunks() == {0}
    assert not list((tmp_path / "shards").glob("*.tmp-*"))
    store = writer.finalize()
    assert store.ids.tolist() == [1]  # the unmarked chunk is not read as data


def test_chunks_cut_short_by_a_power_loss_are_not_finished(tmp_path: Path) -> None:
    """Chunk files are not fsynced: a crash may leave them empty or short, never counted done."""
    writer = StoreWriter(tmp_path, source="test")
    for chunk in range(4):
        writer.write_chunk(chunk, _signals(2, chunk), _rows([2 * chunk, 2 * chunk + 1]))
    shards = tmp_path / "shards"
    npy = shards / "chunk-000001.npy"
    npy.write_bytes(npy.read_bytes()[:-1])  # one byte short
    (shards / "chunk-000002.npy").write_bytes(b"")  # allocated, never written
    parquet = shards / "chunk-000003.parquet"
    parquet.write_bytes(parquet.read_bytes()[:-8])  # footer lost
    assert StoreWriter(tmp_path, source="test").finished_chunks() == {0}


def test_rewriting_a_chunk_replaces_it(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path, source="test")
    writer.write_chunk(0, _signals(2, 0), _rows([1, 2]))
    writer.write_chunk(0, _signals(1, 3), _rows([7]))
    assert writer.finalize().ids.tolist() == [7]


def test_chunk_with_only_skipped_records(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path, source="test")
    writer.write_chunk(0, np.zeros((0, 12, 5000), np.float32), pd.DataFrame(),
                       [SkippedRecord("a", "a: too short"), SkippedRecord("b", "b: NaN")])
    writer.write_chunk(1, _signals(1, 0), _rows([5]))
    assert writer.finished_chunks() == {0, 1}
    store = writer.finalize()
    assert store.ids.tolist() == [5] and store.info["n_skipped"] == 2


def test_empty_store_opens(tmp_path: Path) -> None:
    store = StoreWriter(tmp_path, source="test").finalize()
    assert len(store) == 0 and list(store.metadata.columns[:3]) == list(REQUIRED_COLUMNS)


@pytest.mark.parametrize(
    ("signals", "rows", "message"),
    [
        (np.zeros((1, 12, 4000)), _rows([1]), r"must be \(n, 12, 5000\)"),
        (np.zeros((2, 12, 5000)), _rows([1]), "2 signals but 1 metadata rows"),
        (np.full((1, 12, 5000), np.nan), _rows([1]), "NaN/inf"),
        (np.full((1, 12, 5000), 1e6), _rows([1]), "float16 range"),
        (np.zeros((1, 12, 5000)), _rows([1]).drop(columns="report"), r"lack.*\['report'\]"),
        (np.zeros((1, 12, 5000)), _rows([1]).assign(ecg_id="x"), "not integers"),
    ],
)
def test_bad_chunks_are_refused(signals: np.ndarray, rows: pd.DataFrame, message: str,
                                tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path, source="test")
    with pytest.raises(StoreError, match=message):
        writer.write_chunk(0, signals, rows)
    assert writer.finished_chunks() == set()


def test_metadata_is_merged_in_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module._MetadataSink, "BLOCK_ROWS", 2)  # several Parquet blocks
    writer = StoreWriter(tmp_path, source="test")
    for chunk in range(4):
        ids = [10 * chunk + i for i in range(3)]
        writer.write_chunk(chunk, _signals(3, chunk), _rows(ids))
    meta = writer.finalize().metadata
    assert meta["ecg_id"].tolist() == [0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32]
    assert meta["patient_id"].dtype == "Int64" and meta["row_in_chunk"].tolist()[:4] == [0, 1, 2, 0]


def test_chunks_whose_columns_disagree_are_refused(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module._MetadataSink, "BLOCK_ROWS", 1)
    writer = StoreWriter(tmp_path, source="test")
    writer.write_chunk(0, _signals(1, 0), _rows([1]))
    writer.write_chunk(1, _signals(1, 1), _rows([2]).assign(strat_fold=None))  # all missing: ok
    assert writer.finalize().metadata["strat_fold"].isna().tolist() == [False, True]
    writer = StoreWriter(tmp_path, source="test")
    writer.write_chunk(2, _signals(1, 2), _rows([3]).assign(strat_fold="ten"))
    with pytest.raises(StoreError, match="disagree between chunks"):
        writer.finalize()
    assert not (tmp_path / "store.json").exists() and not list(tmp_path.glob("*.tmp-*"))


def test_duplicate_ids_across_chunks_are_refused(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path, source="test")
    writer.write_chunk(0, _signals(1, 0), _rows([1]))
    writer.write_chunk(1, _signals(1, 1), _rows([1]))
    with pytest.raises(StoreError, match="duplicate ecg_id"):
        writer.finalize()
    assert not (tmp_path / "store.json").exists()


def test_float16_round_trip_error_bound(tmp_path: Path) -> None:
    """16-bit recordings at 1000 units/mV (PTB-XL, MIMIC) survive float16 within 2**-11 relative.

    Every representable 16-bit sample value ±32.767 mV is stored once and read back.
    """
    adu = np.arange(-32768, 32768, dtype=np.int64)
    mv = (adu / 1000.0).astype(np.float32)
    padded = np.resize(mv, 12 * 5000 * 2).reshape(2, 12, 5000)  # every value, in whole records
    writer = StoreWriter(tmp_path, source="test")
    writer.write_chunk(0, padded, _rows([1, 2]))
    back = writer.finalize().signals([0, 1])
    err = np.abs(back.astype(np.float64) - padded.astype(np.float64))
    bound = np.maximum(np.abs(padded) * FLOAT16_RELATIVE_ERROR, FLOAT16_ABSOLUTE_FLOOR)
    assert (err <= bound).all()
    # In absolute terms: at most 0.49 µV below 1 mV, at most 4.9 µV below 10 mV, 16 µV overall;
    # half an ADC step is 0.5 µV, so below 1 mV float16 is as fine as the recorder itself.
    assert err[np.abs(padded) < 1].max() <= 0.49e-3
    assert err[np.abs(padded) < 10].max() <= 4.9e-3
    assert err.max() <= 16e-3
    assert err.max() > 0  # float16 is lossy: the bound above is what the store promises


def test_store_json_is_last_and_describes_the_layout(tmp_path: Path) -> None:
    _write_two_chunks(tmp_path)
    info = json.loads((tmp_path / "store.json").read_text())
    assert info["n_records"] == 5 and info["n_skipped"] == 1
    assert [s["n"] for s in info["shards"]] == [3, 2]
    assert info["leads"][3] == "aVR" and info["units"] == "mV" and info["sample_rate_hz"] == 500
    with pytest.raises(StoreError, match="overwrite"):
        StoreWriter(tmp_path, source="test").finalize({"n_records": 1})
