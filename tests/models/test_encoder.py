"""ECG encoder: presets and shapes (paper preset on the meta device), masking, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from qheart.models.encoder import ECGEncoder, EncoderConfig

TINY = EncoderConfig(conv_layers=((8, 4, 4), (16, 2, 2), (16, 2, 2)), conv_groups=4, d_model=16,
                     n_layers=1, n_heads=2, ffn_dim=32, pos_conv_kernel=8, pos_conv_groups=4,
                     dropout=0.0, embed_dim=12)


def test_paper_preset_on_meta_device_has_the_paper_shapes() -> None:
    config = EncoderConfig.from_name("paper")
    assert config.conv_layers == ((256, 2, 2),) * 4
    assert config.n_steps == 312  # 5000 → 2500 → 1250 → 625 → 312
    with torch.device("meta"):
        encoder = ECGEncoder(config)
        out = encoder(torch.zeros(2, 12, 5000))
    assert len(encoder.transformer.layers) == 12
    assert out.embedding.shape == (2, 768)
    assert out.positional.shape == (2, 312, 768)
    assert out.hidden.shape == (2, 312, 768)
    n_params = sum(p.numel() for p in encoder.parameters())
    print(f"paper encoder: {n_params:,} parameters")
    # 12 pre-norm layers of 768 (7.1 M each) + positional conv + feature stack + projection.
    assert 85e6 < n_params < 100e6


def test_cpu_small_preset_is_small_and_runs() -> None:
    config = EncoderConfig.from_name("cpu-small")
    encoder = ECGEncoder(config)
    assert sum(p.numel() for p in encoder.parameters()) < 1_000_000
    out = encoder(torch.randn(2, 12, 5000))
    assert out.embedding.shape == (2, config.embed_dim)
    assert out.positional.shape == out.hidden.shape == (2, config.n_steps, config.d_model)


def test_forward_shapes_follow_the_input_length() -> None:
    encoder = ECGEncoder(TINY).eval()
    for n_samples in (5000, 2500):
        out = encoder(torch.randn(3, 12, n_samples))
        assert out.hidden.shape == (3, TINY.steps_for(n_samples), 16)
        assert out.positional.shape == out.hidden.shape
        assert out.embedding.shape == (3, 12)


def test_lead_mask_is_the_same_as_zeroing_the_lead() -> None:
    torch.manual_seed(0)
    encoder = ECGEncoder(TINY).eval()
    x = torch.randn(2, 12, 5000)
    mask = torch.zeros(2, 12, dtype=torch.bool)
    mask[:, [1, 7]] = True
    zeroed = x.clone()
    zeroed[:, [1, 7]] = 0.0
    masked = encoder(x, lead_mask=mask).embedding
    torch.testing.assert_close(masked, encoder(zeroed).embedding)
    assert not torch.allclose(masked, encoder(x).embedding)


def test_step_mask_replaces_steps_with_the_mask_embedding() -> None:
    torch.manual_seed(0)
    encoder = ECGEncoder(TINY).eval()
    seen = {}
    encoder.positional.register_forward_hook(lambda _m, args, _o: seen.update(h=args[0]))
    x = torch.randn(1, 12, 5000)
    step_mask = torch.zeros(1, TINY.n_steps, dtype=torch.bool)
    step_mask[0, 10:20] = True
    masked = encoder(x, step_mask=step_mask).hidden
    h = seen["h"]  # (1, T, d): the transformer's input before positions are added
    torch.testing.assert_close(h[0, 10:20], encoder.mask_embedding.expand(10, -1))
    assert not torch.allclose(h[0, 20], encoder.mask_embedding)
    assert not torch.allclose(masked, encoder(x).hidden)
    with pytest.raises(ValueError, match=r"step_mask"):
        encoder(x, step_mask=step_mask[:, :-1])


def test_embed_returns_unit_float32_vectors() -> None:
    encoder = ECGEncoder(TINY)
    z = encoder.embed(np.random.default_rng(0).normal(size=(5, 12, 5000)).astype(np.float32),
                      batch_size=2)
    assert z.dtype == np.float32 and z.shape == (5, 12)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, rtol=1e-5)
    assert encoder.training  # embed restores the mode it found


def test_save_and_load_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    encoder = ECGEncoder(TINY).eval()
    encoder.save_pretrained(tmp_path / "enc")
    meta = json.loads((tmp_path / "enc" / "config.json").read_text())
    assert meta["qheart_version"] and meta["config"]["d_model"] == 16
    loaded = ECGEncoder.from_pretrained(tmp_path / "enc").eval()
    assert loaded.config == TINY
    x = torch.randn(2, 12, 5000)
    torch.testing.assert_close(loaded(x).embedding, encoder(x).embedding, rtol=0, atol=0)


def test_from_pretrained_names_the_missing_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        ECGEncoder.from_pretrained(tmp_path)


@pytest.mark.parametrize(("changes", "message"), [
    ({"n_heads": 5}, "n_heads"),
    ({"conv_groups": 3}, "conv_groups"),
    ({"pos_conv_groups": 5}, "pos_conv_groups"),
    ({"dropout": 1.0}, "dropout"),
    ({"n_samples": 10}, "too short"),
    ({"conv_layers": ()}, "at least one"),
])
def test_invalid_configs_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EncoderConfig(**{**TINY.to_dict(), **changes})


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="cpu-small"):
        EncoderConfig.from_name("huge")
