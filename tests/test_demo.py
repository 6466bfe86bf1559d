"""`qheart demo` end to end at toy size: every stage runs and leaves its outputs; a re-run resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qheart.cli import app
from qheart.cli.demo import plan

runner = CliRunner()


def test_plan_orders_stages_and_skips_real_data_when_absent(tmp_path: Path) -> None:
    stages = plan(tmp_path, 10, 10, 1.0, real_ptbxl=None)
    commands = [s.argv[0] + " " + s.argv[1] for s in stages]
    assert commands[0] == "data synth" and commands[-1] == "index evaluate"
    assert commands.index("pretrain --data") < commands.index("index build")
    assert not any("ptbxl" in " ".join(s.argv) for s in stages)


@pytest.mark.slow
@pytest.mark.integration
def test_demo_runs_end_to_end_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--n-ecgs", "40", "--corpus-ecgs", "40",
            "--minutes", "0.2"]
    first = runner.invoke(app, argv)
    assert first.exit_code == 0, first.output
    assert (out / "bench" / "synth.json").is_file()
    assert (out / "pretrain" / "encoder" / "model.safetensors").is_file()
    assert (out / "index" / "manifest.json").is_file()
    result = json.loads((out / "zero_shot.json").read_text())
    assert 0.0 <= result["zero_shot_macro_auc"] <= 1.0
    assert "findings agreement" in first.output

    again = runner.invoke(app, argv)
    assert again.exit_code == 0, again.output
    assert again.output.count("skipped") >= 4  # synth, pretrain, zero-shot, index build
