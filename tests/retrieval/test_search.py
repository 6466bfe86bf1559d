"""Search: cosine scores, and leakage control (own record never, own patient on request)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qheart.data.store import SignalStore
from qheart.retrieval.factory import IndexConfig
from qheart.retrieval.index import build_index
from qheart.retrieval.search import Retriever

from .fakes import clustered_codes, dominant_direction_codes, fake_embed, write_store


@pytest.fixture
def retriever(clustered_store: SignalStore, tmp_path: Path) -> Retriever:
    return Retriever.load(build_index([clustered_store], fake_embed, tmp_path / "idx",
                                      progress=False))


def own_embeddings(store: SignalStore) -> np.ndarray:
    return fake_embed(store.signals(np.arange(len(store))))  # (n, DIM)


def test_without_exclusion_a_record_finds_itself_first(clustered_store, retriever) -> None:
    hits = retriever.search(own_embeddings(clustered_store), k=3)
    assert [h[0].ecg_id for h in hits] == clustered_store.ids.tolist()
    assert all(h[0].score == pytest.approx(1.0, abs=1e-5) for h in hits)


def test_a_record_never_retrieves_its_own_report(clustered_store, retriever) -> None:
    ids = clustered_store.ids.tolist()
    hits = retriever.search(own_embeddings(clustered_store), k=3, exclude_ecg_ids=ids)
    for ecg_id, found in zip(ids, hits, strict=True):
        assert len(found) == 3
        assert ecg_id not in [h.ecg_id for h in found]
        assert f"report of ecg {ecg_id}" not in [h.report for h in found]
        # the neighbours are its cluster mates (clusters are 8 consecutive ids), best first
        assert {(h.ecg_id - 1000) // 8 for h in found} == {(ecg_id - 1000) // 8}
        scores = [h.score for h in found]
        assert scores == sorted(scores, reverse=True) and scores[0] < 0.9999


def test_patient_exclusion_refetches_past_many_records_of_one_patient(tmp_path: Path) -> None:
    # One patient owns 20 near-identical ECGs (more than k + margin); a second cluster is far off.
    codes, _ = clustered_codes(2, 20, noise=0.01)
    patients = np.array([7] * 20 + list(range(100, 120)))
    store = write_store(tmp_path / "s", codes, patients=patients)
    retriever = Retriever.load(build_index([store], fake_embed, tmp_path / "idx", progress=False))
    query = own_embeddings(store)[:1]
    same_patient = retriever.search(query, k=3, exclude_ecg_ids=[1000])[0]
    assert {h.patient_id for h in same_patient} == {7}
    other = retriever.search(query, k=3, exclude_ecg_ids=[1000], exclude_patient_ids=[7])[0]
    assert len(other) == 3 and all(h.patient_id != 7 for h in other)
    assert all(h.ecg_id >= 1020 for h in other)


def test_unknown_patients_are_never_excluded(tmp_path: Path) -> None:
    codes, _ = clustered_codes(1, 6)
    store = write_store(tmp_path / "s", codes, patients=np.array([None] * 6))
    retriever = Retriever.load(build_index([store], fake_embed, tmp_path / "idx", progress=False))
    hits = retriever.search(own_embeddings(store)[:1], k=5, exclude_ecg_ids=[1000],
                            exclude_patient_ids=[None])[0]
    assert len(hits) == 5 and all(h.patient_id is None for h in hits)


def test_k_beyond_the_corpus_returns_what_there_is(clustered_store, retriever) -> None:
    hits = retriever.search(own_embeddings(clustered_store)[:2], k=100, exclude_ecg_ids=[1000, 1001])
    assert [len(h) for h in hits] == [39, 39]


def test_exclusion_lists_must_match_the_queries(clustered_store, retriever) -> None:
    with pytest.raises(ValueError, match="one per query"):
        retriever.search(own_embeddings(clustered_store)[:2], exclude_ecg_ids=[1000])
    with pytest.raises(ValueError, match="dims"):
        retriever.search(np.ones((1, 5), dtype=np.float32))


def test_approximate_index_also_excludes_own_record(clustered_store, tmp_path: Path) -> None:
    out = build_index([clustered_store], fake_embed, tmp_path / "ivf", progress=False,
                      config=IndexConfig(index_type="ivf", nlist=5, nprobe=2))
    retriever = Retriever.load(out)
    ids = clustered_store.ids.tolist()
    hits = retriever.search(own_embeddings(clustered_store), k=3, exclude_ecg_ids=ids)
    assert all(len(f) == 3 and i not in [h.ecg_id for h in f] for i, f in zip(ids, hits, strict=True))


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_whitening_finds_cluster_mates_that_plain_cosine_misses(tmp_path: Path, kind: str) -> None:
    # A shared direction plus a large nuisance coordinate: plain cosine ranks by the nuisance.
    codes, labels = dominant_direction_codes(12, 8)
    store = write_store(tmp_path / "s", codes)
    queries = own_embeddings(store)
    ids = store.ids.tolist()

    def top1_cluster_rate(whiten: bool) -> float:
        config = IndexConfig(index_type=kind, whiten=whiten, nlist=4, nprobe=4)
        retriever = Retriever.load(build_index([store], fake_embed, tmp_path / f"{kind}{whiten}",
                                               config=config, progress=False))
        assert retriever.whitened == whiten
        hits = retriever.search(queries, k=1, exclude_ecg_ids=ids)
        return float(np.mean([labels[h[0].ecg_id - 1000] == label
                              for h, label in zip(hits, labels, strict=True)]))

    plain, whitened = top1_cluster_rate(False), top1_cluster_rate(True)
    assert whitened >= 0.95
    assert plain <= 0.5
