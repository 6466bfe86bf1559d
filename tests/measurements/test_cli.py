"""`qheart measure --ecg FILE [--json]`."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from qheart.cli import app
from qheart.data.synth import findings as F
from qheart.data.synth.ecg import simulate_plan


def _ecg_file(tmp_path):
    sim = simulate_plan(F.Plan(), np.random.default_rng([5, 1]))
    path = tmp_path / "ecg.npy"
    np.save(path, sim.signal)
    return path, sim


def test_measure_json_parses_and_matches_the_truth(tmp_path):
    path, sim = _ecg_file(tmp_path)
    result = CliRunner().invoke(app, ["measure", "--ecg", str(path), "--json", "--sample-rate", "500"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert abs(out["qrs_ms"] - sim.truth.features["qrs duration"]) <= 12
    assert out["text"].startswith("Measured: heart rate ")
    assert [lead["lead"] for lead in out["leads"]][:2] == ["I", "II"]


def test_measure_table_and_bad_file(tmp_path):
    path, _ = _ecg_file(tmp_path)
    result = CliRunner().invoke(app, ["measure", "--ecg", str(path), "--sample-rate", "500"])
    assert result.exit_code == 0, result.output
    assert "Measured:" in result.output and "aVF" in result.output
    bad = CliRunner().invoke(app, ["measure", "--ecg", str(tmp_path / "missing.npy"), "--sample-rate", "500"])
    assert bad.exit_code == 2
