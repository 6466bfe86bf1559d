"""Learning-rate schedule shared by every training loop: linear warm-up, cosine decay, and a
horizon that a time budget can move."""

from __future__ import annotations

import math

import torch


class WarmupCosine:
    """LR factor: linear warm-up, then cosine decay to 0 at `total` steps.

    A callable object rather than a closure, so that LambdaLR's state_dict holds `warmup` and
    `total` (plain numbers, saved as JSON): a time-budgeted run moves `total` as it measures its
    own speed (see `fit_horizon`).
    """

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup, self.total = warmup, total

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        progress = min((step - self.warmup) / max(self.total - self.warmup, 1), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(optimizer: torch.optim.Optimizer, max_steps: int, warmup_fraction: float
                  ) -> tuple[torch.optim.lr_scheduler.LambdaLR, WarmupCosine]:
    """The scheduler and its (mutable) schedule for a run of `max_steps`."""
    schedule = WarmupCosine(round(warmup_fraction * max_steps), max_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), schedule


def fit_horizon(schedule: WarmupCosine, *, max_steps: int, warmup_fraction: float, step: int,
                seconds_left: float, seconds_per_step: float) -> None:
    """Make the cosine end when the time budget does: total = steps that still fit (capped by
    max_steps); warm-up shrinks with it while it is not over yet."""
    fits = step + int(max(seconds_left, 0.0) / max(seconds_per_step, 1e-6))
    schedule.total = max(min(max_steps, fits), step)
    if step < schedule.warmup:
        schedule.warmup = max(min(schedule.warmup, round(warmup_fraction * schedule.total)), step)


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices/kernels only; norms, biases and scalar parameters are left alone."""
    decay, no_decay = [], []
    for _, param in model.named_parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]
