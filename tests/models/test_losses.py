"""SigLIP loss with pair masking (search-based negatives), the statement-level loss and the masked
ECG modelling loss."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from qheart.models.losses import (
    SigLIPLoss,
    StatementLoss,
    masked_modelling_loss,
    negative_pair_weights,
    patchify,
)


def test_siglip_prefers_matched_pairs() -> None:
    torch.manual_seed(0)
    text = F.normalize(torch.randn(8, 16), dim=-1)
    loss = SigLIPLoss()
    aligned = loss(text + 0.01 * torch.randn(8, 16), text)
    shuffled = loss(text[torch.randperm(8)], text)
    assert aligned < shuffled


def test_siglip_matches_the_formula_and_trains_temperature_and_bias() -> None:
    torch.manual_seed(0)
    ecg, text = torch.randn(4, 8), torch.randn(4, 8)
    loss = SigLIPLoss(init_temperature=5.0, init_bias=-2.0)
    value = loss(ecg, text)
    logits = 5.0 * F.normalize(ecg, dim=-1) @ F.normalize(text, dim=-1).T - 2.0
    labels = 2 * torch.eye(4) - 1
    expected = -F.logsigmoid(labels * logits).sum() / 4
    torch.testing.assert_close(value, expected)
    value.backward()
    assert loss.log_temperature.grad is not None and loss.log_temperature.grad != 0
    assert loss.bias.grad is not None and loss.bias.grad != 0
    assert math.isclose(loss.log_temperature.exp().item(), 5.0, rel_tol=1e-6)


def test_dropped_pairs_contribute_nothing() -> None:
    torch.manual_seed(0)
    ecg, text = torch.randn(3, 8), torch.randn(3, 8)
    loss = SigLIPLoss()
    weights = torch.ones(3, 3)
    weights[0, 1] = weights[1, 0] = 0.0
    masked = loss(ecg, text, weights)
    per_pair = -F.logsigmoid((2 * torch.eye(3) - 1) * loss.logits(ecg, text))
    torch.testing.assert_close(masked, (per_pair * weights).sum() / 3)
    assert masked < loss(ecg, text)


def test_an_ecg_without_a_report_leaves_the_siglip_loss_of_the_others_unchanged() -> None:
    torch.manual_seed(1)
    ecg, text = torch.randn(4, 8), torch.randn(4, 8)
    loss = SigLIPLoss()
    paired = torch.tensor([1.0, 1.0, 0.0, 1.0])  # ECG 2 has no report
    weights = paired[:, None] * paired[None, :]
    keep = torch.tensor([0, 1, 3])
    torch.testing.assert_close(loss(ecg, text, weights), loss(ecg[keep], text[keep]))


def test_near_identical_reports_are_not_negatives() -> None:
    emb = torch.tensor([[1.0, 0.0], [0.999, 0.04], [0.0, 1.0], [0.0, 1.0]])
    keys = torch.tensor([0, 1, 2, 3])
    weights = negative_pair_weights(emb, threshold=0.95, report_keys=keys)
    assert weights[0, 1] == weights[1, 0] == 0  # cosine ≈ 0.999
    assert weights[2, 3] == weights[3, 2] == 0  # identical embedding
    assert weights[0, 2] == 1 and weights[1, 3] == 1
    assert torch.all(torch.diag(weights) == 1)
    # Identical normalised text counts even when the embeddings differ.
    keyed = negative_pair_weights(torch.eye(3), threshold=0.95, report_keys=torch.tensor([5, 5, 6]))
    assert keyed[0, 1] == 0 and keyed[0, 2] == 1


def test_patchify_groups_the_samples_under_each_step() -> None:
    x = torch.arange(2 * 3 * 20, dtype=torch.float32).reshape(2, 3, 20)
    patches = patchify(x, n_steps=4, samples_per_step=5)
    assert patches.shape == (2, 4, 15)
    torch.testing.assert_close(patches[1, 2], torch.cat([x[1, lead, 10:15] for lead in range(3)]))


def test_masked_modelling_loss_counts_masked_steps_only() -> None:
    torch.manual_seed(0)
    target, prediction = torch.randn(2, 6, 10), torch.randn(2, 6, 10)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[:, :2] = True
    base = masked_modelling_loss(prediction, target, mask)
    changed = prediction.clone()
    changed[:, 3:] += 5.0  # unmasked steps
    assert masked_modelling_loss(changed, target, mask) == base
    normalised = (target - target.mean(-1, keepdim=True)) / target.var(-1, keepdim=True).add(1e-6).sqrt()
    assert masked_modelling_loss(normalised, target, mask) < 1e-6
    with pytest.raises(ValueError, match="prediction"):
        masked_modelling_loss(prediction[:, :5], target, mask)


def test_statement_loss_rewards_ecgs_near_the_statements_their_reports_make() -> None:
    statements = torch.eye(3, 4)  # three orthogonal statements
    targets = torch.tensor([[True, False, True], [False, True, False]])
    loss = StatementLoss()
    aligned = loss(torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 0]]), statements, targets)
    crossed = loss(torch.tensor([[0, 1.0, 0, 0], [1, 0, 1, 0]]), statements, targets)
    assert aligned < crossed
    # the formula: summed over statements, averaged over ECGs
    ecg = F.normalize(torch.randn(2, 4), dim=-1)
    logits = ecg @ statements.T * 10.0 - 3.0
    expected = -F.logsigmoid(torch.where(targets, logits, -logits)).sum(-1).mean()
    torch.testing.assert_close(loss(ecg, statements, targets), expected)


def test_statement_loss_leaves_out_ecgs_without_a_report() -> None:
    statements, loss = torch.randn(3, 4), StatementLoss()
    ecg, targets = torch.randn(2, 4), torch.tensor([[True, False, False], [False, False, False]])
    alone = loss(ecg[:1], statements, targets[:1])
    torch.testing.assert_close(loss(ecg, statements, targets, torch.tensor([True, False])), alone)
    with pytest.raises(ValueError, match="targets"):
        loss(ecg, statements, targets[:, :2])
