"""The default text encoder: the real all-MiniLM-L6-v2 from the wheel (one load), and the head."""

from __future__ import annotations

import pytest
import torch

from qheart.models.text_encoder import TextEncoder, TextHead, default_text_encoder_path


@pytest.mark.integration
def test_minilm_from_the_wheel_embeds_reports_meaningfully() -> None:
    assert (default_text_encoder_path() / "model.safetensors").is_file()
    encoder = TextEncoder()  # "minilm": the wheel's folder, no hub access (HF offline in conftest)
    assert encoder.dim == 384
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.model.training  # frozen stays in eval mode (no dropout)
    z = encoder.encode(["atrial fibrillation", "atrial fibrillation with rapid ventricular response",
                        "left bundle branch block", ""], batch_size=2)
    assert z.shape == (4, 384)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(4))
    assert z[0] @ z[1] > z[0] @ z[2] + 0.1  # same finding closer than a different one
    tuned = TextEncoder(trainable=True)
    assert all(p.requires_grad for p in tuned.parameters())


def test_text_head_save_load(tmp_path) -> None:
    head = TextHead(384, 16)
    head.save(tmp_path / "head.safetensors", text_encoder="minilm")
    loaded, name = TextHead.load(tmp_path / "head.safetensors")
    assert name == "minilm"
    x = torch.randn(3, 384)
    torch.testing.assert_close(loaded(x), head(x))
    with pytest.raises(FileNotFoundError, match="text head"):
        TextHead.load(tmp_path / "missing.safetensors")
