"""Precomputed top-k reports for ECG-QA questions, and the findings-agreement evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qheart.data.ecgqa import load_split
from qheart.data.store import SignalStore
from qheart.retrieval.evaluate import agreement, findings_agreement
from qheart.retrieval.index import build_index
from qheart.retrieval.precompute import RetrievedReports, precompute_reports
from qheart.retrieval.search import Retriever

from .fakes import clustered_codes, fake_embed, write_ecgqa, write_store


@pytest.fixture
def retriever(clustered_store: SignalStore, tmp_path: Path) -> Retriever:
    return Retriever.load(build_index([clustered_store], fake_embed, tmp_path / "idx",
                                      progress=False))


def test_cache_round_trip_never_holds_the_ecgs_own_report(
        clustered_store: SignalStore, retriever: Retriever, tmp_path: Path) -> None:
    # Questions on every ECG of the store (two on 1000), one on an ECG the store lacks.
    questions = [(i, 1000 + i) for i in range(40)] + [(40, 1000), (41, 5555)]
    write_ecgqa(tmp_path / "qa", "train", questions)
    samples = load_split(tmp_path / "qa", "paraphrased", "train").samples
    cache = precompute_reports(retriever, samples, clustered_store, fake_embed, batch_size=7,
                               progress=False)
    path = cache.save(tmp_path / "cache" / "train.json")
    loaded = RetrievedReports.load(path, build_id=retriever.build_id)
    assert loaded.info["n_samples"] == 41 and loaded.info["n_samples_missing_ecg"] == 1
    assert len(loaded.by_ecg) == 40
    for sample_id, ecg_id in questions[:41]:
        reports = loaded.for_sample(sample_id)
        assert len(reports) == 3
        assert f"report of ecg {ecg_id}" not in reports
        hit_ids = [h.ecg_id for h in loaded.by_ecg[ecg_id]]
        assert {(h - 1000) // 8 for h in hit_ids} == {(ecg_id - 1000) // 8}  # cluster mates
    assert loaded.for_sample(40) == loaded.for_ecg(1000)
    with pytest.raises(KeyError):
        loaded.for_sample(41)
    with pytest.raises(ValueError, match="index build"):
        RetrievedReports.load(path, build_id="another-build")


def test_agreement_counts_pairs() -> None:
    a, b, c = frozenset({"x"}), frozenset({"x", "y"}), frozenset({"z"})
    result = agreement([a, b], [[a, b], [c, c]])
    assert result.pairs == 4
    assert result.same_findings == pytest.approx(1 / 4)
    assert result.jaccard == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert result.query_coverage == pytest.approx((1 + 1 + 0 + 0) / 4)


def test_retrieved_reports_share_findings_more_than_random(tmp_path: Path) -> None:
    codes, labels = clustered_codes(4, 10)
    findings = [[f"finding {label}", "sinus rhythm"] for label in labels]
    splits = ["test" if i % 5 == 0 else "train" for i in range(40)]
    store = write_store(tmp_path / "s", codes, findings=findings, splits=splits)
    retriever = Retriever.load(build_index([store], fake_embed, tmp_path / "idx", progress=False))
    result = findings_agreement(retriever, store, fake_embed, split="test", k=3)
    assert result.n_queries == 8
    assert result.retrieved.same_findings == 1.0
    assert result.random.same_findings < 0.6
    rows = np.flatnonzero(np.array(splits) == "test")
    assert result.retrieved.pairs == 3 * len(rows)
