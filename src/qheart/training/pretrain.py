"""ECG–report pre-training of the encoder (C-MELT style): SigLIP + masked ECG modelling.

Run layout (`out/`):

    pretrain_config.json        the run's hyperparameters (written at start)
    report_embeddings.safetensors  frozen text-encoder embeddings of the unique reports (cached once)
    checkpoint/                 Accelerate state (model.safetensors, optimizer, scheduler, RNG)
                                + state.json (step, loss history); replaced atomically
    encoder/                    the ECGEncoder (config.json + model.safetensors) — what later
                                stages load
    text_head.safetensors       the report projection + SigLIP temperature/bias (zero-shot needs it)
    loss_curve.png

Determinism: batch order comes from (seed, epoch) and every random mask/crop from a generator
seeded by (seed, step), so a resumed run replays exactly the batches and masks an uninterrupted
run would have seen.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch
from torch import nn

from qheart.models.encoder import ECGEncoder
from qheart.models.losses import (
    SigLIPLoss,
    masked_modelling_loss,
    negative_pair_weights,
    patchify,
)
from qheart.models.text_encoder import TextEncoder, TextHead
from qheart.training.pretrain_config import PretrainConfig
from qheart.training.pretrain_data import (
    PretrainData,
    ReportEncoder,
    batch_indices,
    cached_report_embeddings,
    random_crop,
    random_lead_mask,
    random_step_mask,
    step_generator,
)

if TYPE_CHECKING:
    from accelerate import Accelerator

CHECKPOINT_DIR = "checkpoint"
STATE_NAME = "state.json"
EXPORT_RESERVE_S = 10.0
"""Seconds of a --max-minutes budget kept for the last checkpoint and the export."""


# ----------------------------------------------------------------------------- model


class PretrainModel(nn.Module):
    """Everything pre-training trains: the encoder, the report projection, the SigLIP
    temperature/bias, a linear head that reconstructs masked steps, and (only when tuned) the
    text encoder."""

    def __init__(self, config: PretrainConfig, text_dim: int) -> None:
        super().__init__()
        enc = config.encoder
        self.config = config
        self.encoder = ECGEncoder(enc)
        self.text_head = TextHead(text_dim, enc.embed_dim)
        # SigLIP's -10 bias suits batches of ~32k; a batch of B has B-1 negatives per positive, so
        # start from that prior (-log B) or a short run spends its steps moving the bias.
        self.siglip = SigLIPLoss(init_bias=-math.log(config.batch_size))
        self.reconstruct = nn.Linear(enc.d_model, enc.n_leads * enc.samples_per_step)
        self.text_encoder = (TextEncoder(config.text_encoder, trainable=True)
                             if config.tune_text_encoder else None)

    def forward(self, signals: torch.Tensor, report_embeddings: torch.Tensor,
                pair_weights: torch.Tensor, lead_mask: torch.Tensor,
                step_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """signals (B, 12, n); report_embeddings (B, text_dim) → losses."""
        enc = self.config.encoder
        out = self.encoder(signals, lead_mask=lead_mask, step_mask=step_mask)
        text = self.text_head(report_embeddings)  # (B, embed_dim)
        siglip = self.siglip(out.embedding, text, pair_weights)
        if self.config.mlm_weight > 0:
            target = patchify(signals, out.hidden.shape[1], enc.samples_per_step)  # (B, T, 12·S)
            mlm = masked_modelling_loss(self.reconstruct(out.hidden), target, step_mask)
        else:
            mlm = torch.zeros((), device=signals.device)
        return {"loss": siglip + self.config.mlm_weight * mlm, "siglip": siglip, "mlm": mlm}


class WarmupCosine:
    """LR factor: linear warm-up, then cosine decay to 0 at `total` steps.

    A callable object rather than a closure, so that LambdaLR checkpoints `warmup` and `total`: a
    time-budgeted run moves `total` as it measures its own speed (see `fit_horizon`).
    """

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup, self.total = warmup, total

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        progress = min((step - self.warmup) / max(self.total - self.warmup, 1), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def fit_horizon(schedule: WarmupCosine, config: PretrainConfig, step: int, seconds_left: float,
                seconds_per_step: float) -> None:
    """Make the cosine end when the time budget does: total = steps that still fit (capped by
    max_steps); warm-up shrinks with it while it is not over yet."""
    fits = step + int(max(seconds_left, 0.0) / max(seconds_per_step, 1e-6))
    schedule.total = max(min(config.max_steps, fits), step)
    if step < schedule.warmup:
        schedule.warmup = max(min(schedule.warmup, round(config.warmup_fraction * schedule.total)),
                              step)


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices/kernels only; norms, biases and scalar parameters are left alone."""
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


# ----------------------------------------------------------------------------- checkpoints


def save_checkpoint(accelerator: Accelerator, out: Path, state: dict) -> None:
    """Accelerate state + state.json into checkpoint/, swapped in atomically (a crash mid-save
    leaves the previous checkpoint intact)."""
    final, tmp, old = out / CHECKPOINT_DIR, out / f"{CHECKPOINT_DIR}.tmp", out / f"{CHECKPOINT_DIR}.old"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    if accelerator.is_main_process:
        (tmp / STATE_NAME).write_text(json.dumps(state))
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def load_checkpoint(accelerator: Accelerator, out: Path) -> dict | None:
    """Restore model/optimizer/scheduler/RNG from checkpoint/ and return its state.json."""
    final = out / CHECKPOINT_DIR
    if not (final / STATE_NAME).is_file():
        return None
    accelerator.load_state(str(final))
    return json.loads((final / STATE_NAME).read_text())


def export(model: PretrainModel, out: Path, history: list[dict]) -> None:
    """Write what later stages load: encoder/, text_head.safetensors, loss_curve.png."""
    model.encoder.save_pretrained(out / "encoder")
    model.text_head.save(out / "text_head.safetensors", text_encoder=model.config.text_encoder)
    if history:
        plot_loss_curve(history, out / "loss_curve.png")


def plot_loss_curve(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(history)
    fig, ax = plt.subplots(figsize=(7, 4))
    for column in ("loss", "siglip", "mlm"):
        ax.plot(frame["step"], frame[column], label=column)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("ECG–report pre-training")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------- the loop


@dataclass
class PretrainResult:
    """How a `pretrain` call ended."""

    out: Path
    step: int
    """Optimiser steps done in total (over all resumed invocations)."""
    finished: bool
    """True when max_steps was reached; False when stopped early (time budget / stop_after)."""
    history: list[dict]
    """Logged losses: step, loss, siglip, mlm, lr."""


def pretrain(
    config: PretrainConfig,
    data: PretrainData,
    out: str | Path,
    *,
    resume: bool = False,
    max_minutes: float | None = None,
    stop_after: int | None = None,
    report_encoder: ReportEncoder | None = None,
    progress: bool = True,
) -> PretrainResult:
    """Train (or resume) and export. `max_minutes` bounds this call's wall time (incl. the report
    cache and export) and fits the cosine schedule to it (re-estimated every 10 steps from the
    measured speed); `stop_after` bounds its steps. Either way a resumable checkpoint is left."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    started = time.monotonic()
    out = Path(out)
    if not resume and (out / CHECKPOINT_DIR).exists():
        raise FileExistsError(f"{out}: holds a checkpoint already; pass resume=True (--resume) "
                              "or choose another output folder")
    out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    accelerator = Accelerator(cpu=not cuda, mixed_precision="bf16" if cuda else "no")
    if accelerator.is_main_process:
        (out / "pretrain_config.json").write_text(json.dumps(config.to_dict(), indent=2))
    set_seed(config.seed)

    report_embeddings, report_row = cached_report_embeddings(
        data, config, out, report_encoder=report_encoder,
        log=progress and accelerator.is_main_process)
    keys = torch.as_tensor(report_row, dtype=torch.long)  # (N,) same value = same report
    model = PretrainModel(config, report_embeddings.shape[1])
    optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.lr,
                                  betas=config.betas)
    schedule = WarmupCosine(round(config.warmup_fraction * config.max_steps), config.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model, optimizer = accelerator.prepare(model, optimizer)
    # Not prepared: an AcceleratedScheduler would step once per process on multi-process runs.
    accelerator.register_for_checkpointing(scheduler)

    state = load_checkpoint(accelerator, out) if resume else None
    step, history = (state["step"], state["history"]) if state else (0, [])
    local = accelerator.unwrap_model(model)
    per_process = config.batch_size // accelerator.num_processes
    budget = None if max_minutes is None else max_minutes * 60.0 - EXPORT_RESERVE_S
    done_here, step_seconds, window_start = 0, 0.0, time.monotonic()
    bar = Progress(TextColumn("pre-training"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                   disable=not (progress and accelerator.is_main_process))
    with bar:
        task = bar.add_task("train", total=schedule.total, completed=step, info="")
        model.train()
        while step < schedule.total:
            if stop_after is not None and done_here >= stop_after:
                break
            elapsed = time.monotonic() - started
            if budget is not None and elapsed + step_seconds > budget:
                break
            losses = train_step(model, local, optimizer, scheduler, accelerator, config, data,
                                report_embeddings, keys, step, per_process)
            step += 1
            done_here += 1
            if done_here % 10 == 0:  # speed over the last 10 steps (includes checkpoint saves)
                step_seconds = (time.monotonic() - window_start) / 10
                window_start = time.monotonic()
                if budget is not None:
                    fit_horizon(schedule, config, step, budget - (time.monotonic() - started),
                                step_seconds)
                    bar.update(task, total=schedule.total)
            if step % config.log_every == 0 or step == schedule.total:
                record = {"step": step, **losses, "lr": scheduler.get_last_lr()[0]}
                history.append(record)
                bar.update(task, completed=step,
                           info=f"loss {record['loss']:.3f} (siglip {record['siglip']:.3f}, "
                                f"mlm {record['mlm']:.3f})")
            else:
                bar.update(task, completed=step)
            if step % config.checkpoint_every == 0 and step < schedule.total:
                save_checkpoint(accelerator, out, {"step": step, "history": history})
    save_checkpoint(accelerator, out, {"step": step, "history": history})
    if accelerator.is_main_process:
        export(local, out, history)
    accelerator.wait_for_everyone()
    return PretrainResult(out, step, step >= schedule.total, history)


def train_step(model: nn.Module, local: PretrainModel, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler, accelerator: Accelerator,
               config: PretrainConfig, data: PretrainData, report_embeddings: torch.Tensor,
               keys: torch.Tensor, step: int, per_process: int) -> dict[str, float]:
    """One optimiser step on this process's share of the step's batch."""
    generator = step_generator(config.seed, step)
    indices = batch_indices(len(data), config.batch_size, step, config.seed)
    indices = indices[accelerator.process_index :: accelerator.num_processes][:per_process]
    signals = random_crop(data.signals(indices), config.crop_samples, generator)  # (B, 12, n)
    x = torch.as_tensor(signals, device=accelerator.device)
    n_steps = config.encoder.steps_for(x.shape[-1])
    lead_mask = random_lead_mask(len(x), x.shape[1], config.lead_mask_prob, generator)
    step_mask = random_step_mask(len(x), n_steps, config.step_mask_prob, config.step_mask_span,
                                 generator)
    batch_keys = keys[indices]
    cached = report_embeddings[batch_keys]  # (B, text_dim), frozen encoder: the search space
    weights = negative_pair_weights(cached, config.negative_threshold, batch_keys)  # (B, B)
    with accelerator.autocast():
        if local.text_encoder is not None:  # tuned: embed this batch's reports afresh
            reports = local.text_encoder([data.report_keys[i] for i in indices])
        else:
            reports = cached.to(x.device)
        losses = model(x, reports, weights.to(x.device), lead_mask.to(x.device),
                       step_mask.to(x.device))
    optimizer.zero_grad(set_to_none=True)
    accelerator.backward(losses["loss"])
    if config.grad_clip:
        accelerator.clip_grad_norm_(local.parameters(), config.grad_clip)
    optimizer.step()
    scheduler.step()
    return {name: float(value.detach()) for name, value in losses.items()}
