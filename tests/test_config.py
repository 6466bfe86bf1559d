"""The shared config base: presets, nested dicts, files, --set overrides, differences."""

from __future__ import annotations

import json

import pytest

from qheart.config import ConfigError, require_same
from qheart.models.encoder import EncoderConfig
from qheart.training.pretrain_config import PretrainConfig


def test_preset_with_nested_preset_name_and_round_trip(tmp_path) -> None:
    config = PretrainConfig.from_name("cpu-small", lr=1e-4)
    assert config.encoder == EncoderConfig.from_name("cpu-small") and config.lr == 1e-4
    assert PretrainConfig.from_dict(config.to_dict()) == config
    json.dumps(config.to_dict())  # JSON-safe
    path = config.save(tmp_path / "c.json")
    saved = json.loads(path.read_text())
    assert saved["qheart_version"] and saved["config_type"] == "PretrainConfig"
    assert PretrainConfig.from_file(path) == config
    (tmp_path / "c.yaml").write_text("lr: 0.5\nencoder: paper\n")
    from_yaml = PretrainConfig.from_file(tmp_path / "c.yaml")
    assert from_yaml.lr == 0.5 and from_yaml.encoder.n_layers == 12


def test_overrides_reach_nested_fields_and_reject_unknown_ones() -> None:
    config = PretrainConfig.from_name("cpu-small").with_overrides(
        ["lr=3e-4", "encoder.n_layers=2", "betas=[0.8, 0.9]"])
    assert config.lr == 3e-4 and config.encoder.n_layers == 2 and config.betas == (0.8, 0.9)
    with pytest.raises(ConfigError, match="unknown field 'lrr'"):
        config.with_overrides(["lrr=1"])
    with pytest.raises(ConfigError, match="key=value"):
        config.with_overrides(["lr"])
    with pytest.raises(ConfigError, match="unknown PretrainConfig keys"):
        PretrainConfig.from_dict({"nope": 1})
    with pytest.raises(ConfigError, match="unknown EncoderConfig preset"):
        EncoderConfig.from_name("huge")


def test_require_same_names_every_differing_field() -> None:
    a = PretrainConfig.from_name("cpu-small")
    b = a.with_overrides(["lr=0.1", "encoder.d_model=32"])
    assert a.differences(b) == ["encoder.d_model", "lr"]
    require_same(a, PretrainConfig.from_dict(a.to_dict()), "run")
    with pytest.raises(ConfigError, match=r"encoder\.d_model \(64 → 32\), lr"):
        require_same(a, b, "run")
