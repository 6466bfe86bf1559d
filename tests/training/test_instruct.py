"""Instruction tuning end to end on a tiny configuration: the model folder, resume, safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from qheart.data.store import SignalStore
from qheart.training.instruct import TrainInputs, instruction_tune
from qheart.training.instruct_data import Benchmark
from tests.qa_fixtures import tiny_train_config


def inputs(world) -> TrainInputs:
    return TrainInputs(Benchmark.from_path(world["bench"]), world["encoder"], world["index"])


def test_model_folder_holds_everything_from_pretrained_needs(tiny_model_dir) -> None:
    for name in ("config.json", "encoder/model.safetensors", "prefix.safetensors",
                 "adapter/adapter_config.json", "adapter/adapter_model.safetensors",
                 "tokenizer/tokenizer.json", "questions.json", "run.json", "train_config.json",
                 "best/trainable.safetensors", "loss_curve.png"):
        assert (tiny_model_dir / name).exists(), name
    meta = json.loads((tiny_model_dir / "config.json").read_text())
    assert meta["model_type"] == "qheart" and meta["qheart_version"]
    assert meta["index"]["build_id"] and meta["model"]["n_prefix"] == 12
    run = json.loads((tiny_model_dir / "run.json").read_text())
    assert run["step"] == 6 and run["finished"] and run["best"]["val_loss"] > 0


SCRIPT = Path(__file__).with_name("run_tiny_train.py")


def script_args(world, out) -> list[str]:
    return [str(world[k]) for k in ("bench", "llm", "encoder", "index")] + [str(out)]


def final_digest(out) -> str:
    return json.loads((out / "rank-0.json").read_text())["digest"]


@pytest.mark.slow
def test_sigkill_then_resume_ends_with_the_same_weights(qa_world, tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = tmp_path / "full"
    subprocess.run([sys.executable, str(SCRIPT), *script_args(qa_world, full)], check=True,
                   env=env, timeout=300)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *script_args(qa_world, killed)], env=env)
    state = killed / "checkpoint" / "state.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if state.is_file() and json.loads(state.read_text())["step"] >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = json.loads(state.read_text())["step"]
    assert 3 <= step < 8, f"killed at step {step}: too late to test resuming"
    subprocess.run([sys.executable, str(SCRIPT), *script_args(qa_world, killed), "--resume"],
                   check=True, env=env, timeout=300)
    assert final_digest(killed) == final_digest(full)


@pytest.mark.slow
def test_torchrun_two_processes_end_with_the_same_weights(qa_world, tmp_path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                    "--master_port", "29517", str(SCRIPT), *script_args(qa_world, out)],
                   check=True, env=env, timeout=400)
    ranks = [json.loads((out / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]  # two processes really started
    assert ranks[0]["digest"] == ranks[1]["digest"]
    assert json.loads((out / "run.json").read_text())["processes"] == 2


def test_resume_never_unpickles_and_refuses_another_config(qa_world, tmp_path) -> None:
    from qheart.config import ConfigError

    from .test_checkpoint import plant_pickles

    out = tmp_path / "run"
    instruction_tune(tiny_train_config(qa_world["llm"]), inputs(qa_world), out, stop_after=2,
                     progress=False)
    plant_pickles(out / "checkpoint", tmp_path / "pwned")
    with pytest.raises(ConfigError, match=r"differing fields: lr"):
        instruction_tune(tiny_train_config(qa_world["llm"], lr=0.5), inputs(qa_world), out,
                         resume=True, progress=False)
    result = instruction_tune(tiny_train_config(qa_world["llm"]), inputs(qa_world), out,
                              resume=True, progress=False)
    assert result.finished and not (tmp_path / "pwned").exists()


def test_bucketed_batches_cover_each_question_once_per_epoch() -> None:
    from qheart.training.instruct_data import BatchPlan

    lengths = np.random.default_rng(0).integers(10, 200, 64)
    plan = BatchPlan(lengths, 8, seed=1)
    seen = np.concatenate([plan.batch(s) for s in range(8)])
    assert sorted(seen) == list(range(64))
    spread = np.mean([np.ptp(lengths[plan.batch(s)]) for s in range(8)])
    assert spread < np.ptp(lengths) / 2  # similar lengths share a batch
    np.testing.assert_array_equal(BatchPlan(lengths, 8, seed=1).batch(11), plan.batch(11))


def test_cli_train_with_set_overrides_writes_a_model(qa_world, tmp_path) -> None:
    from typer.testing import CliRunner

    from qheart.cli import app
    from tests.qa_fixtures import tiny_train_config

    config = tmp_path / "tiny.json"
    tiny_train_config(qa_world["llm"]).save(config)
    out = tmp_path / "model"
    argv = ["train", "--data", str(qa_world["bench"]), "--encoder", str(qa_world["encoder"]),
            "--index", str(qa_world["index"]), "--out", str(out), "--config", str(config),
            "--set", "model.use_ecg=false", "--max-steps", "3"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "config.json").read_text())
    assert meta["model"]["use_ecg"] is False and meta["train"]["max_steps"] == 3
    assert "model in" in result.output
    help_text = CliRunner().invoke(app, ["train", "--help"]).output
    assert "--set" in help_text and "--max-minutes" in help_text


def test_measurements_switch_puts_the_block_in_prompts_and_answers(qa_world, tmp_path) -> None:
    from qheart.api import QHeart
    from qheart.measurements.measure import MEASURE_VERSION
    from qheart.measurements.text import BLOCK_VERSION

    out = tmp_path / "measured"
    config = tiny_train_config(qa_world["llm"], max_steps=2, model={"use_measurements": True})
    instruction_tune(config, inputs(qa_world), out, progress=False)
    cache = qa_world["bench"] / "measurements" / f"store.v{BLOCK_VERSION}.m{MEASURE_VERSION}.json"
    assert cache.is_file() and "Measured: heart rate" in next(iter(json.loads(cache.read_text()).values()))
    model = QHeart.from_pretrained(out)
    signal = SignalStore(qa_world["bench"] / "store").signals([0])[0]
    answer = model.ask(signal, "Does this ECG show sinus rhythm?", sample_rate=500)
    assert answer.measurements and answer.measurements.startswith("Measured:")

    from qheart.models.model_folder import MeasurementBlockMismatch

    meta = json.loads((out / "config.json").read_text())
    assert meta["measurement_block"] == BLOCK_VERSION
    for stale in ({**meta, "measurement_block": BLOCK_VERSION - 1},
                  {k: v for k, v in meta.items() if k != "measurement_block"}):
        (out / "config.json").write_text(json.dumps(stale))
        with pytest.raises(MeasurementBlockMismatch, match="measurement block version"):
            QHeart.from_pretrained(out)


def test_asked_measurements_go_after_the_question_only_when_it_names_a_feature(qa_world,
                                                                              tmp_path) -> None:
    from qheart.api import QHeart
    from qheart.data.ecgqa import QASample
    from qheart.models.prompts import prompt_text
    from qheart.training.instruct_data import question_parts

    out = tmp_path / "asked"
    config = tiny_train_config(qa_world["llm"], max_steps=2,
                               model={"use_measurements": True, "measurement_scope": "asked"})
    instruction_tune(config, inputs(qa_world), out, progress=False)
    from qheart.measurements.measure import MEASURE_VERSION

    cache = qa_world["bench"] / "measurements" / f"store.readings.m{MEASURE_VERSION}.json"
    readings = next(iter(json.loads(cache.read_text()).values()))
    assert set(readings) == {"rr interval", "p duration", "pr interval", "qrs duration",
                             "qt interval", "qt corrected"}
    model = QHeart.from_pretrained(out)
    signal = SignalStore(qa_world["bench"] / "store").signals([0])[0]
    asked = model.ask(signal, "What range is the qrs duration of this ECG in?", sample_rate=500)
    assert asked.measurements and asked.measurements.startswith("Measured: qrs duration")
    assert model.ask(signal, "Does this ECG show sinus rhythm?", sample_rate=500).measurements \
        is None
    line = asked.measurements
    sample = QASample(0, 0, 41, "single-query", "numeric_feature",
                      "What range is the qrs duration of this ECG in?",
                      ("within the normal range",), 0, ("qrs duration",))
    parts = question_parts(model.config, sample, ["below the normal range"], "a report", None,
                           line)
    text = prompt_text(parts, with_ecg=True, with_question=True)
    assert line not in text.context  # per question, not in the shared ECG context
    assert text.question.index("Question:") < text.question.index(line) \
        < text.question.index("Options:")
    assert line not in prompt_text(parts, with_ecg=False, with_question=True).user  # blind


def test_lead_and_measurement_tokens_are_saved_and_loaded_with_the_model(qa_world, tmp_path
                                                                         ) -> None:
    from safetensors.torch import load_file

    from qheart.api import QHeart

    out = tmp_path / "leads"
    config = tiny_train_config(qa_world["llm"], max_steps=2,
                               model={"lead_tokens": True, "measurement_tokens": True})
    instruction_tune(config, inputs(qa_world), out, progress=False)
    saved = load_file(str(out / "prefix.safetensors"))
    model = QHeart.from_pretrained(out).model
    for part in ("lead_tokens", "measurement_tokens"):
        assert float(saved[f"{part}.standardise.std"].sub(1).abs().max()) > 0  # fitted
        loaded = getattr(model, part)
        assert loaded is not None
        for name, value in loaded.state_dict().items():
            torch.testing.assert_close(value, saved[f"{part}.{name}"])
    table = saved["lead_tokens.names"]
    assert bool((table.norm(dim=1) > 0).all())  # started from the LLM's embeddings of the names
    assert len({tuple(row.tolist()) for row in table}) == 12


def test_prefix_alignment_pulls_the_prefix_towards_report_embeddings(qa_world, tmp_path) -> None:
    from qheart.training.align import cosine_distance, report_targets
    from qheart.training.instruct import align_on_training_ecgs, build_model
    from qheart.training.instruct_data import QASet

    config = tiny_train_config(qa_world["llm"], align_steps=40, align_batch_size=8)
    data = QASet.load(Benchmark.from_path(qa_world["bench"]), "train")
    torch.manual_seed(0)
    model, tokenizer = build_model(config, qa_world["encoder"])
    rows = np.unique(data.rows)[:16]
    reports = data.store.metadata["report"].astype(str).to_numpy()[rows].tolist()
    table = model.causal_lm.get_input_embeddings().weight.detach()
    _, short = report_targets(tokenizer, table, ["Sinus", ""], config.model.n_prefix)
    assert short[0, 0] and not short[0, -1] and not short[1].any()  # short reports leave slots
    targets, mask = report_targets(tokenizer, table, reports, config.model.n_prefix)

    def distance() -> float:
        with torch.no_grad():
            return float(cosine_distance(model.eval().prefix(torch.from_numpy(
                data.store.signals(rows))), targets, mask))

    before = distance()
    lora_before = {n: p.clone() for n, p in model.named_parameters() if "lora_" in n}
    result = align_on_training_ecgs(model, tokenizer, data, config, progress=False)
    assert result.loss_end < result.loss_start and distance() < before - 0.1
    assert all(torch.equal(p, lora_before[n]) for n, p in model.named_parameters() if "lora_" in n)
    inputs = TrainInputs(Benchmark.from_path(qa_world["bench"]), qa_world["encoder"],
                         qa_world["index"])
    instruction_tune(config, inputs, tmp_path / "m", progress=False)
    info = json.loads((tmp_path / "m" / "run.json").read_text())
    assert info["prefix_alignment"]["steps"] == 40


def test_report_captioning_batches_label_only_the_report(qa_world) -> None:
    from qheart.models.prompts import PromptTokenizer
    from qheart.training.caption import MAX_REPORT_TOKENS, caption_batch
    from qheart.training.instruct import build_model

    config = tiny_train_config(qa_world["llm"])
    _, tokenizer = build_model(config, qa_world["encoder"])
    prompts = PromptTokenizer(tokenizer, config.model.n_prefix)
    store = SignalStore(Path(qa_world["bench"]) / "store")
    long_report = " ".join(["Sinus rhythm."] * 40)
    batch = caption_batch(store, np.array([3, 3]), ["Sinus rhythm.", long_report], prompts)
    assert len(batch.context_ids) == len(batch.tail_ids) == 2 and len(batch.signals) == 1
    start = int(batch.prefix_start[0])
    assert (batch.context_ids[0, start:start + config.model.n_prefix]
            == prompts.placeholder_id).all()
    labelled = batch.labels[0][batch.labels[0] != -100].tolist()
    assert labelled == prompts.answer("Sinus rhythm.")  # the report and its end, nothing else
    assert int((batch.labels[1] != -100).sum()) == MAX_REPORT_TOKENS


def test_report_captioning_lowers_the_report_loss_and_is_recorded(qa_world, tmp_path) -> None:
    from qheart.models.prompts import PromptTokenizer
    from qheart.training.caption import caption_batch
    from qheart.training.instruct import (
        build_model,
        caption_on_training_ecgs,
        fit_standardisers_on_training_ecgs,
        own_reports,
    )
    from qheart.training.instruct_data import QASet

    config = tiny_train_config(qa_world["llm"], caption_steps=30, caption_batch_size=8, lr=5e-3)
    data = QASet.load(Benchmark.from_path(qa_world["bench"]), "train")
    torch.manual_seed(0)
    model, tokenizer = build_model(config, qa_world["encoder"])
    fit_standardisers_on_training_ecgs(model, data)
    prompts = PromptTokenizer(tokenizer, config.model.n_prefix)
    rows, reports = own_reports(data, "caption_steps")
    probe = caption_batch(data.store, rows[:8], reports[:8], prompts)

    def report_loss() -> float:
        with torch.no_grad():
            return float(model.eval()(**probe.as_kwargs()))

    before = report_loss()
    mapper_before = {n: p.clone() for n, p in model.mapper.named_parameters()}
    result = caption_on_training_ecgs(model, prompts, data, config, progress=False)
    assert result.steps == 30 and result.loss_end < result.loss_start
    assert report_loss() < before - 0.15
    assert any(not torch.equal(p, mapper_before[n]) for n, p in model.mapper.named_parameters())
    instruction_tune(config, inputs(qa_world), tmp_path / "m", progress=False)
    info = json.loads((tmp_path / "m" / "run.json").read_text())
    assert info["report_captioning"]["steps"] == 30
