"""Signal store vs one .mat file per record (the authors' published pipeline), side by side.

The authors' code (fairseq-signals, used by ECG-QA and Q-HEART) preprocesses each record into
its own MATLAB file with `scipy.io.savemat({"curr_sample_rate", "feats", "idx"})` and its
dataset calls `scipy.io.loadmat` once per sample. This script prepares the same N PTB-XL-layout
records both ways with the same readers and the same number of worker processes, then reads the
same random training batches from each, and prints records/s, batch-load time and the ratios.

    nice -n 10 .venv/bin/python benchmarks/bench_prepare.py --n 300
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

from qheart.data.prepare import PrepareConfig, default_workers, prepare
from qheart.data.readers import read_wfdb
from qheart.data.store import FLOAT16_RELATIVE_ERROR, SignalStore

REPO = Path(__file__).resolve().parents[1]


def write_corpus(root: Path, n: int) -> None:
    """N records in the PTB-XL layout, from the test fixtures (not duplicated here)."""
    sys.path.insert(0, str(REPO / "tests"))
    from data.corpus_fixtures import write_ptbxl

    write_ptbxl(root, n, distinct=min(n, 64))


# ------------------------------------------------------------------ the published way: .mat files


def _mat_one(job: tuple[int, str, str]) -> str:
    """Read one record and save it as its own .mat file, as the authors' preprocessing does."""
    idx, record, out = job
    feats = read_wfdb(record).astype(np.float64)  # (12, 5000); wfdb's p_signal dtype
    scipy.io.savemat(out, {"curr_sample_rate": 500, "feats": feats, "idx": idx})
    return out


def prepare_mat(root: Path, out: Path, workers: int) -> list[str]:
    out.mkdir(parents=True)
    database = pd.read_csv(root / "ptbxl_database.csv").sort_values("ecg_id")
    jobs = [(i, str(root / rec), str(out / f"{ecg_id:05d}_hr.mat"))
            for i, (ecg_id, rec) in enumerate(zip(database["ecg_id"], database["filename_hr"],
                                                  strict=True))]
    context = multiprocessing.get_context("forkserver")  # same pool kind as `prepare`
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(_mat_one, jobs, chunksize=8))


def load_mat_batch(paths: list[str], rows: np.ndarray):
    """One scipy.io.loadmat per sample, then a float tensor, as the authors' dataset does."""
    import torch

    return torch.stack([torch.from_numpy(scipy.io.loadmat(paths[r])["feats"]).float()
                        for r in rows])  # (B, 12, 5000)


def load_store_batch(store: SignalStore, rows: np.ndarray):
    import torch

    return torch.from_numpy(store.signals(rows))  # (B, 12, 5000)


# ----------------------------------------------------------------------------------- the run


def _warm_up_workers(workers: int) -> None:
    """Start the shared forkserver (with prepare's preloads) before timing either pipeline.

    Both pipelines fork their workers from this one server; whichever ran first would otherwise
    pay its start-up (~2 s of imports) alone.
    """
    from qheart.data.prepare import _pool

    with _pool(workers) as pool:
        list(pool.map(abs, range(workers)))


def _time_batches(loaders: list, batches: list[np.ndarray]) -> list[float]:
    """Seconds per loader over all batches, alternating loaders batch by batch so that a busy
    machine slows both alike."""
    totals = [0.0] * len(loaders)
    for rows in batches:
        for i, load in enumerate(loaders):
            start = time.perf_counter()
            load(rows)
            totals[i] += time.perf_counter() - start
    return totals


def _size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300, help="records to generate and prepare")
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=4, help="prepare runs; the best counts")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to write (default: a temporary folder, removed afterwards)")
    args = parser.parse_args(argv)
    import torch  # noqa: F401  (imported once, outside every timed section)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_prepare_"))
    try:
        corpus, store_dir, mat_dir = work / "ptbxl", work / "store", work / "mat"
        print(f"writing {args.n} PTB-XL-layout records to {corpus} …", flush=True)
        write_corpus(corpus, args.n)

        _warm_up_workers(args.workers)
        store_times, mat_times = [], []
        for repeat in range(args.repeats):  # best of N, order alternating: the box is shared
            for which in ("store", "mat") if repeat % 2 == 0 else ("mat", "store"):
                shutil.rmtree(store_dir if which == "store" else mat_dir, ignore_errors=True)
                start = time.perf_counter()
                if which == "store":
                    result = prepare(PrepareConfig("ptbxl", corpus, store_dir,
                                                   workers=args.workers), progress=False)
                    store_times.append(time.perf_counter() - start)
                else:
                    mat_paths = prepare_mat(corpus, mat_dir, args.workers)
                    mat_times.append(time.perf_counter() - start)
            print(f"  prepare run {repeat + 1}: store {store_times[-1]:.2f} s, "
                  f".mat {mat_times[-1]:.2f} s", flush=True)
        store_s, mat_s = min(store_times), min(mat_times)
        store = result.store
        assert len(store) == len(mat_paths) == args.n

        rng = np.random.default_rng(args.seed)
        batches = [rng.integers(0, args.n, args.batch_size) for _ in range(args.batches)]
        check = batches[0]
        got, ref = load_store_batch(store, check).numpy(), load_mat_batch(mat_paths, check).numpy()
        assert (np.abs(got - ref) <= np.abs(ref) * FLOAT16_RELATIVE_ERROR + 1e-7).all()
        load_store_batch(store, batches[1])  # map the shards once, like a DataLoader's first step
        load_mat_batch(mat_paths, batches[1])
        store_load, mat_load = _time_batches(
            [lambda r: load_store_batch(store, r), lambda r: load_mat_batch(mat_paths, r)], batches)

        n, b = args.n, args.batches
        print(f"\n{n} records, {args.workers} workers (best of {args.repeats} prepare runs); "
              f"{b} random batches of {args.batch_size}, page cache warm for both")
        print(f"{'':28}{'prepare rec/s':>14}{'ms / batch':>12}{'disk MB':>10}")
        print(f"{'signal store (float16 mmap)':28}{n / store_s:14.1f}"
              f"{1000 * store_load / b:12.2f}{_size_mb(store_dir):10.1f}")
        print(f"{'.mat per record (loadmat)':28}{n / mat_s:14.1f}"
              f"{1000 * mat_load / b:12.2f}{_size_mb(mat_dir):10.1f}")
        print(f"\nratios, store / .mat: prepare rate {mat_s / store_s:.2f}x, "
              f"batch-load speed {mat_load / store_load:.1f}x, "
              f"disk size 1/{_size_mb(mat_dir) / _size_mb(store_dir):.1f}")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
