"""Shared test setup: never touch a model hub; locate the real public samples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REAL_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "real-samples"


@pytest.fixture
def real_samples() -> Path:
    """The ../shared/real-samples folder; tests that need it skip where it is absent."""
    if not REAL_SAMPLES.is_dir():
        pytest.skip(f"real samples not found at {REAL_SAMPLES} (needs ../shared beside the checkout)")
    return REAL_SAMPLES


@pytest.fixture(scope="session")
def qa_world(tmp_path_factory) -> dict[str, Path]:
    """A tiny synthetic benchmark with a random tiny LLM, encoder and index (see qa_fixtures)."""
    from tests.qa_fixtures import make_bench, make_encoder_dir, make_index, make_llm_dir

    root = tmp_path_factory.mktemp("qa_world")
    bench = make_bench(root / "bench")
    encoder = make_encoder_dir(root / "encoder")
    return {"bench": bench, "llm": make_llm_dir(bench, root / "llm"), "encoder": encoder,
            "index": make_index(bench, encoder, root / "index"), "root": root}


@pytest.fixture(scope="session")
def tiny_model_dir(qa_world) -> Path:
    """A trained (6 steps) tiny Q-HEART model folder, as `qheart train` writes it."""
    from qheart.training.instruct import TrainInputs, instruction_tune
    from qheart.training.instruct_data import Benchmark
    from tests.qa_fixtures import tiny_train_config

    out = qa_world["root"] / "model"
    if not (out / "config.json").is_file():
        inputs = TrainInputs(Benchmark.from_path(qa_world["bench"]), qa_world["encoder"],
                             qa_world["index"])
        instruction_tune(tiny_train_config(qa_world["llm"]), inputs, out, progress=False)
    return out
