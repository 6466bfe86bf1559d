"""Agreement with a reference table keyed by ecg_id."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qheart.data.synth import findings as F
from qheart.data.synth.ecg import simulate_plan
from qheart.measurements.agreement import agreement_with_reference, load_reference


def test_agreement_with_reference(tmp_path):
    sims = {i: simulate_plan(F.Plan(), np.random.default_rng([8, i])) for i in (1, 2)}
    rows = [{"ecg_id": i, "qrs_ms": s.truth.features["qrs duration"] + (40.0 if i == 2 else 0.0),
             "pr_ms": s.truth.features["pr interval"], "other": 1} for i, s in sims.items()]  # fmt: skip
    csv = tmp_path / "ref.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    table = agreement_with_reference(csv, lambda i: sims[i].signal)
    assert list(table.index) == ["pr_ms", "qrs_ms"]
    assert table.loc["qrs_ms", "n"] == 2
    assert table.loc["qrs_ms", "within_10"] == 0.5  # the reference of ECG 2 is off by 40 ms
    assert table.loc["pr_ms", "mae"] < 14


def test_reference_without_ecg_id_or_columns_is_a_clear_error(tmp_path):
    csv = tmp_path / "ref.csv"
    pd.DataFrame({"id": [1], "qrs_ms": [90]}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match="ecg_id"):
        load_reference(csv)
    pd.DataFrame({"ecg_id": [1], "QRS": [90]}).to_csv(csv, index=False)
    with pytest.raises(ValueError, match="none of the reference columns"):
        load_reference(csv)
