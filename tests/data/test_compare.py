"""The realism report: features measured the same way on both stores, distances, the two-sample
classifier, and `qheart data compare` end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from qheart.data.compare import (
    CompareConfig,
    auc_score,
    ecg_features,
    feature_distances,
    two_sample_test,
)
from qheart.data.synth.ecg import simulate


def test_auc_score_matches_the_definition():
    assert auc_score(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.1, 0.2])) == 1.0
    assert auc_score(np.array([1, 0, 1, 0]), np.array([0.1, 0.9, 0.2, 0.8])) == 0.0
    assert auc_score(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5


def _gaussian_frames(shift: float, n: int = 150, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    a = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"f{k}" for k in range(6)])
    b = pd.DataFrame(rng.normal(size=(n, 6)), columns=a.columns)
    b["f2"] += shift
    b.loc[::7, "f4"] = np.nan  # missing values are imputed, not fatal
    return a, b


def test_two_sample_auc_is_near_half_for_one_distribution_and_high_for_a_shift():
    config = CompareConfig(folds=5)
    same = two_sample_test(*_gaussian_frames(0.0), config)
    shifted = two_sample_test(*_gaussian_frames(2.0), config)
    assert abs(same.auc - 0.5) < 0.12
    assert shifted.auc > 0.85
    assert shifted.weights.index[0] == "f2" and shifted.weights.iloc[0] < 0  # real is shifted up
    assert len(shifted.fold_aucs) == 5


def test_feature_distances_measure_the_shift_in_units_and_rank_it_first():
    a, b = _gaussian_frames(2.0, n=400)
    table = feature_distances(a, b).set_index("feature")
    assert table.index[0] == "f2"
    assert table.loc["f2", "wasserstein"] == pytest.approx(2.0, abs=0.25)
    assert table.loc["f2", "auc"] < 0.15  # synthetic (a) lower than real (b)
    assert table.loc["f4", "real_nan"] == pytest.approx(np.ceil(400 / 7) / 400)


def test_ecg_features_read_the_synthetic_truth_back():
    sim = simulate(np.random.default_rng(3))
    features, psd = ecg_features(sim.signal)
    truth_hr = 60_000.0 / sim.truth.features["rr interval"]
    assert features["heart_rate_bpm"] == pytest.approx(truth_hr, rel=0.1)
    assert psd.shape == (12, 501)
    r, s = features["r_mv[V1]"], features["s_mv[V1]"]
    assert np.isfinite(r) and np.isfinite(s) and r + s > 0.2
    assert all(np.isfinite(features[f"band_5-15hz_db[{lead}]"]) for lead in ("I", "V6"))


def test_cli_writes_the_report(tmp_path):
    from typer.testing import CliRunner

    from qheart.cli import app
    from qheart.data.synth import generate_benchmark

    generate_benchmark(tmp_path / "a", 8, seed=1, chunk_size=8)
    generate_benchmark(tmp_path / "b", 8, seed=2, chunk_size=8)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["data", "compare", "--synthetic", str(tmp_path / "a" / "store"),
                                      "--real", str(tmp_path / "b" / "store"), "--out", str(out),
                                      "--top", "1000"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "two-sample AUC" in result.output and "heart_rate_bpm" in result.output
    assert "noise_mv[aVR]" in result.output  # lead names are not read as console markup
    summary = json.loads((out / "compare.json").read_text())
    assert summary["n_synthetic"] == summary["n_real"] == 8 and 0.0 <= summary["two_sample_auc"] <= 1.0
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    distances = pd.read_csv(out / "distances.csv")
    assert {"heart_rate_bpm", "r_mv[II]", "noise_mv[V6]"} <= set(distances["feature"])
