"""`qheart demo` end to end at toy size: every stage runs and leaves its outputs; a re-run resumes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from qheart.cli import app
from qheart.cli.demo import DemoSizes, plan

runner = CliRunner()


def test_plan_orders_stages_and_skips_real_data_when_absent(tmp_path: Path) -> None:
    stages = plan(tmp_path, DemoSizes(10, 10, 1.0, 1.0), real_ptbxl=None)
    commands = [s.argv[0] + " " + s.argv[1] for s in stages]
    assert commands[0] == "data synth" and commands[-1] == "evaluate --compare"
    assert commands.index("pretrain --data") < commands.index("index build")
    assert commands.index("index build") < commands.index("train --data")
    evaluations = [i for i, c in enumerate(commands) if c == "evaluate --model"]
    compare = commands.index("evaluate --compare")
    assert len(evaluations) == 2 and compare > max(evaluations)  # after both systems' results
    trains = [s for s in stages if s.argv[0] == "train"]
    assert len(trains) == 2 and "model.use_ecg=false" in trains[1].argv  # Q-HEART and blind
    assert all(s.resume_dir is not None for s in trains)
    assert not any("ptbxl" in " ".join(s.argv) for s in stages)
    with_real = plan(tmp_path, DemoSizes(10, 10, 1.0, 1.0), real_ptbxl=tmp_path / "ptb-xl")
    labels = [s.argv[s.argv.index("--labels") + 1] for s in with_real if "--labels" in s.argv]
    assert labels == ["ptbxl-super", "ptbxl-rhythm"]  # both real zero-shot tables issue 12 reads


@pytest.mark.slow
@pytest.mark.integration
def test_quick_demo_runs_every_stage_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    first = runner.invoke(app, ["demo", "--out", str(out), "--quick"])
    assert first.exit_code == 0, first.output
    for path in ("bench/synth.json", "pretrain/encoder/model.safetensors", "index/manifest.json",
                 "qheart/config.json", "blind/config.json",
                 "eval/qheart/test-rank/results.json", "eval/blind/test-rank/results.json",
                 "eval/qheart-vs-blind/paired.json"):
        assert (out / path).exists(), path
    assert "exact match, synthetic test split" in first.output
    assert "ask it: qheart ask --model" in first.output
    assert "qheart − blind" in first.output  # the paired row under the table
    again = runner.invoke(app, ["demo", "--out", str(out), "--quick"])
    assert again.exit_code == 0, again.output
    assert again.output.count("skipped") >= 9  # synth, pretrain, zero-shot, index, 2 × train/eval, paired
