"""Beat-interval (RR) statistics added to the encoder's embedding z_e (beyond the paper).

Why: rhythm is judged on RR intervals across a breath, and the convolutional encoder does not learn
them within the CPU pre-training budget. Measured on the demo's benchmark after 691 steps, sinus
arrhythmia scores zero-shot AUC 0.71 and linear-probe 0.66 on synthetic ECGs, and 0.31-0.58 on the
100 real PTB-XL records (docs/experiments/encoder-pretraining.md), where every other rhythm scores
0.85-1.00. Longer crops lost more steps than they gained (`runs/crop`). RR intervals are measured
the same way on synthetic and real recordings, so what the encoder learns from them on synthetic
ECGs should carry over.

The QRS detector is the one `measurements/beats.py` uses (peaks of the median over leads of the
band-passed slope, at least 250 ms apart), run at 125 Hz on a whole batch: scipy's `find_peaks`
per record would cost about a fifth of a pre-training step on 2 cores, and no maintained library
detects beats in a (batch, lead, time) tensor, so this is hand-written.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as nnf

from qheart.data.leads import SAMPLE_RATE_HZ

FEATURE_NAMES = ("log_rr_mean", "rr_cv", "rr_range", "rr_rmssd", "premature_share",
                 "successive_over_spread", "measured")
"""The mean RR as a log ratio to 0.8 s; spread, range and RMSSD relative to the mean RR, so
they do not depend on the rate; `measured` is 0 (and every feature 0) when fewer than three
beats were found."""

DECIMATION = 4
"""500 Hz → 125 Hz: the QRS band (5-30 Hz) is far below the new Nyquist frequency."""
REFRACTORY_S = 0.25
"""Two QRS complexes are never closer (240/min), as in `measurements.beats.detect_qrs`."""
EDGE_S = 0.04
"""Peaks this close to either end are cut complexes or filter edge effects, not beats."""
PEAK_HEIGHT = 0.3
"""A peak counts when it reaches this share of the record's 99.5th-percentile slope energy."""


def _qrs_energy(signals: torch.Tensor, rate: float) -> torch.Tensor:
    """(B, 12, n) mV at `rate` → (B, m) slope energy at rate / DECIMATION (peaks at QRS)."""
    x = signals.float()
    m = x.shape[-1] // DECIMATION
    # A block mean before decimating is the anti-alias filter: muscle noise does not fold down.
    x = x[..., : m * DECIMATION].reshape(*x.shape[:-1], m, DECIMATION).mean(-1)
    fs = rate / DECIMATION
    spectrum = torch.fft.rfft(x - x.mean(-1, keepdim=True))
    freqs = torch.fft.rfftfreq(m, 1.0 / fs).to(x.device)
    band = torch.fft.irfft(spectrum * ((freqs >= 5.0) & (freqs <= 30.0)), m)
    slope = band.diff(dim=-1).abs()
    slope = slope / (slope.mean(-1, keepdim=True) + 1e-9)  # each lead on its own scale
    median = slope.median(dim=1).values  # (B, m - 1): an artefact in a few leads is outvoted
    width = max(1, round(0.08 * fs)) | 1  # 80 ms, odd
    return nnf.avg_pool1d(median[:, None], width, 1, width // 2, count_include_pad=False)[:, 0]


def _peaks(energy: torch.Tensor, fs: float) -> list[torch.Tensor]:
    """Per record, peak times in seconds (sub-sample by a parabola through the top three)."""
    half = round(REFRACTORY_S * fs)
    local_max = nnf.max_pool1d(energy[:, None], 2 * half + 1, 1, half)[:, 0]
    height = PEAK_HEIGHT * torch.quantile(energy, 0.995, dim=-1, keepdim=True)
    edge = round(EDGE_S * fs)
    is_peak = (energy == local_max) & (energy >= height) & (energy > 1e-6)  # a flat line has none
    is_peak[:, :edge] = False
    is_peak[:, energy.shape[-1] - edge:] = False
    out = []
    for row, flags in zip(energy, is_peak, strict=True):
        idx = torch.nonzero(flags)[:, 0]
        if len(idx) > 1:  # a flat top gives equal neighbours: keep the first of each run
            idx = idx[torch.cat([idx.new_ones(1, dtype=torch.bool), idx.diff() > half])]
        left, mid, right = row[idx - 1], row[idx], row[idx + 1]
        curvature = left - 2 * mid + right
        shift = torch.where(curvature < 0, 0.5 * (left - right) / curvature.clamp(max=-1e-9), 0.0)
        out.append((idx.float() + shift.clamp(-0.5, 0.5)) / fs)
    return out


def _interval_stats(beats_s: torch.Tensor) -> torch.Tensor:
    """Peak times (s) → the FEATURE_NAMES vector, scaled to order one."""
    rr = beats_s.diff()
    if len(rr) < 2:
        return beats_s.new_zeros(len(FEATURE_NAMES))
    mean = rr.mean()
    spread = rr.std(unbiased=False)
    rmssd = rr.diff().pow(2).mean().sqrt()
    premature = (rr < 0.85 * rr.median()).float().mean()
    return torch.stack([
        torch.log(mean / 0.8),
        10 * spread / mean,
        5 * (rr.max() - rr.min()) / mean,
        10 * rmssd / mean,
        premature,
        (rmssd / (math.sqrt(2) * spread + 1e-3)).clamp(max=2.0),
        mean.new_ones(()),
    ])


@torch.no_grad()
def rr_features(signals: torch.Tensor, sample_rate: float = SAMPLE_RATE_HZ) -> torch.Tensor:
    """(B, 12, n) ECGs in mV → (B, len(FEATURE_NAMES)) RR statistics. Under a second of signal
    holds no three beats: all zero, as for any record where fewer than three were found."""
    if signals.ndim != 3:
        raise ValueError(f"expected (B, leads, n) ECGs, got {tuple(signals.shape)}")
    if signals.shape[-1] < sample_rate:
        return torch.zeros(len(signals), len(FEATURE_NAMES), device=signals.device)
    fs = sample_rate / DECIMATION
    peaks = _peaks(_qrs_energy(signals, sample_rate), fs)
    return torch.stack([_interval_stats(p) for p in peaks]).to(signals.device)


class RhythmHead(nn.Module):
    """RR statistics → a vector added to z_e. The last layer starts at zero, so switching the
    head on leaves a fresh encoder's embeddings as they were and training decides its weight."""

    def __init__(self, embed_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(len(FEATURE_NAMES), hidden), nn.GELU(),
                                 nn.Linear(hidden, embed_dim))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, signals: torch.Tensor) -> torch.Tensor:
        features = rr_features(signals).to(self.mlp[0].weight.dtype)
        return self.mlp(features)
