"""Pre-training losses: SigLIP sigmoid contrastive loss (ECG ↔ report), its statement-level
form (ECG ↔ each statement of the batch's reports) and masked ECG modelling."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class SigLIPLoss(nn.Module):
    """Pairwise sigmoid loss (Zhai et al. 2023) with learnable temperature and bias.

    Every (ECG i, report j) pair is an independent binary decision: matched (i = j) or not. A pair
    weight matrix lets the caller drop pairs — search-based negative sampling uses it so that
    near-identical reports are never pushed apart as negatives.
    """

    def __init__(self, init_temperature: float = 10.0, init_bias: float = -10.0) -> None:
        super().__init__()
        self.log_temperature = nn.Parameter(torch.tensor(math.log(init_temperature)))
        self.bias = nn.Parameter(torch.tensor(init_bias))

    def logits(self, ecg: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """(B, d) × (B, d) → (B, B) logits; both sides are L2-normalised here."""
        ecg, text = F.normalize(ecg, dim=-1), F.normalize(text, dim=-1)
        return ecg @ text.T * self.log_temperature.exp() + self.bias  # (B, B)

    def forward(self, ecg: torch.Tensor, text: torch.Tensor,
                pair_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Mean over ECGs of the summed pair losses. pair_weights: (B, B), 0 drops a pair; an
        ECG whose true pair (diagonal) is dropped is out of the mean (an ECG without a report)."""
        if ecg.shape[0] != text.shape[0]:
            raise ValueError(f"{ecg.shape[0]} ECGs but {text.shape[0]} reports")
        logits = self.logits(ecg.float(), text.float())  # (B, B)
        labels = 2.0 * torch.eye(len(logits), device=logits.device) - 1.0  # +1 diag, -1 off
        loss = -F.logsigmoid(labels * logits)  # (B, B)
        if pair_weights is None:
            return loss.sum() / len(logits)
        counted = (pair_weights.diagonal() > 0).sum().clamp(min=1)
        return (loss * pair_weights).sum() / counted


class StatementLoss(nn.Module):
    """Sigmoid loss of every ECG against every statement occurring in the batch's reports:
    positive where the ECG's own report states it (KAD/MERL-style statement alignment).

    Why beside the report-level SigLIP: a report embeds as the mean of its statements, so a rare
    finding ("Lateral infarct - old") is a small part of a few reports and its own direction is
    barely trained; zero-shot then scores it at chance even on the synthetic ECGs a probe
    separates. Here each statement is its own binary target, with all other ECGs of the batch as
    negatives, the very comparison zero-shot prompting makes.
    """

    def __init__(self, init_temperature: float = 10.0, init_bias: float = -3.0) -> None:
        super().__init__()
        self.log_temperature = nn.Parameter(torch.tensor(math.log(init_temperature)))
        self.bias = nn.Parameter(torch.tensor(init_bias))

    def forward(self, ecg: torch.Tensor, statements: torch.Tensor, targets: torch.Tensor,
                counted: torch.Tensor | None = None) -> torch.Tensor:
        """ecg (B, d), statements (S, d), targets (B, S) bool → mean over counted ECGs of the
        summed statement losses. counted: (B,) bool, False for an ECG without a report."""
        if targets.shape != (ecg.shape[0], statements.shape[0]):
            raise ValueError(f"targets {tuple(targets.shape)} for {ecg.shape[0]} ECGs and "
                             f"{statements.shape[0]} statements")
        ecg, statements = F.normalize(ecg.float(), dim=-1), F.normalize(statements.float(), dim=-1)
        logits = ecg @ statements.T * self.log_temperature.exp() + self.bias  # (B, S)
        loss = -F.logsigmoid((2.0 * targets.float() - 1.0) * logits).sum(-1)  # (B,)
        if counted is None:
            return loss.mean()
        weights = counted.float()
        return (loss * weights).sum() / weights.sum().clamp(min=1.0)


def negative_pair_weights(report_embeddings: torch.Tensor, threshold: float,
                          report_keys: torch.Tensor | None = None) -> torch.Tensor:
    """(B, B) weights: 0 where two *different* items have near-identical reports, else 1.

    Near-identical = cosine of the (unit-norm) report embeddings ≥ threshold, or the same
    normalised report text (equal `report_keys`). The diagonal (the true pairs) always stays 1.
    """
    emb = F.normalize(report_embeddings.float(), dim=-1)
    duplicate = emb @ emb.T >= threshold  # (B, B)
    if report_keys is not None:
        duplicate |= report_keys[:, None] == report_keys[None, :]
    duplicate.fill_diagonal_(False)
    return (~duplicate).float()


def patchify(signals: torch.Tensor, n_steps: int, samples_per_step: int) -> torch.Tensor:
    """(B, L, n) signal → (B, T, L·S) targets: the S samples of every lead under each step."""
    b, leads, _ = signals.shape
    x = signals[..., : n_steps * samples_per_step].reshape(b, leads, n_steps, samples_per_step)
    return x.permute(0, 2, 1, 3).reshape(b, n_steps, leads * samples_per_step)  # (B, T, L·S)


def masked_modelling_loss(prediction: torch.Tensor, target: torch.Tensor,
                          step_mask: torch.Tensor, normalise_target: bool = True) -> torch.Tensor:
    """MSE on the masked steps only (MAE-style). prediction, target: (B, T, P); step_mask: (B, T).

    With `normalise_target`, each target patch is standardised first, so the loss rewards shape
    (waves, intervals) rather than amplitude, and flat patches don't dominate.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} vs target {tuple(target.shape)}")
    target = target.float()
    if normalise_target:
        mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
    per_step = (prediction.float() - target).pow(2).mean(-1)  # (B, T)
    mask = step_mask.float()
    return (per_step * mask).sum() / mask.sum().clamp(min=1.0)
