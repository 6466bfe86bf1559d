"""The time-budgeted step loop every qheart training run shares (pre-training, instruction tuning).

It owns what is the same for both: the progress bar, fitting the cosine schedule to
`--max-minutes` from the measured step time, periodic safetensors checkpoints, validation every
N steps with a callback on a new best, the loss curve and `run.json`. What one step does is the
caller's `step_fn(step) -> {name: float}`; it must draw its batch and randomness from `step`
alone, so that a resumed run replays exactly what an uninterrupted one would have done.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from qheart.config import Config, require_same
from qheart.training.checkpoint import CHECKPOINT_DIR, load_checkpoint, save_checkpoint
from qheart.training.schedule import WarmupCosine, fit_horizon

if TYPE_CHECKING:
    from accelerate import Accelerator

RUN_INFO = "run.json"
EXPORT_RESERVE_S = 10.0
"""Seconds of a --max-minutes budget kept for the last checkpoint and the export."""


@dataclass
class LoopSettings:
    """How long to run and how often to log, validate and checkpoint."""

    max_steps: int
    warmup_fraction: float
    checkpoint_every: int
    log_every: int
    eval_every: int | None = None
    """Call `eval_fn` every this many steps (and at the end); None: never."""
    trainable_only: bool = False
    """Checkpoint only the parameters that train (frozen weights are reloaded from the source)."""
    title: str = "training"


@dataclass
class LoopState:
    """Everything the loop carries across a resume (saved as the checkpoint's state.json)."""

    step: int = 0
    history: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    best: dict | None = None
    """{"step", "val_loss"} of the best validation so far."""

    def to_dict(self) -> dict:
        return {"step": self.step, "history": self.history, "evals": self.evals,
                "best": self.best}

    @classmethod
    def from_dict(cls, data: dict) -> LoopState:
        return cls(step=int(data["step"]), history=list(data.get("history", [])),
                   evals=list(data.get("evals", [])), best=data.get("best"))


@dataclass
class LoopResult:
    """How a run ended."""

    out: Path
    step: int
    """Optimiser steps done in total (over all resumed invocations)."""
    finished: bool
    """True when the (fitted) schedule was completed; False when stopped early."""
    history: list[dict]
    evals: list[dict]
    best: dict | None


def open_run(out: Path, config: Config, config_name: str, *, resume: bool) -> Accelerator:
    """Check the run folder before any expensive set-up (a fresh run must not overwrite a
    checkpoint; a resumed one must keep its config), create it, and start Accelerate (bf16 on
    GPU). The config is saved by the caller's main process."""
    from accelerate import Accelerator

    if not resume and (out / CHECKPOINT_DIR).exists():
        raise FileExistsError(f"{out}: holds a checkpoint already; pass resume=True (--resume) "
                              "or choose another output folder")
    config_path = out / config_name
    if resume and config_path.is_file():
        require_same(type(config).from_file(config_path), config, config_path)
    out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    return Accelerator(cpu=not cuda, mixed_precision="bf16" if cuda else "no")


def update_run_info(out: Path, **values: Any) -> dict:
    """Merge `values` into out/run.json (data paths, budget, horizon, seed, version, …)."""
    from qheart import __version__

    path = out / RUN_INFO
    info = json.loads(path.read_text()) if path.is_file() else {}
    info.update(values, qheart_version=__version__)
    tmp = path.with_name(f".{RUN_INFO}.tmp")
    tmp.write_text(json.dumps(info, indent=2, default=str))
    tmp.replace(path)
    return info


def plot_history(history: list[dict], path: Path, title: str,
                 evals: list[dict] | None = None) -> None:
    """Every numeric column of the history against step (log scale), validation as markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = pd.DataFrame(history)
    fig, ax = plt.subplots(figsize=(7, 4))
    for column in frame.columns:
        if column not in ("step", "lr") and pd.api.types.is_numeric_dtype(frame[column]):
            ax.plot(frame["step"], frame[column], label=column)
    if evals:
        ev = pd.DataFrame(evals)
        if "val_loss" in ev:
            ax.plot(ev["step"], ev["val_loss"], "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_loop(
    *,
    out: Path,
    accelerator: Accelerator,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    schedule: WarmupCosine,
    settings: LoopSettings,
    step_fn: Callable[[int], dict[str, float]],
    eval_fn: Callable[[int], dict[str, float]] | None = None,
    on_best: Callable[[int], None] | None = None,
    resume: bool = False,
    started: float | None = None,
    max_minutes: float | None = None,
    stop_after: int | None = None,
    progress: bool = True,
) -> LoopResult:
    """Run (or resume) until the schedule ends, the time budget is used or `stop_after` steps
    were done here; always leave a checkpoint. `model` is the unwrapped model."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    started = time.monotonic() if started is None else started
    if resume:
        state = LoopState.from_dict(load_checkpoint(out, accelerator=accelerator, model=model,
                                                    optimizer=optimizer, scheduler=scheduler))
    elif (out / CHECKPOINT_DIR).exists():
        raise FileExistsError(f"{out}: holds a checkpoint already; pass resume=True (--resume) "
                              "or choose another output folder")
    else:
        state = LoopState()

    def checkpoint() -> None:
        save_checkpoint(out, accelerator=accelerator, model=model, optimizer=optimizer,
                        scheduler=scheduler, state=state.to_dict(),
                        trainable_only=settings.trainable_only)

    def validate() -> None:
        if eval_fn is None:
            return
        record = {"step": state.step, **eval_fn(state.step)}
        state.evals.append(record)
        if state.best is None or record["val_loss"] < state.best["val_loss"]:
            state.best = {"step": state.step, "val_loss": record["val_loss"]}
            if on_best is not None:
                on_best(state.step)

    main = accelerator.is_main_process
    budget = None if max_minutes is None else max_minutes * 60.0 - EXPORT_RESERVE_S
    done_here, step_seconds, window_start = 0, 0.0, time.monotonic()
    bar = Progress(TextColumn(settings.title), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                   disable=not (progress and main))
    with bar:
        task = bar.add_task("train", total=schedule.total, completed=state.step, info="")
        model.train()
        while state.step < schedule.total:
            if stop_after is not None and done_here >= stop_after:
                break
            if budget is not None and time.monotonic() - started + step_seconds > budget:
                break
            losses = step_fn(state.step)
            state.step += 1
            done_here += 1
            if done_here % 10 == 0:  # speed over the last 10 steps (includes checkpoints/evals)
                step_seconds = (time.monotonic() - window_start) / 10
                window_start = time.monotonic()
                if budget is not None:
                    fit_horizon(schedule, max_steps=settings.max_steps,
                                warmup_fraction=settings.warmup_fraction, step=state.step,
                                seconds_left=budget - (time.monotonic() - started),
                                seconds_per_step=step_seconds)
                    bar.update(task, total=schedule.total)
            if state.step % settings.log_every == 0 or state.step == schedule.total:
                record = {"step": state.step, **losses, "lr": scheduler.get_last_lr()[0]}
                state.history.append(record)
                info = ", ".join(f"{k} {v:.3f}" for k, v in losses.items())
                bar.update(task, completed=state.step, info=info)
            else:
                bar.update(task, completed=state.step)
            if settings.eval_every and state.step % settings.eval_every == 0:
                validate()
                model.train()
            if state.step % settings.checkpoint_every == 0 and state.step < schedule.total:
                checkpoint()
    finished = state.step >= schedule.total
    if settings.eval_every and (not state.evals or state.evals[-1]["step"] != state.step):
        validate()
    checkpoint()
    if main:
        if state.history:
            plot_history(state.history, out / "loss_curve.png", settings.title, state.evals)
        update_run_info(out, step=state.step, finished=finished, fitted_total_steps=schedule.total,
                        max_steps=settings.max_steps, max_minutes=max_minutes,
                        processes=accelerator.num_processes, device=str(accelerator.device),
                        host=platform.node(), best=state.best,
                        seconds_this_invocation=round(time.monotonic() - started, 1))
    accelerator.wait_for_everyone()
    return LoopResult(out, state.step, finished, state.history, state.evals, state.best)
