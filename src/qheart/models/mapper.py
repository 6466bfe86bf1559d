"""ET-Mapper and the lead-positional skip: the ECG encoder's outputs → c prefix embeddings.

ET-Mapper (paper §3.2): Linear(d → c·d′), reshape to c tokens, a small transformer (L=2, H=4)
so the tokens can exchange information. Lead-positional skip: the encoder's convolutional
positional-encoding output p_e (B, T, d_model) → a 1×1 conv over the step axis that mixes the T
steps into c channels (a learned, position-aware pooling) → Linear(d_model → d′); added to the
mapper's tokens so position information reaches the LLM without passing the encoder's pooling.

Both inputs are standardised first (not in the paper): a contrastively pre-trained encoder puts
every ECG in a narrow cone (measured on the demo's encoder: mean cosine 0.993 between ECGs), so
without centring the mapper's tokens are one constant plus a 4% ECG-dependent ripple, the prefix
norm scales that ripple away, and the LLM sees the same 12 tokens for every ECG.
"""

from __future__ import annotations

import torch
from torch import nn


class Standardiser(nn.Module):
    """x → (x − μ) / σ with μ, σ per feature measured once on training ECGs (`fit`); buffers,
    saved with the mapper. Unfitted it is the identity."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))

    @torch.no_grad()
    def fit(self, samples: torch.Tensor, eps: float = 1e-6) -> None:
        """`samples` (N, *shape), N ≥ 2."""
        if len(samples) < 2 or samples.shape[1:] != self.mean.shape:
            raise ValueError(f"standardiser of shape {tuple(self.mean.shape)} needs ≥ 2 samples "
                             f"of that shape, got {tuple(samples.shape)}")
        self.mean.copy_(samples.mean(0))
        self.std.copy_(samples.std(0).clamp_min(eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ETMapper(nn.Module):
    """z_e (B, d) → (B, c, d′). With `n_layers=0` it is the "w/o ET-Mapper" ablation: one Linear."""

    def __init__(self, d: int, d_llm: int, n_tokens: int = 12, n_layers: int = 2,
                 n_heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.n_tokens, self.d_llm = n_tokens, d_llm
        self.standardise = Standardiser((d,))
        self.project = nn.Linear(d, n_tokens * d_llm)
        self.transformer = None
        if n_layers > 0:
            if d_llm % n_heads:
                raise ValueError(f"mapper heads ({n_heads}) must divide the LLM width ({d_llm})")
            layer = nn.TransformerEncoderLayer(d_llm, n_heads, 2 * d_llm, dropout,
                                               activation="gelu", batch_first=True, norm_first=True)
            self.transformer = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        tokens = self.project(self.standardise(z)).view(len(z), self.n_tokens, self.d_llm)  # (B, c, d′)
        if self.transformer is not None:
            tokens = self.transformer(tokens)
        return tokens


class LeadPositionalSkip(nn.Module):
    """p_e (B, T, d_model) → (B, c, d′): conv over steps to c channels, then Linear(d_model → d′)."""

    def __init__(self, n_steps: int, d_model: int, d_llm: int, n_tokens: int = 12) -> None:
        super().__init__()
        self.n_steps = n_steps
        self.standardise = Standardiser((n_steps, d_model))
        self.mix = nn.Conv1d(n_steps, n_tokens, kernel_size=1)
        self.project = nn.Linear(d_model, d_llm)

    def forward(self, positional: torch.Tensor) -> torch.Tensor:
        if positional.shape[1] != self.n_steps:
            raise ValueError(f"positional encoding has {positional.shape[1]} steps; the skip was "
                             f"built for {self.n_steps} (canonical 10 s ECGs)")
        return self.project(self.mix(self.standardise(positional)))  # (B, c, d_model) → (B, c, d′)
