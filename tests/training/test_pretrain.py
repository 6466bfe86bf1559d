"""Pre-training: data pipeline, masks, determinism, interruption + resume, exported artifacts."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import qheart.training.pretrain as pt
import qheart.training.pretrain_data as ptd
import qheart.training.schedule as sched
from qheart.cli import app
from qheart.data.store import StoreWriter
from qheart.models.encoder import ECGEncoder, EncoderConfig
from qheart.training.pretrain import pretrain
from qheart.training.pretrain_config import PretrainConfig
from qheart.training.pretrain_data import (
    PretrainData,
    batch_indices,
    random_lead_mask,
    random_step_mask,
)

TINY_ENCODER = EncoderConfig(conv_layers=((8, 4, 4), (16, 2, 2), (16, 2, 2)), conv_groups=4,
                             d_model=16, n_layers=1, n_heads=2, ffn_dim=32, pos_conv_kernel=8,
                             pos_conv_groups=4, dropout=0.1, embed_dim=12)
REPORTS = ["sinus rhythm. normal ecg.", "Sinus rhythm.  Normal ECG", "atrial fibrillation.",
           "sinus bradycardia. left axis deviation."]


def fake_report_encoder(texts: list[str]) -> torch.Tensor:
    """Deterministic bag-of-words embedding (hashing trick): no model download, instant."""
    out = torch.zeros(len(texts), 24)
    for i, text in enumerate(texts):
        for word in text.split():
            out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 24] += 1.0
    return torch.nn.functional.normalize(out, dim=-1)


def write_store(root, n: int, *, split: str | None = None, first_id: int = 0) -> None:
    rng = np.random.default_rng(first_id)
    t = np.arange(5000) / 500
    rate = rng.choice([1.0, 2.0], n)
    signals = np.sin(2 * np.pi * rate[:, None, None] * t) * rng.uniform(0.5, 1.5, (n, 12, 1))
    rows = pd.DataFrame({"ecg_id": first_id + np.arange(n), "patient_id": np.arange(n),
                         "report": [REPORTS[i % len(REPORTS)] for i in range(n)]})
    if split is not None:
        rows["split"] = [split if i % 4 else "test" for i in range(n)]
    writer = StoreWriter(root, source="test")
    writer.write_chunk(0, signals.astype(np.float32), rows)
    writer.finalize()


def tiny_config(**changes: object) -> PretrainConfig:
    settings = {"encoder": TINY_ENCODER, "batch_size": 8, "max_steps": 6, "lr": 1e-3,
                "log_every": 1, "checkpoint_every": 2, "crop_samples": 2500}
    return PretrainConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain") / "store"
    write_store(root, 24)
    return root


def run(config: PretrainConfig, store_dir, out, **kwargs) -> pt.PretrainResult:
    return pretrain(config, PretrainData.from_path(store_dir), out,
                    report_encoder=fake_report_encoder, progress=False, **kwargs)


def test_benchmark_folder_uses_train_split_and_corpus(tmp_path) -> None:
    write_store(tmp_path / "bench" / "store", 12, split="train")
    write_store(tmp_path / "bench" / "corpus", 5, first_id=100)
    data = PretrainData.from_path(tmp_path / "bench")
    assert len(data) == 9 + 5  # every 4th QA ECG is in the test split
    assert sorted(np.unique(data.items[:, 0])) == [0, 1]
    assert data.signals(np.array([0, 13, 0])).shape == (3, 12, 5000)
    assert data.report_keys[0] == "sinus rhythm. normal ecg"  # row 1: "Sinus rhythm.  Normal ECG"
    assert ptd.normalise_report(REPORTS[0]) == ptd.normalise_report(REPORTS[1])


def test_unpaired_ecgs_join_for_masked_modelling_only(tmp_path) -> None:
    write_store(tmp_path / "bench" / "store", 12, split="train")
    write_store(tmp_path / "unlabelled", 6, first_id=200)
    data = PretrainData.from_path(tmp_path / "bench", [tmp_path / "unlabelled"])
    assert len(data) == 9 + 6
    assert data.paired.tolist() == [True] * 9 + [False] * 6  # their reports are never read
    embeddings, row = ptd.cached_report_embeddings(data, tiny_config(), tmp_path,
                                                   report_encoder=fake_report_encoder)
    assert torch.all(embeddings[row[~data.paired]] == 0)
    assert torch.all(embeddings[row[data.paired]].norm(dim=-1) > 0.99)
    result = pretrain(tiny_config(max_steps=2), data, tmp_path / "run",
                      report_encoder=fake_report_encoder, progress=False)
    assert result.step == 2 and all(math.isfinite(h["loss"]) for h in result.history)


def test_batches_cover_each_item_once_per_epoch() -> None:
    seen = np.concatenate([batch_indices(20, 5, step, seed=3) for step in range(4)])
    assert sorted(seen) == list(range(20))
    np.testing.assert_array_equal(batch_indices(20, 5, 2, 3), batch_indices(20, 5, 2, 3))
    assert not np.array_equal(batch_indices(20, 5, 0, 3), batch_indices(20, 5, 4, 3))


def test_lead_mask_rate_and_never_all_leads() -> None:
    mask = random_lead_mask(4000, 12, 0.65, torch.Generator().manual_seed(0))
    assert abs(mask.float().mean().item() - 0.65) < 0.01
    assert not mask.all(dim=1).any()
    everything = random_lead_mask(50, 12, 0.999, torch.Generator().manual_seed(1))
    assert (everything.sum(1) == 11).all()


def test_step_mask_comes_in_spans() -> None:
    mask = random_step_mask(200, 100, 0.3, 5, torch.Generator().manual_seed(0))
    assert 0.15 < mask.float().mean().item() < 0.35
    starts = mask[:, 1:] & ~mask[:, :-1]
    assert starts.sum() < mask.sum() / 3  # runs, not isolated steps


def test_run_exports_encoder_head_curve_and_config(store_dir, tmp_path) -> None:
    result = run(tiny_config(), store_dir, tmp_path / "run")
    assert result.finished and result.step == 6 and len(result.history) == 6
    out = tmp_path / "run"
    for name in ("encoder/config.json", "encoder/model.safetensors", "text_head.safetensors",
                 "loss_curve.png", "pretrain_config.json", "checkpoint/state.json",
                 "checkpoint/model.safetensors", "report_embeddings.safetensors"):
        assert (out / name).is_file(), name
    saved = PretrainConfig.from_file(out / "pretrain_config.json")
    assert saved == tiny_config()
    assert ECGEncoder.from_pretrained(out / "encoder").config == TINY_ENCODER
    assert all(np.isfinite(h["loss"]) for h in result.history)
    assert result.history[-1]["lr"] < result.history[1]["lr"]  # cosine decay
    with pytest.raises(FileExistsError, match="resume"):
        run(tiny_config(), store_dir, out)


def test_interrupted_run_resumes_to_the_same_trajectory(store_dir, tmp_path, monkeypatch) -> None:
    full = run(tiny_config(), store_dir, tmp_path / "full")

    # Stopped cleanly after 3 steps (as --max-minutes does), then resumed.
    first = run(tiny_config(), store_dir, tmp_path / "split", stop_after=3)
    assert not first.finished and first.step == 3
    second = run(tiny_config(), store_dir, tmp_path / "split", resume=True)
    assert second.finished and second.step == 6
    assert [h["loss"] for h in second.history] == pytest.approx([h["loss"] for h in full.history],
                                                                 rel=1e-5)

    # Killed at step 5 between checkpoints (every 2 steps): resumes from step 4.
    real_step, calls = pt.train_step, {"n": 0}

    def crashing_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(pt, "train_step", crashing_step)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_config(), store_dir, tmp_path / "crash")
    assert json.loads((tmp_path / "crash/checkpoint/state.json").read_text())["step"] == 4
    monkeypatch.setattr(pt, "train_step", real_step)
    resumed = run(tiny_config(), store_dir, tmp_path / "crash", resume=True)
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in full.history],
                                                                 rel=1e-5)
    a = load_file(str(tmp_path / "full/encoder/model.safetensors"))
    b = load_file(str(tmp_path / "crash/encoder/model.safetensors"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)


def test_zero_steps_exports_the_untrained_encoder(store_dir, tmp_path) -> None:
    result = run(tiny_config(max_steps=0), store_dir, tmp_path / "init")
    assert result.step == 0 and (tmp_path / "init/encoder/model.safetensors").is_file()


def test_presets_and_validation() -> None:
    small = PretrainConfig.from_name("cpu-small")
    assert small.encoder == EncoderConfig.from_name("cpu-small") and small.lead_mask_prob == 0.65
    assert small.statement_weight == 1.0 and PretrainConfig().statement_weight == 0.0
    paper = PretrainConfig.from_name("paper", max_steps=10)
    assert paper.encoder.n_layers == 12 and paper.max_steps == 10
    with pytest.raises(ValueError, match="batch_size"):
        PretrainConfig(batch_size=1)
    with pytest.raises(ValueError, match="lead_mask_prob"):
        PretrainConfig(lead_mask_prob=1.0)
    with pytest.raises(ValueError, match="unknown"):
        PretrainConfig.from_name("huge")


@pytest.mark.parametrize("command", ["pretrain", "zero-shot"])
def test_cli_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--data" in result.output


@pytest.mark.parametrize(("args", "named"), [
    (["--labels", "ptbxl-super"], "--scp-statements"),
    (["--labels", "ptbxl"], "--labels"),
    (["--prompts", "median"], "--prompts"),
])
def test_zero_shot_refuses_bad_options_before_loading_anything(tmp_path, args, named) -> None:
    result = CliRunner().invoke(app, ["zero-shot", "--encoder", str(tmp_path / "none"),
                                      "--data", str(tmp_path / "none"), *args])
    assert result.exit_code == 2
    assert named in result.output and "Traceback" not in result.output


def test_schedule_warms_up_decays_and_fits_a_time_budget() -> None:
    schedule = sched.WarmupCosine(warmup=10, total=100)
    assert schedule(0) < schedule(5) < schedule(9) <= 1.0
    assert schedule(10) == pytest.approx(1.0) and schedule(100) == pytest.approx(0.0)
    assert schedule(55) == pytest.approx(0.5)
    budget = {"max_steps": 1000, "warmup_fraction": 0.1}
    # 20 steps done at 2 s/step with 60 s left: 30 more fit, so the cosine ends at step 50.
    sched.fit_horizon(schedule, **budget, step=20, seconds_left=60.0, seconds_per_step=2.0)
    assert schedule.total == 50
    sched.fit_horizon(schedule, **budget, step=20, seconds_left=1e9, seconds_per_step=0.1)
    assert schedule.total == 1000  # never beyond max_steps
    early = sched.WarmupCosine(warmup=100, total=1000)
    sched.fit_horizon(early, **budget, step=10, seconds_left=90.0, seconds_per_step=1.0)
    assert early.total == 100 and early.warmup == 10  # warm-up shrinks with the horizon


def test_statement_pooling_embeds_each_statement_once() -> None:
    seen: list[str] = []

    def encode(texts: list[str]) -> torch.Tensor:
        seen.extend(texts)
        return fake_report_encoder(texts)

    reports = ["sinus rhythm. normal ecg", "sinus rhythm. left axis deviation", "normal ecg"]
    emb = ptd.embed_reports(reports, encode, "statements")
    assert sorted(seen) == ["left axis deviation", "normal ecg", "sinus rhythm"]
    parts = fake_report_encoder(["sinus rhythm", "normal ecg"])
    torch.testing.assert_close(emb[0], torch.nn.functional.normalize(parts.sum(0), dim=0))
    torch.testing.assert_close(emb[2], parts[1])
    full = ptd.embed_reports(reports, fake_report_encoder, "full")
    torch.testing.assert_close(full, fake_report_encoder(reports))
    assert ptd.split_statements("a.  b; c\nd.") == ["a", "b", "c", "d"]


def test_resume_never_unpickles_and_refuses_another_config(store_dir, tmp_path) -> None:
    from qheart.config import ConfigError

    from .test_checkpoint import plant_pickles

    out = tmp_path / "run"
    run(tiny_config(), store_dir, out, stop_after=2)
    plant_pickles(out / "checkpoint", tmp_path / "pwned")
    with pytest.raises(ConfigError, match=r"differing fields: lr"):
        run(tiny_config(lr=0.5), store_dir, out, resume=True)
    result = run(tiny_config(), store_dir, out, resume=True)
    assert result.finished and not (tmp_path / "pwned").exists()
    info = json.loads((out / "run.json").read_text())
    assert info["step"] == 6 and info["seed"] == 0 and info["qheart_version"]


def test_resume_with_nothing_to_resume_is_an_error(store_dir, tmp_path) -> None:
    from qheart.training.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="nothing to resume"):
        run(tiny_config(), store_dir, tmp_path / "empty", resume=True)


def test_statement_table_marks_what_each_report_states(tmp_path) -> None:
    data = PretrainData([], np.zeros((4, 2), np.int64),
                        ["sinus rhythm. normal ecg", "atrial fibrillation", ptd.UNPAIRED,
                         "sinus rhythm. left axis deviation"])
    table = ptd.cached_statement_table(data, PretrainConfig(), tmp_path,
                                       report_encoder=fake_report_encoder)
    # unique reports sort as: "", "atrial fibrillation", "sinus rhythm. left…", "sinus rhythm. normal ecg"
    statements = ["atrial fibrillation", "left axis deviation", "normal ecg", "sinus rhythm"]
    torch.testing.assert_close(table.embeddings, fake_report_encoder(statements))
    assert [ids.tolist() for ids in table.of_report] == [[], [0], [1, 3], [2, 3]]
    present, targets = table.batch([3, 0, 1])
    assert present.tolist() == [0, 2, 3]
    assert targets.tolist() == [[False, True, True], [False, False, False], [True, False, False]]


def test_report_cache_and_statement_table_embed_each_statement_once(store_dir, tmp_path) -> None:
    calls: list[list[str]] = []

    def counting(texts: list[str]) -> torch.Tensor:
        calls.append(list(texts))
        return fake_report_encoder(texts)

    pretrain(tiny_config(statement_weight=1.0, max_steps=1), PretrainData.from_path(store_dir),
             tmp_path / "run", report_encoder=counting, progress=False)
    embedded = [t for call in calls for t in call]
    assert embedded and len(embedded) == len(set(embedded))  # no statement embedded twice
    encode = ptd.memoised(counting)
    torch.testing.assert_close(encode(["b", "a", "b"]), fake_report_encoder(["b", "a", "b"]))
    assert calls[-1] == ["b", "a"]


def test_statement_loss_trains_and_is_logged(store_dir, tmp_path) -> None:
    result = run(tiny_config(statement_weight=1.0), store_dir, tmp_path / "run")
    assert result.finished and (tmp_path / "run" / ptd.STATEMENT_CACHE).is_file()
    first, last = result.history[0], result.history[-1]
    assert np.isfinite(last["statements"])
    assert first["loss"] == pytest.approx(first["siglip"] + first["statements"]
                                          + 0.5 * first["mlm"], rel=1e-4)
    assert "statements" not in run(tiny_config(max_steps=1), store_dir, tmp_path / "off").history[0]
    with pytest.raises(ValueError, match="statement_weight"):
        tiny_config(statement_weight=-1.0)
    with pytest.raises(ValueError, match="tune_text_encoder"):
        tiny_config(statement_weight=1.0, tune_text_encoder=True)
