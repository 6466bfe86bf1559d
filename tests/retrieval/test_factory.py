"""Index choice by corpus size, exact vs approximate agreement on clustered data, and the
whitening pre-transform (fitted, regularised, applied to queries, inside every kind)."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from qheart.retrieval.factory import (
    IndexConfig,
    create_index,
    plan_index,
    train_index,
    whitening,
)


def test_auto_is_exact_up_to_the_threshold_then_approximate() -> None:
    config = IndexConfig(flat_max_vectors=1000, max_memory_gb=1.0)
    assert plan_index(config, 1000, 768).kind == "flat"
    ivf = plan_index(config, 100_000, 768)  # 0.3 GB of float32 vectors
    assert ivf.kind == "ivf" and ivf.factory.startswith("IVF") and ivf.train_size > 0
    assert plan_index(config, 1_000_000, 768).kind == "ivfpq"  # 3 GB > 1 GB budget


def test_whitening_plan_needs_enough_vectors_and_caps_its_sample() -> None:
    config = IndexConfig(whiten_train_max=50_000)
    flat = plan_index(config, 10_000, 64)
    assert flat.whiten and flat.kind == "flat"
    assert flat.train_size == 10_000 and flat.index_train_size == 0
    assert flat.description == "PCAW,L2norm,Flat"
    big = plan_index(IndexConfig(index_type="ivf", nlist=100, whiten_train_max=50_000), 10**6, 64)
    assert big.train_size == 50_000 and big.index_train_size == 6400
    assert not plan_index(config, 4 * 64 - 1, 64).whiten, "too few vectors to estimate whitening"
    assert plan_index(config, 4 * 64, 64).whiten
    assert not plan_index(IndexConfig(whiten=False), 10_000, 64).whiten
    with pytest.raises(ValueError, match="whiten_epsilon"):
        IndexConfig(whiten_epsilon=0.0)


def test_override_and_validation() -> None:
    assert plan_index(IndexConfig(index_type="hnsw"), 10, 8).kind == "hnsw"
    with pytest.raises(ValueError, match="index_type"):
        IndexConfig(index_type="annoy")
    with pytest.raises(ValueError, match="divide"):
        plan_index(IndexConfig(index_type="ivfpq", pq_bytes=5), 10_000, 768)


def clustered(n: int, dim: int, n_clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Base vectors in clusters, and queries that are slightly moved base vectors: every query
    has one clear nearest neighbour (its source) among many close cluster mates."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim))
    base = centres[rng.integers(n_clusters, size=n)] + 0.3 * rng.standard_normal((n, dim))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = base[rng.choice(n, size=200, replace=False)] + 0.01 * rng.standard_normal((200, dim))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return base.astype(np.float32), queries.astype(np.float32)


def built(config: IndexConfig, base: np.ndarray) -> faiss.Index:
    """An index of `base` as `qheart index build` makes it (train sample: the first rows)."""
    plan = plan_index(config, len(base), base.shape[1])
    index = create_index(plan, base.shape[1], config)
    if plan.train_size:
        train_index(index, plan, config, base[: plan.train_size])
    index.add(base)
    return index


@pytest.mark.parametrize("whiten", [True, False])
@pytest.mark.parametrize("kind", ["ivf", "hnsw", "ivfpq"])
def test_exact_and_approximate_agree_on_top1(kind: str, whiten: bool) -> None:
    base, queries = clustered(4000, 32, 20, seed=1)
    config = IndexConfig(index_type=kind, nlist=32, nprobe=4, whiten=whiten)
    exact = built(IndexConfig(index_type="flat", whiten=whiten), base)
    approx = built(config, base)
    assert (whitening(exact) is not None) == (whitening(approx) is not None) == whiten
    _, want = exact.search(queries, 3)
    _, got = approx.search(queries, 3)
    np.testing.assert_array_equal(got[:, 0], want[:, 0])


def test_whitened_scores_are_cosines_of_whitened_vectors() -> None:
    # Correlated, off-centre vectors: whitening visibly changes the geometry.
    rng = np.random.default_rng(3)
    base = (rng.standard_normal((500, 8)) @ rng.standard_normal((8, 8)) + 10.0).astype(np.float32)
    faiss.normalize_L2(base)
    index = built(IndexConfig(), base)
    pca = whitening(index)
    assert pca is not None and pca.epsilon > 0 and pca.eigen_power == -0.5
    queries = base[:5] + 0.05 * rng.standard_normal((5, 8)).astype(np.float32)
    # Whitening by hand, to check FAISS applies it to queries and stored vectors alike.
    mean = base.mean(axis=0)
    eigval, eigvec = np.linalg.eigh(np.cov((base - mean).T, bias=True))
    eigval = np.maximum(eigval, 0)
    w = eigvec / np.sqrt(eigval + 1e-3 * eigval.mean())  # (d, d), epsilon relative to the mean

    def whiten(x: np.ndarray) -> np.ndarray:
        y = (x - mean) @ w
        return y / np.linalg.norm(y, axis=1, keepdims=True)

    want = whiten(queries) @ whiten(base).T  # (5, 500)
    scores, rows = index.search(queries, 4)
    np.testing.assert_allclose(scores, np.take_along_axis(want, rows, axis=1), atol=2e-4)
    np.testing.assert_array_equal(rows[:, 0], np.argmax(want, axis=1))
    # The shared offset packs plain cosines together; whitened ones spread over [-1, 1].
    assert (base[:5] @ base.T).min() > 0.5 and (whiten(base[:5]) @ whiten(base).T).min() < -0.5


def test_whitening_a_rank_deficient_corpus_stays_finite() -> None:
    # 300 vectors spanning 4 of 32 dimensions: 28 eigenvalues are 0 or slightly negative,
    # which FAISS's plain PCAW turns into inf/NaN weights.
    rng = np.random.default_rng(4)
    base = (rng.standard_normal((300, 4)) @ rng.standard_normal((4, 32))).astype(np.float32)
    faiss.normalize_L2(base)
    index = built(IndexConfig(), base)
    assert np.isfinite(faiss.vector_to_array(whitening(index).A)).all()
    off_subspace = rng.standard_normal((3, 32)).astype(np.float32)
    scores, rows = index.search(np.concatenate([base[:3], off_subspace]), 2)
    assert np.isfinite(scores).all() and (rows >= 0).all()
    np.testing.assert_array_equal(rows[:3, 0], [0, 1, 2])


def test_identical_embeddings_cannot_be_whitened() -> None:
    config = IndexConfig()
    plan = plan_index(config, 100, 8)
    index = create_index(plan, 8, config)
    with pytest.raises(ValueError, match="no variance"):
        train_index(index, plan, config, np.ones((100, 8), dtype=np.float32))


def test_ivfpq_refines_inside_the_whitening() -> None:
    config = IndexConfig(index_type="ivfpq", nlist=16)
    index = create_index(plan_index(config, 20_000, 32), 32, config)  # keep: it owns the rest
    assert isinstance(index, faiss.IndexPreTransform)
    assert isinstance(faiss.downcast_index(index.index), faiss.IndexRefine), \
        "re-ranking must compare whitened vectors, not raw ones"
