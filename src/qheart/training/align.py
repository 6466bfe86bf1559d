"""Prefix alignment: a first stage that teaches the ECG path to speak in the LLM's input
embeddings before instruction tuning, without one pass through the LLM.

The c prefix embeddings of an ECG are pulled (cosine) towards the LLM's own input embeddings of
the first c tokens of that ECG's report. The prefix then starts out as a blurred copy of a
report — text the LLM already embeds — instead of noise it must learn to decode from answer
tokens alone, one bit per yes/no question. Instruction tuning then teaches the LLM to read a
report once, for both the retrieved report in the prompt and the prefix. On 2 CPU cores a
step costs an encoder pass over a batch of ECGs (milliseconds), not a 10-layer LLM pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from qheart.models.qheart_model import QHeartModel


@dataclass(frozen=True)
class AlignResult:
    steps: int
    loss_start: float
    """Mean cosine distance over the first 10 steps."""
    loss_end: float
    """Mean cosine distance over the last 10 steps."""
    n_ecgs: int


def report_targets(tokenizer, table: torch.Tensor, reports: Sequence[str], n_prefix: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, c, d′) input embeddings of each report's first c tokens and a (N, c) mask of the
    positions a report fills (short reports leave the tail free)."""
    targets = torch.zeros(len(reports), n_prefix, table.shape[1])
    mask = torch.zeros(len(reports), n_prefix, dtype=torch.bool)
    for i, report in enumerate(reports):
        ids = tokenizer(report, add_special_tokens=False)["input_ids"][:n_prefix]
        if ids:
            targets[i, : len(ids)] = table[torch.as_tensor(ids)].float()
            mask[i, : len(ids)] = True
    return targets, mask


def cosine_distance(prefix: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
                    ) -> torch.Tensor:
    """Mean 1 − cos over the filled positions."""
    cos = F.cosine_similarity(prefix, targets, dim=-1)  # (B, c)
    return (1.0 - cos)[mask].mean()


def align_prefix(model: QHeartModel, signals: Callable[[np.ndarray], np.ndarray],
                 reports: Sequence[str], tokenizer, *, steps: int, batch_size: int, lr: float,
                 seed: int, progress: bool = False) -> AlignResult:
    """Train the encoder (unless frozen) and the prefix parts (mapper, skip, ..., prefix norm) of
    `model` for `steps` steps. `signals(indices)` returns (B, 12, n) ECGs of the reports at `indices`."""
    from tqdm.auto import tqdm

    table = model.causal_lm.get_input_embeddings().weight.detach()
    targets, mask = report_targets(tokenizer, table, reports, model.config.n_prefix)
    keep = np.flatnonzero(mask.any(dim=1).numpy())
    if not len(keep):
        raise ValueError("prefix alignment needs reports: none of the training ECGs has one")
    parts = model.prefix_parts()
    if not model.config.freeze_encoder:
        parts.append(model.encoder)
    params = [p for part in parts for p in part.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps,
                                                   pct_start=0.1)
    rng = np.random.default_rng([seed, 17])
    was_training = model.training
    model.train()
    losses: list[float] = []
    bar = tqdm(range(steps), desc="prefix alignment", unit="step", disable=not progress)
    for _ in bar:
        pick = np.sort(rng.choice(keep, size=min(batch_size, len(keep)), replace=False))
        prefix = model.prefix(torch.from_numpy(signals(pick)))
        loss = cosine_distance(prefix.float(), targets[pick], mask[pick])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.train(was_training)
    return AlignResult(steps, float(np.mean(losses[:10])), float(np.mean(losses[-10:])),
                       len(keep))
