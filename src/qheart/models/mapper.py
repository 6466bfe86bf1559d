"""ET-Mapper and the lead-positional skip: the ECG encoder's outputs → c prefix embeddings.

ET-Mapper (paper §3.2): Linear(d → c·d′), reshape to c tokens, a small transformer (L=2, H=4)
so the tokens can exchange information. Lead-positional skip: the encoder's convolutional
positional-encoding output p_e (B, T, d_model) → a 1×1 conv over the step axis that mixes the T
steps into c channels (a learned, position-aware pooling) → Linear(d_model → d′); added to the
mapper's tokens so position information reaches the LLM without passing the encoder's pooling.
"""

from __future__ import annotations

import torch
from torch import nn


class ETMapper(nn.Module):
    """z_e (B, d) → (B, c, d′). With `n_layers=0` it is the "w/o ET-Mapper" ablation: one Linear."""

    def __init__(self, d: int, d_llm: int, n_tokens: int = 12, n_layers: int = 2,
                 n_heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.n_tokens, self.d_llm = n_tokens, d_llm
        self.project = nn.Linear(d, n_tokens * d_llm)
        self.transformer = None
        if n_layers > 0:
            if d_llm % n_heads:
                raise ValueError(f"mapper heads ({n_heads}) must divide the LLM width ({d_llm})")
            layer = nn.TransformerEncoderLayer(d_llm, n_heads, 2 * d_llm, dropout,
                                               activation="gelu", batch_first=True, norm_first=True)
            self.transformer = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        tokens = self.project(z).view(len(z), self.n_tokens, self.d_llm)  # (B, c, d′)
        if self.transformer is not None:
            tokens = self.transformer(tokens)
        return tokens


class LeadPositionalSkip(nn.Module):
    """p_e (B, T, d_model) → (B, c, d′): conv over steps to c channels, then Linear(d_model → d′)."""

    def __init__(self, n_steps: int, d_model: int, d_llm: int, n_tokens: int = 12) -> None:
        super().__init__()
        self.n_steps = n_steps
        self.mix = nn.Conv1d(n_steps, n_tokens, kernel_size=1)
        self.project = nn.Linear(d_model, d_llm)

    def forward(self, positional: torch.Tensor) -> torch.Tensor:
        if positional.shape[1] != self.n_steps:
            raise ValueError(f"positional encoding has {positional.shape[1]} steps; the skip was "
                             f"built for {self.n_steps} (canonical 10 s ECGs)")
        return self.project(self.mix(positional))  # (B, c, d_model) → (B, c, d′)
