"""Measuring many stored ECGs on every core.

Delineating one ECG is about 18 ms of NumPy/SciPy on one core (56 ECG/s on the demo's store,
benchmarks/bench_measure.py --store) that mostly holds the GIL, so threads do not help; at paper
scale (PTB-XL's 21,799 records) one core takes about 7 minutes, so large sets are worth worker
processes. Workers open the signal store themselves and receive only row numbers, so nothing
large is pickled.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from qheart.data.prepare import default_workers
from qheart.data.store import SignalStore
from qheart.measurements.measure import Measurements, measure_ecg

T = TypeVar("T")

MIN_ROWS_PER_WORKER = 16
"""Fewer rows than this per worker are measured in the calling process: starting a
forkserver pool costs about as much as measuring a few dozen ECGs (bench_measure.py --store,
idle 2-core machine: 200 rows ×0.95 on 2 workers against one process, 1,000 rows ×1.57)."""

_worker_store: SignalStore | None = None
_worker_render: Callable[[Measurements], object] | None = None


def _open(store: SignalStore, render: Callable[[Measurements], object]) -> None:
    global _worker_store, _worker_render
    _worker_store, _worker_render = store, render


def _measure_row(row: int) -> object:
    assert _worker_store is not None and _worker_render is not None
    return _worker_render(measure_ecg(_worker_store.signal(row)))


def measure_rows(store: SignalStore, rows: Sequence[int], render: Callable[[Measurements], T],
                 *, workers: int | None = None) -> Iterator[T]:
    """`render(measure_ecg(signal))` for each row, in order. `render` must be a module-level
    function (workers receive it by name). workers: None for all cores, 1 for this process."""
    workers = default_workers() if workers is None else max(1, workers)
    if workers == 1 or len(rows) < MIN_ROWS_PER_WORKER * workers:
        for row in rows:
            yield render(measure_ecg(store.signal(int(row))))
        return
    # forkserver: a fork of a process that has started torch's or OpenMP's threads can hang
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_open,
                             initargs=(store, render)) as pool:
        yield from pool.map(_measure_row, [int(r) for r in rows], chunksize=8)  # type: ignore[misc]
