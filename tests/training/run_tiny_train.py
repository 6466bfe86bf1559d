"""Run the tiny instruction-tuning configuration as a separate process (SIGKILL and torchrun
tests): python run_tiny_train.py BENCH LLM ENCODER INDEX OUT [--resume]. Each process writes
rank-<r>.json with its world size and a digest of its final trainable weights."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout, for tests.*

from qheart.training.instruct import TrainInputs, instruction_tune
from qheart.training.instruct_data import Benchmark
from tests.qa_fixtures import tiny_train_config


def main() -> None:
    bench, llm, encoder, index, out = map(Path, sys.argv[1:6])
    inputs = TrainInputs(Benchmark.from_path(bench), encoder, index)
    config = tiny_train_config(llm, max_steps=8, checkpoint_every=1, eval_every=4)
    instruction_tune(config, inputs, out, resume="--resume" in sys.argv, progress=False)
    from safetensors.torch import load_file

    weights = load_file(str(out / "checkpoint" / "model.safetensors"))
    digest = hashlib.sha256()
    for name in sorted(weights):
        digest.update(name.encode() + weights[name].numpy().tobytes())
    rank = int(os.environ.get("RANK", "0"))
    (out / f"rank-{rank}.json").write_text(json.dumps(
        {"world_size": int(os.environ.get("WORLD_SIZE", "1")), "digest": digest.hexdigest()}))


if __name__ == "__main__":
    main()
