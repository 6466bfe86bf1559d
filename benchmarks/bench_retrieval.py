"""Exact vs approximate FAISS search at corpus scale: build time, memory, latency, recall@3.

    nice -n 10 .venv/bin/python benchmarks/bench_retrieval.py --n 1000000 --dim 768 --queries 1000

Two corpora of unit vectors, generated chunk by chunk (never two full copies in memory):
- random: uniform on the sphere. The hardest case for any index: in 768 dimensions a query's
  nearest neighbours are barely nearer than the rest (cosine ≈ 0.17 vs a spread of ≈ 0.036), so
  no partition or graph can prune without missing them.
- clustered: `--clusters` centres, points = normalise(centre + noise) with cosine ≈ `--cluster-cos`
  to their centre; queries are fresh draws from the same mixture. Closer to real ECG embeddings,
  which group by rhythm and morphology.

Indexes are made by the product's own factory (qheart.retrieval.factory), so "ivf" here is the
approximate configuration `qheart index build` uses: `auto` picks it above 1M vectors, and
`--index-type ivf` picks it at any size. "mem GB" is the index as FAISS serialises it (all of
it stays in RAM for search); "RSS+ GB" is resident-set growth while building. Speed-ups are
exact time / approximate time, for batched search and for one query at a time. Like the
product, every index (the exact one too) whitens by default, fitted on a corpus sample of up to
`IndexConfig.whiten_train_max` vectors; `--no-whiten` measures plain cosine indexes.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import faiss
import numpy as np

from qheart.retrieval.factory import (
    IndexConfig,
    apply_search_params,
    create_index,
    plan_index,
    train_index,
)

CHUNK = 50_000


def index_gb(index: faiss.Index) -> float:
    """Size of the index as FAISS writes it: vectors/codes, ids, centroids, graph — all of which
    search keeps in memory."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "index.faiss")
        faiss.write_index(index, path)
        return os.path.getsize(path) / 1e9


def rss_gb() -> float:
    """Current resident set size of this process (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * 4096 / 1e9


@dataclass(frozen=True)
class Corpus:
    """A reproducible stream of unit vectors."""

    kind: str
    n: int
    dim: int
    clusters: int
    cluster_cos: float
    seed: int

    def _centres(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 7])
        c = rng.standard_normal((self.clusters, self.dim), dtype=np.float32)
        return c / np.linalg.norm(c, axis=1, keepdims=True)

    def draw(self, m: int, stream: int) -> np.ndarray:
        """(m, dim) unit vectors from stream `stream` (chunks and queries use distinct streams)."""
        rng = np.random.default_rng([self.seed, 11, stream])
        x = rng.standard_normal((m, self.dim), dtype=np.float32)
        if self.kind == "clustered":
            # noise of norm σ·√d around a unit centre gives cosine 1/√(1 + σ²d) to it
            sigma = np.sqrt((1 / self.cluster_cos**2 - 1) / self.dim)
            x = self._centres()[rng.integers(self.clusters, size=m)] + sigma * x
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    def chunks(self) -> Iterator[np.ndarray]:
        for i, start in enumerate(range(0, self.n, CHUNK)):
            yield self.draw(min(CHUNK, self.n - start), stream=i)

    def queries(self, m: int) -> np.ndarray:
        return self.draw(m, stream=10**6)

    def head(self, m: int) -> np.ndarray:
        """The first m corpus vectors (a training sample: rows are i.i.d.)."""
        parts, got = [], 0
        for chunk in self.chunks():
            parts.append(chunk[: m - got])
            got += len(parts[-1])
            if got >= m:
                break
        return np.concatenate(parts)


@dataclass
class Result:
    name: str
    build_s: float
    memory_gb: float
    """Serialized index size (what search holds in RAM)."""
    rss_gb: float
    """Resident-set growth while building (includes allocator slack and training buffers)."""
    batch_ms: float
    single_ms: float
    recall: float
    ids: np.ndarray


def build(corpus: Corpus, config: IndexConfig) -> tuple[faiss.Index, str, float, float, float]:
    plan = plan_index(config, corpus.n, corpus.dim)
    before, start = rss_gb(), time.perf_counter()
    index = create_index(plan, corpus.dim, config)
    if plan.train_size:
        train_index(index, plan, config, corpus.head(plan.train_size))
        gc.collect()
    for chunk in corpus.chunks():
        index.add(chunk)
    seconds, grown = time.perf_counter() - start, rss_gb() - before
    return index, plan.description, seconds, index_gb(index), grown


def measure(index: faiss.Index, queries: np.ndarray, k: int, singles: int) -> tuple[float, float, np.ndarray]:
    """Batched ms/query over all queries, median single-query ms, and the (Q, k) ids."""
    start = time.perf_counter()
    _, ids = index.search(queries, k)
    batch_ms = (time.perf_counter() - start) * 1e3 / len(queries)
    times = []
    for q in queries[:singles]:
        start = time.perf_counter()
        index.search(q[None], k)
        times.append((time.perf_counter() - start) * 1e3)
    return batch_ms, float(np.median(times)), ids


def recall_at(ids: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / exact.shape[1] for a, b in zip(ids, exact, strict=True)]))


def run_corpus(corpus: Corpus, approx: list[str], args: argparse.Namespace) -> list[Result]:
    queries = corpus.queries(args.queries)
    exact, factory, build_s, mem, rss = build(corpus, IndexConfig(index_type="flat",
                                                                  whiten=args.whiten))
    batch_ms, single_ms, truth = measure(exact, queries, args.k, args.singles)
    results = [Result(f"exact {factory}", build_s, mem, rss, batch_ms, single_ms, 1.0, truth)]
    print(f"  {results[-1].name}: built in {build_s:.1f}s", flush=True)
    for kind in approx:
        config = IndexConfig(index_type=kind, whiten=args.whiten)
        if args.nprobe:
            config = replace(config, nprobe=args.nprobe)
        if args.nlist:
            config = replace(config, nlist=args.nlist)
        index, factory, build_s, mem, rss = build(corpus, config)
        batch_ms, single_ms, ids = measure(index, queries, args.k, args.singles)
        plan = plan_index(config, corpus.n, corpus.dim)
        results.append(Result(f"{kind} {factory} {plan.search_params}", build_s, mem, rss,
                              batch_ms, single_ms, recall_at(ids, truth), ids))
        print(f"  {results[-1].name}: built in {build_s:.1f}s, recall@{args.k} "
              f"{results[-1].recall:.3f}", flush=True)
        for nprobe in args.sweep_nprobe:
            apply_search_params(index, {**plan.search_params, "nprobe": nprobe})
            b_ms, s_ms, ids = measure(index, queries, args.k, args.singles)
            results.append(Result(f"  └ same, nprobe={nprobe}", float("nan"), float("nan"),
                                  float("nan"), b_ms, s_ms, recall_at(ids, truth), ids))
        del index
        gc.collect()
    del exact
    gc.collect()
    return results


def print_table(title: str, results: list[Result], k: int) -> None:
    base = results[0]
    print(f"\n{title}")
    header = (f"{'index':<58} {'build s':>8} {'mem GB':>7} {'RSS+ GB':>7} {'ms/q batch':>10} "
              f"{'ms/q single':>11} {f'recall@{k}':>9} {'speed-up b/s':>13} {'mem ratio':>9}")
    print(header)
    print("-" * len(header))
    for r in results:
        speed = f"{base.batch_ms / r.batch_ms:.1f}×/{base.single_ms / r.single_ms:.1f}×"
        ratio = f"{r.memory_gb / base.memory_gb:.2f}" if np.isfinite(r.memory_gb) else ""
        build_s = f"{r.build_s:.1f}" if np.isfinite(r.build_s) else ""
        mem = f"{r.memory_gb:.2f}" if np.isfinite(r.memory_gb) else ""
        rss = f"{r.rss_gb:.2f}" if np.isfinite(r.rss_gb) else ""
        print(f"{r.name:<58} {build_s:>8} {mem:>7} {rss:>7} {r.batch_ms:>10.3f} {r.single_ms:>11.2f} "
              f"{r.recall:>9.3f} {speed:>13} {ratio:>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="corpus vectors")
    parser.add_argument("--dim", type=int, default=768, help="embedding size")
    parser.add_argument("--queries", type=int, default=1000, help="queries (batched search)")
    parser.add_argument("--singles", type=int, default=20,
                        help="queries timed one at a time (interactive latency)")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--variants", default="random,clustered")
    parser.add_argument("--approx", default="ivf,ivfpq",
                        help="approximate kinds to compare (ivf is the default approximate one)")
    parser.add_argument("--nprobe", type=int, default=0, help="override the default nprobe")
    parser.add_argument("--nlist", type=int, default=0, help="override the default nlist")
    parser.add_argument("--sweep-nprobe", type=int, nargs="*", default=[],
                        help="also time these nprobe values on each IVF index")
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--cluster-cos", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=0, help="FAISS threads (0: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--whiten", action=argparse.BooleanOptionalAction, default=True,
                        help="PCA-whiten inside every index, as `qheart index build` does")
    args = parser.parse_args()
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    print(f"n={args.n:,} dim={args.dim} queries={args.queries} (single-query latency on "
          f"{args.singles}) k={args.k} faiss {faiss.__version__}, "
          f"{faiss.omp_get_max_threads()} threads")
    for kind in args.variants.split(","):
        corpus = Corpus(kind, args.n, args.dim, args.clusters, args.cluster_cos, args.seed)
        print(f"\n[{kind}]", flush=True)
        results = run_corpus(corpus, [a for a in args.approx.split(",") if a], args)
        extra = (f", {args.clusters} clusters, cosine to centre {args.cluster_cos}"
                 if kind == "clustered" else "")
        print_table(f"{kind}: {args.n:,} × {args.dim}{extra}", results, args.k)


if __name__ == "__main__":
    main()
