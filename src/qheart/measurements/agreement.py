"""Agreement of `measure_ecg` with reference measurements a user has (e.g. PTB-XL+'s machine
features), keyed by ecg_id.

The reference CSV needs an `ecg_id` column and any of the columns in `REFERENCE_COLUMNS`
(milliseconds; axis in degrees). Rename your source's columns to these first: PTB-XL+ ships
several algorithms' features (12SL, Uni-G, ECGdeli) under their own names, and which one to trust
is the user's call, not a guess made here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from qheart.measurements.measure import Measurements, measure_ecg

REFERENCE_COLUMNS: tuple[str, ...] = (
    "rr_mean_ms", "p_duration_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "axis_deg",
)  # fmt: skip
"""Columns compared when present (same names as the `Measurements` fields)."""


def load_reference(path: str | Path) -> pd.DataFrame:
    """The reference table indexed by ecg_id, with only the known columns; a clear error if it
    has no ecg_id or none of them."""
    table = pd.read_csv(path)
    if "ecg_id" not in table.columns:
        raise ValueError(f"{path}: no ecg_id column (columns: {list(table.columns)})")
    present = [c for c in REFERENCE_COLUMNS if c in table.columns]
    if not present:
        raise ValueError(f"{path}: none of the reference columns {REFERENCE_COLUMNS} is present")
    return table.set_index("ecg_id")[present].astype(float)


def _angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a - b + 180.0) % 360.0 - 180.0)


def compare(reference: pd.DataFrame, measured: dict[int, Measurements]) -> pd.DataFrame:
    """Per column: n compared, share we measured, mean absolute difference, bias (ours − ref),
    and the share of ECGs whose difference stays within 10 ms (10° for the axis)."""
    rows = []
    ids = [i for i in reference.index if i in measured]
    for column in reference.columns:
        ref = reference.loc[ids, column].to_numpy(float)
        ours = np.array([getattr(measured[i], column) for i in ids], dtype=float)
        has_ref = ~np.isnan(ref)
        both = has_ref & ~np.isnan(ours)
        diff = _angle_diff(ours, ref) if column == "axis_deg" else np.abs(ours - ref)
        signed = ours - ref
        rows.append({
            "measure": column,
            "n": int(both.sum()),
            "measured_share": float(both.sum() / max(has_ref.sum(), 1)),
            "mae": float(diff[both].mean()) if both.any() else float("nan"),
            "bias": float(signed[both].mean()) if both.any() and column != "axis_deg" else float("nan"),
            "within_10": float((diff[both] <= 10.0).mean()) if both.any() else float("nan"),
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("measure")


def agreement_with_reference(
    reference_csv: str | Path,
    ecgs: Iterable[tuple[int, np.ndarray]] | Callable[[int], np.ndarray],
    *,
    sample_rate: float = 500.0,
) -> pd.DataFrame:
    """Measure the ECGs of the reference table and compare (see `compare`).

    `ecgs` is either (ecg_id, signal) pairs or a function ecg_id → canonical signal, e.g.
    `lambda i: read_ecg(ptbxl / filename_hr[i])` for a PTB-XL folder.
    """
    reference = load_reference(reference_csv)
    pairs = ((i, ecgs(i)) for i in reference.index) if callable(ecgs) else ecgs
    measured = {int(i): measure_ecg(signal, sample_rate) for i, signal in pairs if i in reference.index}
    return compare(reference, measured)


def ptbxl_loader(root: str | Path) -> Callable[[int], np.ndarray]:
    """ecg_id → canonical 500 Hz signal of a PTB-XL folder (ptbxl_database.csv, records500/)."""
    from qheart.data.readers import read_ecg

    root = Path(root)
    database = pd.read_csv(root / "ptbxl_database.csv", index_col="ecg_id")
    return lambda ecg_id: read_ecg(root / database.loc[ecg_id, "filename_hr"])
