"""Measurement tokens: ECG measurements added to the 12 prefix tokens as numbers, not text
(beyond the paper; issue 13's measurements, second form).

Why numbers: put in the prompt as a text block, the measurements were not read. On 2 CPU cores the
LLM does not learn to copy from its context in the few hundred steps it gets
(docs/experiments/measurements-in-the-prompt.md). Here they enter the prefix as embeddings, like the
lead tokens: token i gets an MLP of the global values (rate, RR variability, P, PR, QRS, QT, QTc,
axis; each numeric feature's below/within/above class from the one reference table) together with
lead i's own (ST level, T amplitude and polarity, signal quality). A NaN (a value `measure_ecg`
could not trust) enters as 0 with a flag that says so, never as a number.

They are measured inside the forward pass from the same signals the encoder sees, so every path
that builds a prefix (training, ranking, generation, the API) gets them without extra inputs. The
price is `measure_ecg` on each distinct ECG of a batch: about 0.14 s per ECG on one CPU core.

They join the prefix before its norm. Measured there (docs/experiments/instruction-tuning.md,
`runs/h14`) they cost query EM; the lead tokens, which started in the same place, were drowned there
by the mapper's signal.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from qheart.data.leads import N_LEADS
from qheart.measurements import Measurements, measure_ecg
from qheart.measurements.measure import FEATURE_FIELDS, INTERVALS
from qheart.measurements.reference import RANGE_LABELS
from qheart.models.mapper import Standardiser

LEAD_VALUES = ("st_mv", "t_mv", "quality")
T_POLARITIES = ("positive", "negative", "biphasic", "flat")
QUALITY_LABELS = ("good", "noisy", "flat", "missing")
N_VALUES = len(INTERVALS) + len(LEAD_VALUES)
N_CLASSES = len(FEATURE_FIELDS) * len(RANGE_LABELS) + len(T_POLARITIES) + len(QUALITY_LABELS)


def _one_hot(value: str | None, classes: tuple[str, ...]) -> list[float]:
    return [float(value == c) for c in classes]


def measurement_arrays(m: Measurements) -> tuple[np.ndarray, np.ndarray]:
    """(12, N_VALUES) numbers (NaN where untrusted) and (12, N_CLASSES) one-hot classes; the
    global part is the same in every lead's row."""
    global_values = [getattr(m, name) for name in INTERVALS]
    ranges = [x for f in FEATURE_FIELDS for x in _one_hot(m.range_label(f), RANGE_LABELS)]
    by_lead = list(m.leads) or [None] * N_LEADS
    values = np.full((N_LEADS, N_VALUES), np.nan)
    classes = np.zeros((N_LEADS, N_CLASSES))
    for i, lead in enumerate(by_lead):
        own = [math.nan] * len(LEAD_VALUES) if lead is None else [
            getattr(lead, name) for name in LEAD_VALUES]
        values[i] = global_values + own
        classes[i] = ranges + _one_hot(lead and lead.t_polarity, T_POLARITIES) \
            + _one_hot(lead and lead.quality_label, QUALITY_LABELS)
    return values, classes


@torch.no_grad()
def measure_signals(signals: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(U, 12, n) canonical ECGs → (U, 12, N_VALUES) values with NaNs, (U, 12, N_CLASSES)."""
    pairs = [measurement_arrays(measure_ecg(ecg)) for ecg in signals.detach().cpu().numpy()]
    values = torch.tensor(np.stack([v for v, _ in pairs]), dtype=torch.float32)
    classes = torch.tensor(np.stack([c for _, c in pairs]), dtype=torch.float32)
    return values.to(signals.device), classes.to(signals.device)


class MeasurementTokens(nn.Module):
    """(U, 12, n) ECGs → (U, 12, d′), added to the prefix before its norm."""

    def __init__(self, d_llm: int, hidden: int = 64) -> None:
        super().__init__()
        self.standardise = Standardiser((N_LEADS, N_VALUES))
        self.mlp = nn.Sequential(nn.Linear(2 * N_VALUES + N_CLASSES, hidden), nn.GELU(),
                                 nn.Linear(hidden, d_llm))

    @torch.no_grad()
    def fit(self, values: torch.Tensor) -> None:
        """Mean and spread of each value over training ECGs (N, 12, N_VALUES), NaNs left out."""
        seen = ~torch.isnan(values)
        count = seen.sum(0).clamp_min(1)
        mean = torch.where(seen, values, 0.0).sum(0) / count
        var = torch.where(seen, (values - mean) ** 2, 0.0).sum(0) / (count - 1).clamp_min(1)
        self.standardise.mean.copy_(mean)
        self.standardise.std.copy_(var.sqrt().clamp_min(1e-6))

    def inputs(self, values: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        missing = torch.isnan(values)
        z = torch.where(missing, 0.0, self.standardise(values))
        return torch.cat([z, missing.float(), classes], dim=-1)

    def forward(self, signals: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.inputs(*measure_signals(signals)))
