"""Lead tokens: per-lead signal-quality features and lead names added to the 12 prefix tokens
(beyond the paper).

Why: a quarter of ECG-QA asks about recording noise lead by lead ("Does lead V1 show static
noise?"), and the contrastively pre-trained encoder does not see it. Measured on the demo's encoder,
a linear probe reads static noise at AUC 0.52 and burst noise at 0.53
(docs/experiments/encoder-pretraining.md). Its first convolution mixes all 12 leads, and reports
rarely mention noise, so nothing in pre-training rewards keeping it. These features are measured
directly, and each one goes to the prefix token of its own lead:

- `hf_floor`: RMS above 40 Hz in the median 0.25-s window (muscle/EMG and mains hum: static
  noise). The median, not the whole record: in real ECGs the QRS complexes carry most of that
  band, and on the 100 real PTB-XL records the floor finds the leads labelled static noise at
  AUC 0.79 where the whole record's RMS reaches 0.55;
- `hf_burst`: the loudest 0.25-s window of that band over the median one (burst noise);
- `wander`: RMS below 0.7 Hz (baseline drift);
- `dropout`: the quietest 1.2-s window of the 0.7-40 Hz band over the median window (a lead
  going flat while an electrode is loose; 1.2 s holds a beat at any rate from 50/min, so a clean
  lead has no quiet window, and a loose electrode's 1.6-3.5 s gap holds one after its step);
- `ecg_level`: RMS in 0.7-40 Hz, the lead's own signal, the scale for the others.

All are logarithms, measured with one FFT per batch. No maintained library returns band powers
for a (batch, lead, time) tensor inside the model's forward pass, so this is hand-written.

Token i is lead i (I, II, …, V6). Each token also carries the LLM's own input embedding of its
lead's name, so "lead V1" in a question and the V1 token start out alike.
"""

from __future__ import annotations

import torch
from torch import nn

from qheart.data.leads import LEADS, N_LEADS, SAMPLE_RATE_HZ
from qheart.models.mapper import Standardiser

FEATURE_NAMES = ("hf_floor", "hf_burst", "wander", "dropout", "ecg_level")
_EPS_MV = 1e-4


def _band(spectrum: torch.Tensor, freqs: torch.Tensor, low: float, high: float, n: int
          ) -> torch.Tensor:
    return torch.fft.irfft(spectrum * ((freqs >= low) & (freqs < high)), n)


def _window_rms(x: torch.Tensor, width: int, hop: int) -> torch.Tensor:
    """(…, W) RMS per window of `width` samples, one every `hop`."""
    return x.unfold(-1, width, hop).pow(2).mean(-1).sqrt()


@torch.no_grad()
def lead_signal_features(signals: torch.Tensor, sample_rate: int = SAMPLE_RATE_HZ
                         ) -> torch.Tensor:
    """(U, 12, n) ECGs in mV → (U, 12, 5) log-features, in FEATURE_NAMES order."""
    x = signals.float()
    n = x.shape[-1]
    if n < 2 * sample_rate:
        raise ValueError(f"lead features need at least 2 s of signal; got {n} samples")
    x = x - x.mean(-1, keepdim=True)
    spectrum = torch.fft.rfft(x)
    freqs = torch.fft.rfftfreq(n, 1.0 / sample_rate).to(x.device)
    high = _band(spectrum, freqs, 40.0, float("inf"), n)
    low = _band(spectrum, freqs, 0.0, 0.7, n)
    mid = _band(spectrum, freqs, 0.7, 40.0, n)
    rms = lambda v: v.pow(2).mean(-1).sqrt()  # noqa: E731
    hf_windows = _window_rms(high, sample_rate // 4, sample_rate // 4)
    hf_floor = hf_windows.median(-1).values
    ecg_windows = _window_rms(mid, int(1.2 * sample_rate), sample_rate // 10)
    log = lambda v: torch.log(v + _EPS_MV)  # noqa: E731
    return torch.stack([
        log(hf_floor),
        log(hf_windows.amax(-1)) - log(hf_floor),
        log(rms(low)),
        log(ecg_windows.amin(-1)) - log(ecg_windows.median(-1).values),
        log(rms(mid)),
    ], dim=-1)


class LeadTokens(nn.Module):
    """(U, 12, n) ECGs → (U, 12, d′): standardised lead features through a small MLP and a norm
    of their own, plus `names`; both are added to the normed prefix, at the LLM's embedding scale.

    Their own norm, because added before the prefix's norm the features were drowned by the
    mapper's and the skip's ECG-wide signal: on a 340-step model a linear probe on the prefix
    tokens found the static-noise leads at AUC 0.65, where the raw feature alone gives 0.99."""

    def __init__(self, d_llm: int, hidden: int = 64) -> None:
        super().__init__()
        self.standardise = Standardiser((N_LEADS, len(FEATURE_NAMES)))
        self.mlp = nn.Sequential(nn.Linear(len(FEATURE_NAMES), hidden), nn.GELU(),
                                 nn.Linear(hidden, d_llm), nn.LayerNorm(d_llm))
        self.names = nn.Parameter(torch.zeros(N_LEADS, d_llm))

    def set_scale(self, rms: float) -> None:
        """Start the features' norm at the scale of the LLM's token embeddings (`rms`)."""
        with torch.no_grad():
            self.mlp[-1].weight.fill_(rms)

    def forward(self, signals: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.standardise(lead_signal_features(signals))) + self.names

    @torch.no_grad()
    def set_names(self, tokenizer, table: torch.Tensor) -> None:
        """Each lead's name as the LLM embeds it (the mean of its tokens' input embeddings, " V1"
        as in "lead V1"); training starts from these, a loaded model keeps its own."""
        for i, name in enumerate(LEADS):
            ids = tokenizer(f" {name}", add_special_tokens=False)["input_ids"]
            self.names[i] = table[ids].float().mean(0)
