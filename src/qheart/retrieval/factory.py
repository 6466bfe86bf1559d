"""Which FAISS index a corpus gets, and with which search parameters.

All indexes use inner product on L2-normalised vectors, so a score is the cosine similarity.
`auto` keeps exact search (`IndexFlatIP`) up to `flat_max_vectors`: it is the only kind that is
right on every corpus. Measured at 1M × 768 on 2 shared CPU cores (benchmarks/bench_retrieval.py):
3.1 GB, ~25 ms per query in batches (fine for `qheart index precompute`), ~0.4 s for one query
alone. Above the threshold `auto` picks an inverted-file index (`ivf`: same memory, ~8 ms per
query alone, recall@3 1.0 on clustered vectors but 0.11 on uniformly random ones, where no
index can prune), or, when the flat vectors would not fit `max_memory_gb`, IVF with
product-quantised codes re-ranked by 8-bit scalar codes (`ivfpq`). HNSW is available on request; during development it
took 2 min to build 100k × 768 on 2 cores (IVF: 20 s) and reached recall@3 0.70 at efSearch
1024 on random vectors, no better than IVF.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import faiss

INDEX_TYPES = ("auto", "flat", "ivf", "hnsw", "ivfpq")


@dataclass(frozen=True)
class IndexConfig:
    """How to index a corpus of unit-norm embeddings."""

    index_type: str = "auto"
    """auto | flat | ivf | hnsw | ivfpq (auto: flat up to `flat_max_vectors`, then ivf/ivfpq)."""
    flat_max_vectors: int = 1_000_000
    """auto keeps exact search up to this many vectors (paper scale, 800k MIMIC ECGs, stays exact)."""
    max_memory_gb: float = 16.0
    """auto switches from ivf to ivfpq when the float32 vectors alone would exceed this."""
    nlist: int | None = None
    """IVF lists; None → 2·√n, clipped to [1, n/39] so k-means has ≥ 39 points per centroid."""
    nprobe: int = 64
    """IVF lists visited per query (recall/latency trade-off, settable again at load time)."""
    hnsw_m: int = 32
    """HNSW graph degree."""
    ef_construction: int = 80
    """HNSW build-time beam width."""
    ef_search: int = 256
    """HNSW search-time beam width (raised to the fetch size when a search asks for more)."""
    pq_bytes: int | None = None
    """ivfpq: bytes per vector for the PQ codes; None → d/4 (192 for 768-d: 2 bits a dimension)."""
    refine_k_factor: int = 64
    """ivfpq: candidates re-ranked with the finer codes, as a multiple of k."""
    train_points_per_list: int = 64
    """k-means training sample size per IVF list (capped at n)."""

    def __post_init__(self) -> None:
        if self.index_type not in INDEX_TYPES:
            raise ValueError(f"index_type {self.index_type!r} is not one of {INDEX_TYPES}")
        for name in ("flat_max_vectors", "nprobe", "hnsw_m", "ef_construction", "ef_search",
                     "refine_k_factor", "train_points_per_list"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.nlist is not None and self.nlist < 1:
            raise ValueError(f"nlist must be ≥ 1, got {self.nlist}")


@dataclass
class IndexPlan:
    """A resolved choice: the concrete kind, FAISS factory string and search-time parameters."""

    kind: str
    factory: str
    search_params: dict[str, int] = field(default_factory=dict)
    train_size: int = 0
    """Vectors to train on (0: the index needs no training)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_kind(config: IndexConfig, n: int, dim: int) -> str:
    """The concrete index kind for `n` vectors of `dim` floats."""
    if config.index_type != "auto":
        return config.index_type
    if n <= config.flat_max_vectors:
        return "flat"
    flat_gb = n * dim * 4 / 1e9
    return "ivf" if flat_gb <= config.max_memory_gb else "ivfpq"


def default_nlist(n: int) -> int:
    """2·√n lists: below FAISS's 4–16·√n guideline for large GPU indexes, because k-means
    training costs grow with nlist² and a 1M-vector build must finish on 2 CPU cores; with
    nprobe=64 a query still scans only ~3 % of the vectors."""
    return max(1, min(int(2 * math.sqrt(n)), n // 39))


def plan_index(config: IndexConfig, n: int, dim: int) -> IndexPlan:
    """Resolve `config` for a corpus of `n` vectors of `dim` floats."""
    kind = resolve_kind(config, n, dim)
    if kind == "flat":
        return IndexPlan(kind, "Flat")
    if kind == "hnsw":
        return IndexPlan(kind, f"HNSW{config.hnsw_m},Flat", {"efSearch": config.ef_search})
    nlist = config.nlist or default_nlist(n)
    if nlist > n:
        raise ValueError(f"nlist={nlist} exceeds the corpus size {n}")
    train_size = min(n, nlist * config.train_points_per_list)
    params = {"nprobe": min(config.nprobe, nlist)}
    if kind == "ivf":
        return IndexPlan(kind, f"IVF{nlist},Flat", params, train_size)
    pq_bytes = config.pq_bytes or max(1, dim // 4)
    # PQ trains 256 centroids per sub-vector: k-means wants ≥ 39 points each.
    train_size = min(n, max(train_size, 256 * 39))
    if dim % pq_bytes:
        raise ValueError(f"pq_bytes={pq_bytes} must divide the embedding size {dim}")
    params["k_factor_rf"] = config.refine_k_factor
    # Re-rank with 8-bit scalar codes rather than float32: a quarter of the memory, and their
    # error (~1e-3 in cosine) is far below the PQ error the re-ranking corrects.
    return IndexPlan(kind, f"IVF{nlist},PQ{pq_bytes},Refine(SQ8)", params, train_size)


def create_index(plan: IndexPlan, dim: int, config: IndexConfig) -> faiss.Index:
    """An empty FAISS index for `plan` (inner-product metric), search parameters set."""
    index = faiss.index_factory(dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
    if plan.kind == "hnsw":
        faiss.downcast_index(index).hnsw.efConstruction = config.ef_construction
    if plan.kind == "ivfpq":
        # Polysemous codes serve Hamming-distance pre-filtering, which search never uses;
        # training them takes most of the build time.
        faiss.downcast_index(faiss.extract_index_ivf(index)).do_polysemous_training = False
    apply_search_params(index, plan.search_params)
    return index


def apply_search_params(index: faiss.Index, params: dict[str, int], fetch: int = 0) -> None:
    """Set nprobe / efSearch / refine k_factor on `index` (efSearch at least `fetch`)."""
    space = faiss.ParameterSpace()
    for name, value in params.items():
        space.set_index_parameter(index, name, max(value, fetch) if name == "efSearch" else value)
