"""The ECG encoder f_e (C-MELT style): conv feature extractor → conv positional encoding →
transformer → pooled projection z_e.

Shapes for the paper preset: (B, 12, 5000) → conv stack (4 × k=2, s=2) → (B, 312, 256) →
Linear → (B, 312, 768) + conv positional encoding → 12 transformer layers → mean over steps →
Linear → z_e (B, 768). The positional-encoding output p_e (B, 312, 768) is returned too: the
ET-Mapper's lead-positional skip consumes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from qheart.config import Config
from qheart.data.leads import N_LEADS, N_SAMPLES
from qheart.models.rhythm_features import RhythmHead

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class EncoderConfig(Config):
    """Architecture of the ECG encoder; weights are stored separately (see `save_pretrained`)."""

    n_leads: int = N_LEADS
    """Input channels: the 12 canonical leads."""
    n_samples: int = N_SAMPLES
    """Nominal input length (500 Hz × 10 s); any length ≥ the conv stack's receptive field works."""
    conv_layers: tuple[tuple[int, int, int], ...] = ((256, 2, 2),) * 4
    """Feature extractor as (channels, kernel, stride) per layer; 4 × (256, 2, 2): 5000 → 312 steps."""
    conv_groups: int = 16
    """GroupNorm groups after each conv layer (must divide every layer's channels)."""
    d_model: int = 768
    """Transformer width; also the width of `positional` and `hidden`."""
    n_layers: int = 12
    """Transformer layers (paper: 12; the original C-MELT: 8)."""
    n_heads: int = 12
    """Attention heads (must divide d_model)."""
    ffn_dim: int = 3072
    """Hidden width of each transformer feed-forward block."""
    pos_conv_kernel: int = 128
    """Kernel (in steps) of the convolutional positional encoding, as in wav2vec 2.0 / C-MELT."""
    pos_conv_groups: int = 16
    """Groups of the positional conv (must divide d_model)."""
    dropout: float = 0.1
    """Dropout in the transformer and after the feature projection."""
    embed_dim: int = 768
    """Width d of the pooled embedding z_e (the projection after pooling)."""
    rhythm_features: bool = False
    """Add measured RR-interval statistics to z_e through a small head (beyond the paper; see
    `models/rhythm_features.py`: the conv stack does not learn beat-interval variability within
    the CPU budget)."""

    def __post_init__(self) -> None:
        self.conv_layers = tuple(tuple(int(v) for v in layer) for layer in self.conv_layers)  # type: ignore[assignment]
        if not self.conv_layers:
            raise ValueError("conv_layers must hold at least one (channels, kernel, stride) layer")
        for channels, kernel, stride in self.conv_layers:
            if min(channels, kernel, stride) < 1:
                raise ValueError(f"conv layer ({channels}, {kernel}, {stride}) must be positive")
            if channels % self.conv_groups:
                raise ValueError(f"conv_groups={self.conv_groups} must divide channels={channels}")
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} must divide d_model={self.d_model}")
        if self.d_model % self.pos_conv_groups:
            raise ValueError(f"pos_conv_groups={self.pos_conv_groups} must divide d_model={self.d_model}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("n_leads", "d_model", "n_layers", "ffn_dim", "pos_conv_kernel", "embed_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.n_steps < 1:
            raise ValueError(f"n_samples={self.n_samples} is too short for the conv stack")

    @property
    def n_steps(self) -> int:
        """Sequence length T the conv stack makes of `n_samples` (312 for the paper preset)."""
        return self.steps_for(self.n_samples)

    def steps_for(self, n_samples: int) -> int:
        """Sequence length T the conv stack makes of an input of `n_samples` samples."""
        length = n_samples
        for _, kernel, stride in self.conv_layers:
            length = (length - kernel) // stride + 1
        return length

    @property
    def samples_per_step(self) -> int:
        """Input samples between consecutive steps (the stack's total stride)."""
        return int(np.prod([stride for _, _, stride in self.conv_layers]))


ENCODER_PRESETS: dict[str, dict] = {
    "paper": {},
    # 2 CPU cores: a narrow conv stack with a stride-4 first layer (32 samples = 64 ms per step,
    # 156 steps for 10 s) and a 64-wide transformer. Measured on the shared 2-core machine, 64-wide
    # did about 2.5× the steps of 128-wide in the same 5 minutes and reached a higher zero-shot AUC.
    "cpu-small": {
        "conv_layers": ((32, 4, 4), (64, 2, 2), (128, 2, 2), (128, 2, 2)),
        "conv_groups": 8,
        "d_model": 64,
        "n_layers": 3,
        "n_heads": 4,
        "ffn_dim": 128,
        "pos_conv_kernel": 16,
        "pos_conv_groups": 8,
        "dropout": 0.0,
        "embed_dim": 64,
        # RR statistics: at equal pre-training time, three seeds each at the demo's budget and at
        # 9.4 min on one thread, the real records' zero-shot rhythm macro rose 0.08-0.17 in all
        # six pairs (to 0.90-0.94) and sinus arrhythmia from 0.30-0.58 to 0.73-0.84; the
        # superclass macro moved -0.04 to +0.05 (mean -0.012), synthetic ±0.02
        # (docs/experiments/encoder-pretraining.md).
        "rhythm_features": True,
    },
}
EncoderConfig.PRESETS = ENCODER_PRESETS


class EncoderOutput(NamedTuple):
    """What `ECGEncoder.forward` returns."""

    embedding: torch.Tensor
    """z_e (B, embed_dim): pooled and projected; not normalised."""
    positional: torch.Tensor
    """p_e (B, T, d_model): the convolutional positional encoding's output (before it is added)."""
    hidden: torch.Tensor
    """(B, T, d_model): the transformer's last hidden states."""


class FeatureExtractor(nn.Module):
    """Strided conv layers, each Conv1d → GroupNorm → GELU: raw leads to a step sequence."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = config.n_leads
        for channels, kernel, stride in config.conv_layers:
            layers += [
                nn.Conv1d(in_channels, channels, kernel, stride=stride, bias=False),
                nn.GroupNorm(config.conv_groups, channels),
                nn.GELU(),
            ]
            in_channels = channels
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, C, T)


class ConvPositionalEncoding(nn.Module):
    """Relative positions from a wide grouped conv over steps (wav2vec 2.0), so any length works."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        kernel = config.pos_conv_kernel
        self.conv = nn.Conv1d(config.d_model, config.d_model, kernel, padding=kernel // 2,
                              groups=config.pos_conv_groups)
        self.trim = 1 if kernel % 2 == 0 else 0  # an even kernel with padding k//2 adds one step
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.transpose(1, 2))  # (B, d, T + trim)
        if self.trim:
            y = y[..., : -self.trim]
        return self.act(y).transpose(1, 2)  # (B, T, d)


class ECGEncoder(nn.Module):
    """f_e: (B, 12, n) ECG in mV → EncoderOutput(z_e, p_e, hidden)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        last_channels = config.conv_layers[-1][0]
        self.features = FeatureExtractor(config)
        self.feature_norm = nn.LayerNorm(last_channels)
        self.feature_proj = nn.Linear(last_channels, config.d_model)
        self.mask_embedding = nn.Parameter(torch.zeros(config.d_model))
        self.positional = ConvPositionalEncoding(config)
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            config.d_model, config.n_heads, config.ffn_dim, config.dropout,
            activation="gelu", batch_first=True, norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, config.n_layers,
                                                 enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(config.d_model)
        self.projection = nn.Linear(config.d_model, config.embed_dim)
        self.rhythm = RhythmHead(config.embed_dim) if config.rhythm_features else None
        nn.init.normal_(self.mask_embedding, std=0.02)

    def forward(
        self,
        x: torch.Tensor,
        lead_mask: torch.Tensor | None = None,
        step_mask: torch.Tensor | None = None,
    ) -> EncoderOutput:
        """x: (B, 12, n) mV. lead_mask: (B, 12) bool, True = lead hidden (zeroed).
        step_mask: (B, T) bool, True = step replaced by the learned mask embedding (masked
        modelling)."""
        if x.ndim != 3 or x.shape[1] != self.config.n_leads:
            raise ValueError(f"expected (B, {self.config.n_leads}, n) ECGs, got {tuple(x.shape)}")
        if lead_mask is not None:
            x = x.masked_fill(lead_mask[:, :, None], 0.0)  # (B, 12, n)
        feats = self.features(x).transpose(1, 2)  # (B, T, C)
        h = self.dropout(self.feature_proj(self.feature_norm(feats)))  # (B, T, d)
        if step_mask is not None:
            if step_mask.shape != h.shape[:2]:
                raise ValueError(f"step_mask {tuple(step_mask.shape)} must be (B, T) = {tuple(h.shape[:2])}")
            h = torch.where(step_mask[..., None], self.mask_embedding.to(h.dtype), h)
        pos = self.positional(h)  # (B, T, d)
        hidden = self.final_norm(self.transformer(h + pos))  # (B, T, d)
        embedding = self.projection(hidden.mean(dim=1))  # (B, embed_dim)
        if self.rhythm is not None:
            embedding = embedding + self.rhythm(x)  # RR statistics of what the encoder was shown
        return EncoderOutput(embedding=embedding, positional=pos, hidden=hidden)

    @torch.no_grad()
    def embed(self, signals: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Unit-norm z_e for canonical ECGs: np (B, 12, n) → np (B, embed_dim) float32."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        out = []
        for start in range(0, len(signals), batch_size):
            x = torch.as_tensor(np.asarray(signals[start : start + batch_size], dtype=np.float32),
                                device=device)
            z = self(x).embedding.float()
            out.append(nn.functional.normalize(z, dim=-1).cpu().numpy())
        self.train(was_training)
        if not out:
            return np.zeros((0, self.config.embed_dim), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write config.json (with the qheart version) and model.safetensors."""
        from qheart import __version__

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"model_type": "qheart-ecg-encoder", "qheart_version": __version__,
                "config": self.config.to_dict()}
        (directory / CONFIG_NAME).write_text(json.dumps(meta, indent=2))
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"qheart_version": __version__})
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str = "cpu") -> ECGEncoder:
        """Rebuild an encoder written by `save_pretrained`; no config edits needed."""
        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        for path in (config_path, weights_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing (not an ECGEncoder folder)")
        meta = json.loads(config_path.read_text())
        if meta.get("model_type") != "qheart-ecg-encoder":
            raise ValueError(f"{config_path}: model_type {meta.get('model_type')!r} is not an ECG encoder")
        model = cls(EncoderConfig.from_dict(meta["config"]))
        model.load_state_dict(load_file(str(weights_path), device=map_location))
        return model
