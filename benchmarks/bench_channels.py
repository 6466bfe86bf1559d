"""Which inputs does a trained model use? Validation loss with each ECG's own inputs, beside the
same questions with the ECGs shuffled among them and with the retrieved reports shuffled.

A model that reads the ECG prefix loses accuracy (its loss rises) when every question gets
another question's ECG; one that ignores it scores the same. The same for the retrieved
report. This is how we found that the prefix carried nothing before the encoder's outputs were
standardised (models/mapper.py). Validation split only, one run, the model's own prompts.

    .venv/bin/python benchmarks/bench_channels.py --model runs/demo/model-qheart \
        --data runs/demo/bench --questions 256
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path("runs/demo/bench"))
    parser.add_argument("--questions", type=int, default=256,
                        help="Validation questions (a seeded subset).")
    parser.add_argument("--seed", type=int, default=1, help="Seed of the shuffles.")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from qheart.api import QHeart
    from qheart.evaluation.evaluate import split_questions
    from qheart.training.instruct import validation_loss
    from qheart.training.instruct_config import TrainConfig
    from qheart.training.instruct_data import Benchmark

    qheart = QHeart.from_pretrained(args.model)
    data = split_questions(qheart, Benchmark.from_path(args.data), "valid", None, None,
                           progress=False)
    keep = np.sort(np.random.default_rng(0).choice(len(data), min(args.questions, len(data)),
                                                   replace=False))
    data = data.select(keep.tolist())
    config = TrainConfig.from_dict(qheart.meta["train"])
    order = np.random.default_rng(args.seed).permutation(len(data))
    variants = {"own ECG and report": data}
    if qheart.config.use_ecg:
        other_ecg = data.select(range(len(data)))
        other_ecg.rows = data.rows[order]
        variants["ECGs shuffled"] = other_ecg
    if qheart.config.retrieval_active:
        other_report = data.select(range(len(data)))
        other_report.reports = [data.reports[i] for i in order]
        variants["reports shuffled"] = other_report
    device = next(qheart.model.parameters()).device
    losses = {name: validation_loss(qheart.model, part, config, qheart.prompts, device)
              for name, part in variants.items()}
    table = Table(title=f"{args.model}: validation answer loss on {len(data)} questions")
    table.add_column("inputs")
    table.add_column("loss", justify="right")
    table.add_column("− own", justify="right")
    base = losses["own ECG and report"]
    for name, loss in losses.items():
        table.add_row(name, f"{loss:.4f}", f"{loss - base:+.4f}")
    Console().print(table)


if __name__ == "__main__":
    main()
