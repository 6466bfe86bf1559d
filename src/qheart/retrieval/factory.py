"""Which FAISS index a corpus gets, and with which search parameters.

All indexes use inner product on L2-normalised vectors, so a score is a cosine similarity.
By default the vectors are first whitened (`IndexConfig.whiten`): a FAISS `IndexPreTransform`
applies PCA whitening (`PCAMatrix`, eigen_power -0.5, fitted on the corpus at build time) and
L2-normalisation to every vector it stores and to every query, so search stays one
`index.search` call. Why: an encoder's embeddings may share one dominant direction; on the demo
encoder (64-d) every cosine score was 0.9999, and on the 200 synthetic test ECGs
(`qheart index evaluate`, top 3 of 5,600) whitening raised the share of the query's findings
covered from 0.47 to 0.66 and the mean Jaccard from 0.34 to 0.52 (see `train_index` for the
regularisation). Whitening adds a d × d matrix to the index (2.4 MB at 768-d) and, at build
time, holds its fitting sample in RAM (`whiten_train_max`).
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
import numpy as np

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
    whiten: bool = True
    """PCA-whiten (then L2-normalise) vectors and queries inside the index, fitted on the corpus."""
    whiten_epsilon: float = 1e-3
    """Whitening regulariser, relative to the mean eigenvalue: directions with less variance than
    this are damped instead of amplified (noise, and the null space of a small corpus). On the
    demo 1e-5…1e-3 gave the same top-1 finding coverage (0.67–0.68), 1e-2 0.65, 0 NaNs."""
    whiten_train_max: int = 100_000
    """At most this many corpus vectors fit the whitening (100k × 768 float32: 0.3 GB in RAM)."""
    whiten_min_per_dim: int = 4
    """Whiten only when the fitting sample has ≥ this many vectors per dimension; below that the
    covariance is too noisy to invert and the index stays unwhitened (recorded in the plan)."""

    def __post_init__(self) -> None:
        if self.index_type not in INDEX_TYPES:
            raise ValueError(f"index_type {self.index_type!r} is not one of {INDEX_TYPES}")
        for name in ("flat_max_vectors", "nprobe", "hnsw_m", "ef_construction", "ef_search",
                     "refine_k_factor", "train_points_per_list", "whiten_train_max",
                     "whiten_min_per_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.nlist is not None and self.nlist < 1:
            raise ValueError(f"nlist must be ≥ 1, got {self.nlist}")
        if not self.whiten_epsilon > 0:
            raise ValueError(f"whiten_epsilon must be > 0, got {self.whiten_epsilon}")


@dataclass
class IndexPlan:
    """A resolved choice: the concrete kind, FAISS factory string and search-time parameters."""

    kind: str
    factory: str
    """The FAISS factory string of the index that stores the (whitened) vectors."""
    search_params: dict[str, int] = field(default_factory=dict)
    train_size: int = 0
    """Vectors to draw for training (0: nothing to train)."""
    whiten: bool = False
    """Whether `factory` sits behind a PCA-whitening + L2norm pre-transform."""
    index_train_size: int = 0
    """Of the training vectors, how many train the index itself (IVF k-means, PQ; 0: none);
    whitening fits on all `train_size`."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def description(self) -> str:
        """The whole pipeline as one factory-style string, e.g. `PCAW64,L2norm,Flat`."""
        return f"PCAW,L2norm,{self.factory}" if self.whiten else self.factory


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
    plan = _plan_core(config, n, dim)
    plan.index_train_size = plan.train_size
    whiten_size = min(n, config.whiten_train_max)
    if config.whiten and whiten_size >= config.whiten_min_per_dim * dim:
        plan.whiten = True
        plan.train_size = max(plan.train_size, whiten_size)
    return plan


def _plan_core(config: IndexConfig, n: int, dim: int) -> IndexPlan:
    """The index that stores the vectors (whitened or not: it has the same size either way)."""
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
    """An empty FAISS index for `plan` (inner-product metric), search parameters set; train it
    with `train_index`."""
    index = faiss.index_factory(dim, plan.factory, faiss.METRIC_INNER_PRODUCT)
    if plan.kind == "hnsw":
        faiss.downcast_index(index).hnsw.efConstruction = config.ef_construction
    if plan.kind == "ivfpq":
        # Polysemous codes serve Hamming-distance pre-filtering, which search never uses;
        # training them takes most of the build time.
        faiss.downcast_index(faiss.extract_index_ivf(index)).do_polysemous_training = False
    if plan.whiten:
        # Built by hand rather than as "PCAW…,L2norm,<factory>": the factory parser would put a
        # Refine stage outside the pre-transform, re-ranking on unwhitened vectors.
        index = faiss.IndexPreTransform(faiss.NormalizationTransform(dim, 2.0), index)
        index.prepend_transform(faiss.PCAMatrix(dim, dim, -0.5, False))
    apply_search_params(index, plan.search_params)
    return index


def whitening(index: faiss.Index) -> faiss.PCAMatrix | None:
    """The PCA-whitening transform of an index made by `create_index`, or None (unwhitened,
    e.g. an index built before whitening existed)."""
    index = faiss.downcast_index(index)
    if not isinstance(index, faiss.IndexPreTransform):
        return None
    for i in range(index.chain.size()):
        transform = faiss.downcast_VectorTransform(index.chain.at(i))
        if isinstance(transform, faiss.PCAMatrix):
            return transform
    return None


def train_index(index: faiss.Index, plan: IndexPlan, config: IndexConfig,
                sample: np.ndarray, seed: int = 0) -> None:
    """Fit the whitening on `sample` (train_size, d), then train the index behind it.

    FAISS whitening scales eigendirection i by (λ_i + epsilon)^-0.5. Its default epsilon of 0
    turns the zero (or, numerically, slightly negative) eigenvalues of any rank-deficient
    corpus into inf/NaN, and a fixed epsilon would depend on the corpus size (FAISS's
    eigenvalues are not divided by n); so the eigenvalues are clipped at 0 and epsilon is set
    to `whiten_epsilon` × their mean before the matrix is prepared again."""
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    pca = whitening(index) if plan.whiten else None
    if pca is not None and not pca.is_trained:
        pca.train(sample)
        eigenvalues = np.maximum(faiss.vector_to_array(pca.eigenvalues), 0.0).astype(np.float32)
        if not eigenvalues.sum() > 0:
            raise ValueError("the embeddings to whiten are all identical (no variance); "
                             "build with whiten=False")
        faiss.copy_array_to_vector(eigenvalues, pca.eigenvalues)
        pca.epsilon = float(config.whiten_epsilon * eigenvalues.mean())
        pca.prepare_Ab()
        if not np.isfinite(faiss.vector_to_array(pca.A)).all():
            raise ValueError("whitening produced non-finite weights")
    rest = sample
    if len(rest) > plan.index_train_size:
        keep = np.random.default_rng(seed).choice(len(rest), plan.index_train_size, replace=False)
        rest = rest[np.sort(keep)]
    if len(rest):
        index.train(rest)  # an IndexPreTransform trains its inner index on transformed vectors
    elif not index.is_trained:
        index.train(sample[:1])  # whitened Flat: the wrapper only needs marking as trained


def apply_search_params(index: faiss.Index, params: dict[str, int], fetch: int = 0) -> None:
    """Set nprobe / efSearch / refine k_factor on `index` (efSearch at least `fetch`)."""
    space = faiss.ParameterSpace()
    for name, value in params.items():
        space.set_index_parameter(index, name, max(value, fetch) if name == "efSearch" else value)
