"""Measuring stored ECGs on worker processes gives what the calling process gives, in order."""

from __future__ import annotations

import pytest

from qheart.data.store import SignalStore
from qheart.measurements import feature_readings, measure_ecg, parallel


def test_worker_processes_measure_rows_in_order_as_the_calling_process_does(qa_world, monkeypatch
                                                                             ) -> None:
    store = SignalStore(qa_world["bench"] / "store")
    rows = [5, 0, 3, 3, 7, 1]
    expected = [feature_readings(measure_ecg(store.signal(r))) for r in rows]
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_WORKER", 1)  # a pool even for six rows
    assert list(parallel.measure_rows(store, rows, feature_readings, workers=2)) == expected
    assert list(parallel.measure_rows(store, rows, feature_readings, workers=1)) == expected


def test_a_bad_row_fails_loudly_from_a_worker(qa_world, monkeypatch) -> None:
    store = SignalStore(qa_world["bench"] / "store")
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_WORKER", 1)
    with pytest.raises(IndexError, match="out of range"):
        list(parallel.measure_rows(store, [0, 1, len(store)], feature_readings, workers=2))
