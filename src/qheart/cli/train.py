"""`qheart train`: a thin wrapper over qheart.training.instruct (heavy imports inside)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer


def train(
    data: Annotated[Path, typer.Option(help="A synthetic benchmark folder, or an ECG-QA folder "
                                            "(with --store) for real data.")],
    out: Annotated[Path, typer.Option(help="Model folder to write (checkpoints, run.json, the "
                                           "exported model).")],
    encoder: Annotated[Path | None, typer.Option(
        help="A `qheart pretrain` run (or its encoder/ folder); default: a random encoder.")] = None,
    index: Annotated[Path | None, typer.Option(
        help="A `qheart index build` folder; its top-3 reports go into the prompts (missing "
             "caches are computed on the way).")] = None,
    store: Annotated[Path | None, typer.Option(
        help="Signal store with the questions' ECGs (real ECG-QA; a synthetic benchmark has "
             "its own).")] = None,
    preset: Annotated[str, typer.Option(help="cpu-small (2 CPU cores) or paper (GPU).")] = "cpu-small",
    config: Annotated[Path | None, typer.Option(
        help="A TrainConfig JSON/YAML file instead of --preset.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override any config field, e.g. --set model.use_ecg=false "
                      "--set lr=1e-4 (repeatable).")] = None,
    max_minutes: Annotated[float | None, typer.Option(
        min=0.01,
        help="Wall-time budget: the cosine schedule is fitted to it; a resumable checkpoint "
             "and the model are left at the end.")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Override the optimiser steps.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the seed.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
) -> None:
    """Instruction-tune Q-HEART (ECG encoder → ET-Mapper → LoRA LLM) on ECG-QA questions."""
    from rich import print as rprint

    from qheart.training.instruct import (
        CONFIG_NAME,
        TrainInputs,
        encoder_folder,
        instruction_tune,
    )
    from qheart.training.instruct_config import TrainConfig
    from qheart.training.instruct_data import Benchmark

    saved = out / CONFIG_NAME
    if resume and saved.is_file():
        base = TrainConfig.from_file(saved)
    elif config is not None:
        base = TrainConfig.from_file(config)
    else:
        base = TrainConfig.from_name(preset)
    overrides = list(set_ or [])
    overrides += [f"max_steps={max_steps}"] if max_steps is not None else []
    overrides += [f"seed={seed}"] if seed is not None else []
    train_config = base.with_overrides(overrides)
    inputs = TrainInputs(Benchmark.from_path(data, store),
                         encoder_folder(encoder) if encoder is not None else None, index)
    result = instruction_tune(train_config, inputs, out, resume=resume, max_minutes=max_minutes)
    if os.environ.get("RANK", "0") != "0":
        return
    state = "finished" if result.finished else "stopped early (continue with --resume)"
    best = f", best validation loss {result.best['val_loss']:.4f} at step {result.best['step']}" \
        if result.best else ""
    rprint(f"[bold]{state}[/bold] at step {result.step}{best}; model in {out}")
    rprint(f"try: qheart ask --model {out} --ecg ECG_FILE \"Does this ECG show atrial "
           "fibrillation?\"")
