"""Building an index: row ↔ report consistency, resumable and atomic builds."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import faiss
import numpy as np
import pytest

from qheart.data.store import SignalStore
from qheart.retrieval.factory import IndexConfig, whitening
from qheart.retrieval.index import IndexBuildError, build_index
from qheart.retrieval.search import IndexLoadError, Retriever

from .fakes import (
    CountingEmbed,
    clustered_codes,
    dominant_direction_codes,
    fake_embed,
    write_store,
)

CHUNK = 8  # 40 ECGs → 5 resumable chunks


def test_sqlite_rows_match_faiss_rows(clustered_store: SignalStore, tmp_path: Path) -> None:
    out = build_index([clustered_store], fake_embed, tmp_path / "idx", chunk_size=CHUNK,
                      batch_size=3, progress=False)
    retriever = Retriever.load(out)
    index = faiss.downcast_index(retriever.index)
    assert isinstance(index, faiss.IndexFlatIP)
    with sqlite3.connect(out / "reports.sqlite") as db:
        table = db.execute("SELECT row, ecg_id, report FROM reports ORDER BY row").fetchall()
    assert [r for r, _, _ in table] == list(range(len(clustered_store)))
    for row, ecg_id, report in table:
        store_row = clustered_store.row_of(ecg_id)
        expected = fake_embed(clustered_store.signals([store_row]))[0]
        expected /= np.linalg.norm(expected)
        np.testing.assert_allclose(index.reconstruct(row), expected, atol=1e-6)
        assert report == clustered_store.metadata["report"][store_row]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n"] == 40 and manifest["plan"]["kind"] == "flat"
    assert not (tmp_path / ".idx.build").exists(), "work folder is removed after success"


def test_rows_without_report_and_other_splits_are_left_out(tmp_path: Path) -> None:
    codes, _ = clustered_codes(2, 5)
    reports = [f"r{i}" if i % 3 else "  " for i in range(10)]
    splits = ["train"] * 6 + ["test"] * 4
    store = write_store(tmp_path / "s", codes, reports=reports, splits=splits)
    out = build_index([store], fake_embed, tmp_path / "idx", splits=["train"], progress=False)
    ids = Retriever.load(out).reports.ecg_ids
    assert sorted(ids - 1000) == [1, 2, 4, 5]


def test_two_stores_index_in_order_and_refuse_shared_ids(tmp_path: Path) -> None:
    codes, _ = clustered_codes(2, 5)
    a = write_store(tmp_path / "a", codes[:5], first_id=1)
    b = write_store(tmp_path / "b", codes[5:], first_id=100)
    out = build_index([a, b], fake_embed, tmp_path / "idx", chunk_size=3, progress=False)
    assert Retriever.load(out).reports.ecg_ids.tolist() == [1, 2, 3, 4, 5, 100, 101, 102, 103, 104]
    clash = write_store(tmp_path / "c", codes[:2], first_id=1)
    with pytest.raises(IndexBuildError, match="more than one store"):
        build_index([a, clash], fake_embed, tmp_path / "idx2", progress=False)


def test_failed_build_leaves_nothing_loadable_and_resumes(
        clustered_store: SignalStore, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    # batch_size == chunk size: one embed call per chunk, so call 3 is the 4th chunk.
    failing = CountingEmbed(fail_at_call=3)
    with pytest.raises(RuntimeError, match="injected"):
        build_index([clustered_store], failing, out, chunk_size=CHUNK, batch_size=CHUNK,
                    progress=False)
    assert not out.exists()
    with pytest.raises(IndexLoadError, match=r"manifest\.json"):
        Retriever.load(out)
    assert len(list((tmp_path / ".idx.build").glob("emb-*.npy"))) == 3

    resumed = CountingEmbed()
    build_index([clustered_store], resumed, out, chunk_size=CHUNK, batch_size=CHUNK,
                progress=False)
    assert resumed.ecgs == 40 - 3 * CHUNK, "only the unfinished chunks are embedded again"
    fresh = build_index([clustered_store], fake_embed, tmp_path / "fresh", chunk_size=CHUNK,
                        progress=False)
    got, want = Retriever.load(out), Retriever.load(fresh)
    np.testing.assert_array_equal(got.reports.ecg_ids, want.reports.ecg_ids)
    np.testing.assert_array_equal(faiss.rev_swig_ptr(got.index.get_xb(), 40 * 16),
                                  faiss.rev_swig_ptr(want.index.get_xb(), 40 * 16))


def test_crash_while_writing_the_folder_leaves_no_index(
        clustered_store: SignalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import qheart.retrieval.index as index_module

    def broken_publish(tmp: Path, out: Path, overwrite: bool) -> None:
        assert (tmp / "manifest.json").is_file()  # fully written, but not yet in place
        raise OSError("disk vanished")

    monkeypatch.setattr(index_module, "_publish", broken_publish)
    with pytest.raises(OSError, match="disk vanished"):
        build_index([clustered_store], fake_embed, tmp_path / "idx", progress=False)
    assert not (tmp_path / "idx").exists()
    assert not list(tmp_path.glob(".idx.tmp-*")), "the temporary folder is cleaned up"


def test_sigkill_midway_then_rerun_completes(clustered_store: SignalStore, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    script = textwrap.dedent(f"""
        from qheart.data.store import SignalStore
        from qheart.retrieval.index import build_index
        from tests.retrieval.fakes import CountingEmbed
        build_index([SignalStore({str(clustered_store.root)!r})],
                    CountingEmbed(fail_at_call=2, kill=True), {str(out)!r},
                    chunk_size={CHUNK}, batch_size={CHUNK}, progress=False)
    """)
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                          timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    assert not out.exists()
    with pytest.raises(IndexLoadError):
        Retriever.load(out)
    resumed = CountingEmbed()
    build_index([clustered_store], resumed, out, chunk_size=CHUNK, batch_size=CHUNK,
                progress=False)
    assert resumed.ecgs == 40 - 2 * CHUNK
    assert len(Retriever.load(out)) == 40


def test_resume_with_another_encoder_is_refused(clustered_store: SignalStore,
                                                tmp_path: Path) -> None:
    out = tmp_path / "idx"
    with pytest.raises(RuntimeError):
        build_index([clustered_store], CountingEmbed(fail_at_call=1), out, chunk_size=CHUNK,
                    batch_size=CHUNK, encoder={"sha256": "a"}, progress=False)
    with pytest.raises(IndexBuildError, match="different corpus, encoder"):
        build_index([clustered_store], fake_embed, out, chunk_size=CHUNK,
                    encoder={"sha256": "b"}, progress=False)
    restarted = CountingEmbed()
    build_index([clustered_store], restarted, out, chunk_size=CHUNK, batch_size=CHUNK,
                encoder={"sha256": "b"}, restart=True, progress=False)
    assert restarted.ecgs == 40


def test_existing_index_needs_overwrite(clustered_store: SignalStore, tmp_path: Path) -> None:
    out = build_index([clustered_store], fake_embed, tmp_path / "idx", progress=False)
    first = Retriever.load(out).build_id
    with pytest.raises(IndexBuildError, match="already exists"):
        build_index([clustered_store], fake_embed, out, progress=False)
    build_index([clustered_store], fake_embed, out, overwrite=True,
                config=IndexConfig(index_type="ivf", nlist=2, nprobe=2), progress=False)
    again = Retriever.load(out)
    assert again.build_id != first and again.manifest["plan"]["kind"] == "ivf"
    assert not list(tmp_path.glob(".idx.*")), "no temporary or old folders remain"


def inner_vectors(retriever: Retriever) -> np.ndarray:
    """The vectors a whitened index stores (behind its pre-transform), (n, d)."""
    inner = faiss.downcast_index(faiss.downcast_index(retriever.index).index)
    return faiss.rev_swig_ptr(inner.get_xb(), len(retriever) * retriever.dim).reshape(
        len(retriever), retriever.dim).copy()


def test_whitening_is_fitted_recorded_and_survives_save_load(tmp_path: Path) -> None:
    codes, _ = dominant_direction_codes(12, 8)  # 96 ECGs ≥ 4 × 16 dims: enough to whiten
    store = write_store(tmp_path / "s", codes)
    out = build_index([store], fake_embed, tmp_path / "idx", chunk_size=40, progress=False)
    retriever = Retriever.load(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert retriever.whitened and manifest["plan"]["whiten"] and manifest["config"]["whiten"]
    assert "whitened" in manifest["metric"]
    pca = whitening(retriever.index)
    assert pca.epsilon > 0 and pca.eigen_power == -0.5, "the regulariser is saved with the index"
    # Stored rows are the whitened, re-normalised embeddings, in corpus order.
    z = fake_embed(store.signals(np.arange(len(store))))
    faiss.normalize_L2(z)
    want = pca.apply(z)
    faiss.normalize_L2(want)
    np.testing.assert_allclose(inner_vectors(retriever), want, atol=1e-5)
    # Whitened coordinates are decorrelated with equal variance (up to the regulariser).
    cov = np.cov(pca.apply(z).T)
    top = np.sort(np.linalg.eigvalsh(cov))[-8:]
    assert top.max() / top.min() < 1.5


def test_unwhitened_build_matches_an_index_from_before_whitening(
        clustered_store: SignalStore, tmp_path: Path) -> None:
    # An index written before whitening existed: no pre-transform, no whiten keys anywhere.
    out = build_index([clustered_store], fake_embed, tmp_path / "idx", progress=False,
                      config=IndexConfig(whiten=False))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["whiten"] is False
    del manifest["config"]["whiten"], manifest["plan"]["whiten"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    retriever = Retriever.load(out)
    assert not retriever.whitened and retriever.describe()["whiten"] is False
    assert isinstance(faiss.downcast_index(retriever.index), faiss.IndexFlatIP)
    hits = retriever.search(fake_embed(clustered_store.signals([0, 9])), k=2,
                            exclude_ecg_ids=[1000, 1009])
    assert [[(h.ecg_id - 1000) // 8 for h in found] for found in hits] == [[0, 0], [1, 1]]


def test_resumed_whitened_build_equals_a_fresh_one(tmp_path: Path) -> None:
    codes, _ = dominant_direction_codes(12, 8)
    store = write_store(tmp_path / "s", codes)
    out = tmp_path / "idx"
    with pytest.raises(RuntimeError, match="injected"):
        build_index([store], CountingEmbed(fail_at_call=2), out, chunk_size=32, batch_size=32,
                    progress=False)
    resumed = CountingEmbed()
    build_index([store], resumed, out, chunk_size=32, batch_size=32, progress=False)
    assert resumed.ecgs == 96 - 2 * 32
    fresh = build_index([store], fake_embed, tmp_path / "fresh", chunk_size=32, progress=False)
    got, want = Retriever.load(out), Retriever.load(fresh)
    assert got.whitened and want.whitened
    np.testing.assert_allclose(faiss.vector_to_array(whitening(got.index).A),
                               faiss.vector_to_array(whitening(want.index).A), atol=1e-6)
    np.testing.assert_allclose(inner_vectors(got), inner_vectors(want), atol=1e-6)
