"""Report captioning: a first stage in which the LLM learns to read the ECG prefix by writing
the ECG's own report from it (the projector stage of LLaVA-style training; not in the Q-HEART
paper, a CPU lever).

Why: an ECG-QA answer supervises about one decisive token per question, so on 2 CPU cores
instruction tuning sees too few of them for the LLM to start reading the 12 prefix tokens. A
report supervises 20–40 tokens that all depend on the ECG, and a step costs about what a
question-only step costs. The prompt has the ECG and no retrieved report (with one, the model
would learn to copy it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from qheart.data.store import SignalStore
from qheart.models.prompts import ECG_MARKER, PromptText, PromptTokenizer, pad_right
from qheart.models.qheart_model import QHeartModel
from qheart.training.instruct_data import Batch, unique_signals

CAPTION_REQUEST = "Question: Write the report of this ECG."
MAX_REPORT_TOKENS = 48
"""Longer reports are cut: their tail (lead lists) costs tokens and teaches least."""


@dataclass(frozen=True)
class CaptionResult:
    steps: int
    loss_start: float
    """Mean report-token loss over the first 10 steps."""
    loss_end: float
    """Mean report-token loss over the last 10 steps."""
    n_ecgs: int
    seconds: float


def caption_batch(store: SignalStore, rows: np.ndarray, reports: Sequence[str],
                  prompts: PromptTokenizer) -> Batch:
    """One context (chat head + ECG prefix) and one tail (request + report) per ECG; labels on
    the report. Nothing is shared, so the model takes its whole-sequence path."""
    text = PromptText(f"ECG: {ECG_MARKER}", CAPTION_REQUEST)
    context, prefix_start = prompts.context(text)
    request = prompts.question(text)
    tails, labels = [], []
    for report in reports:
        answer = prompts.answer(report)
        if len(answer) > MAX_REPORT_TOKENS:
            answer = answer[:MAX_REPORT_TOKENS]
        tails.append(request + answer)
        labels.append([-100] * len(request) + answer)
    n = len(reports)
    context_ids, context_mask = pad_right([context] * n, prompts.placeholder_id)
    tail_ids, tail_mask = pad_right(tails, prompts.placeholder_id)
    padded_labels, _ = pad_right(labels, -100)
    signals, ecg_index = unique_signals(store, np.asarray(rows))
    return Batch(context_ids, context_mask, torch.full((n,), prefix_start), signals, ecg_index,
                 tail_ids, tail_mask, padded_labels, torch.arange(n))


def caption_stage(model: QHeartModel, optimizer: torch.optim.Optimizer, store: SignalStore,
                  rows: np.ndarray, reports: Sequence[str], prompts: PromptTokenizer, *,
                  steps: int, batch_size: int, seed: int, grad_clip: float = 1.0,
                  progress: bool = False) -> CaptionResult:
    """Train what `optimizer` holds (LoRA and the ECG path; a stage-only optimiser: instruction
    tuning starts its own moments and warm-up) on report writing for `steps` steps, linear
    warm-up over the first 10% then constant. `rows`/`reports`: ECGs with a report."""
    import time

    from tqdm.auto import tqdm

    if not len(rows):
        raise ValueError("report captioning needs ECGs with reports: none of the training ECGs "
                         "has one (use --set caption_steps=0)")
    started = time.monotonic()
    peaks = [group["lr"] for group in optimizer.param_groups]
    warmup = max(steps // 10, 1)
    rng = np.random.default_rng([seed, 23])
    trainable = [p for p in model.parameters() if p.requires_grad]
    was_training = model.training
    model.train()
    losses: list[float] = []
    bar = tqdm(range(steps), desc="report captioning", unit="step", disable=not progress)
    for step in bar:
        for group, peak in zip(optimizer.param_groups, peaks, strict=True):
            group["lr"] = peak * min(1.0, (step + 1) / warmup)
        pick = np.sort(rng.choice(len(rows), size=min(batch_size, len(rows)), replace=False))
        batch = caption_batch(store, rows[pick], [reports[i] for i in pick], prompts)
        loss = model(**batch.as_kwargs())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
        optimizer.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.train(was_training)
    return CaptionResult(steps, float(np.mean(losses[:10])), float(np.mean(losses[-10:])),
                         len(rows), round(time.monotonic() - started, 1))
