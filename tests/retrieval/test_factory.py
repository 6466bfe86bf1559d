"""Index choice by corpus size, and exact vs approximate agreement on clustered data."""

from __future__ import annotations

import numpy as np
import pytest

from qheart.retrieval.factory import IndexConfig, create_index, plan_index


def test_auto_is_exact_up_to_the_threshold_then_approximate() -> None:
    config = IndexConfig(flat_max_vectors=1000, max_memory_gb=1.0)
    assert plan_index(config, 1000, 768).kind == "flat"
    ivf = plan_index(config, 100_000, 768)  # 0.3 GB of float32 vectors
    assert ivf.kind == "ivf" and ivf.factory.startswith("IVF") and ivf.train_size > 0
    assert plan_index(config, 1_000_000, 768).kind == "ivfpq"  # 3 GB > 1 GB budget


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


@pytest.mark.parametrize("kind", ["ivf", "hnsw", "ivfpq"])
def test_exact_and_approximate_agree_on_top1(kind: str) -> None:
    base, queries = clustered(4000, 32, 20, seed=1)
    config = IndexConfig(index_type=kind, nlist=32, nprobe=4)
    exact = create_index(plan_index(IndexConfig(index_type="flat"), len(base), 32), 32, config)
    plan = plan_index(config, len(base), 32)
    approx = create_index(plan, 32, config)
    if plan.train_size:
        approx.train(base[: plan.train_size])
    for index in (exact, approx):
        index.add(base)
    _, want = exact.search(queries, 3)
    _, got = approx.search(queries, 3)
    np.testing.assert_array_equal(got[:, 0], want[:, 0])
