"""The model folder `qheart train` writes and `QHeart.from_pretrained` reads.

    MODEL/
      config.json              model_type, qheart version, ModelConfig, TrainConfig, the LLM's
                               name and weights fingerprint, the retrieval index (path + build id)
      encoder/                 the ECG encoder (config.json + model.safetensors)
      prefix.safetensors       ET-Mapper, lead-positional skip, lead and measurement tokens
      adapter/                 the LoRA adapter in PEFT's format (absent for a frozen LLM)
      tokenizer/               the LLM's tokenizer (chat template included)
      questions.json           question templates seen in training (free questions are matched
                               to them to pick their options)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from qheart.models.encoder import ECGEncoder
from qheart.models.qheart_model import (
    OPTIONAL_PREFIX_PARTS,
    ModelConfig,
    QHeartModel,
    load_llm,
)

MODEL_TYPE = "qheart"
CONFIG_NAME = "config.json"
PREFIX_NAME = "prefix.safetensors"
QUESTIONS_NAME = "questions.json"


class NotAModelError(ValueError):
    """A folder that is not a qheart model folder (message names it and what is missing)."""


class MeasurementBlockMismatch(NotAModelError):
    """A model trained on another wording of the measurement block than this qheart writes:
    its prompts would carry text it never saw, so its answers would be silently worse."""


def check_measurement_block(config: ModelConfig, meta: dict[str, Any], directory: Path) -> None:
    """Models with `use_measurements` record the block version they were trained on; folders
    written before the version was recorded were trained on version 1."""
    from qheart.measurements.text import BLOCK_VERSION

    if not config.use_measurements:
        return
    trained = meta.get("measurement_block", 1)
    if trained != BLOCK_VERSION:
        raise MeasurementBlockMismatch(
            f"{directory}: trained with measurement block version {trained}, but this qheart "
            f"writes version {BLOCK_VERSION}; retrain the model (or use the qheart it was "
            "trained with)")


def _prefix_state(model: QHeartModel) -> dict[str, torch.Tensor]:
    state = {f"mapper.{k}": v for k, v in model.mapper.state_dict().items()}
    state.update({f"prefix_norm.{k}": v for k, v in model.prefix_norm.state_dict().items()})
    for name in OPTIONAL_PREFIX_PARTS:
        part = getattr(model, name)
        if part is not None:
            state.update({f"{name}.{k}": v for k, v in part.state_dict().items()})
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def save_model_folder(model: QHeartModel, tokenizer, out: Path, *, info: dict[str, Any],
                      questions: dict[str, Any]) -> Path:
    """Write the folder (see the module docstring). `info` lands in config.json."""
    from qheart import __version__
    from qheart.models.weights import weights_fingerprint

    out.mkdir(parents=True, exist_ok=True)
    model.encoder.save_pretrained(out / "encoder")
    save_file(_prefix_state(model), str(out / PREFIX_NAME), metadata={"qheart_version": __version__})
    if not model.config.freeze_llm:
        model.llm.save_pretrained(str(out / "adapter"), safe_serialization=True)
    tokenizer.save_pretrained(str(out / "tokenizer"))
    (out / QUESTIONS_NAME).write_text(json.dumps(questions, indent=1))
    meta = {"model_type": MODEL_TYPE, "qheart_version": __version__,
            "model": model.config.to_dict(),
            "llm": {"name": model.config.llm,
                    "fingerprint": weights_fingerprint(model.config.llm)},
            **info}
    if model.config.use_measurements:
        from qheart.measurements.text import BLOCK_VERSION

        meta["measurement_block"] = BLOCK_VERSION
    (out / CONFIG_NAME).write_text(json.dumps(meta, indent=2))
    return out


def read_model_config(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise NotAModelError(f"{directory}: not a qheart model folder (no {CONFIG_NAME}; "
                             "`qheart train --out` writes one)")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise NotAModelError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(meta, dict) or meta.get("model_type") != MODEL_TYPE:
        raise NotAModelError(f"{path}: model_type is not {MODEL_TYPE!r} (not a qheart model)")
    for needed in ("encoder/config.json", PREFIX_NAME, "tokenizer"):
        if not (directory / needed).exists():
            raise NotAModelError(f"{directory}: incomplete qheart model folder ({needed} missing)")
    return meta


def _load_part(module: torch.nn.Module, state: dict[str, torch.Tensor], prefix: str,
               directory: Path) -> None:
    """Load `module` from the `prefix`-named entries; folders written before the input
    standardisers existed lack their buffers and keep the identity (what those models saw)."""
    part = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    result = module.load_state_dict(part, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("standardise.")]
    if missing or result.unexpected_keys:
        raise NotAModelError(f"{directory / PREFIX_NAME}: {prefix[:-1]} weights do not fit "
                             f"(missing {missing[:3]}, unexpected {result.unexpected_keys[:3]})")


def load_model_folder(directory: str | Path, *, device: str = "cpu",
                      dtype: torch.dtype = torch.float32):
    """(QHeartModel in eval mode, tokenizer, config.json contents)."""
    from peft import set_peft_model_state_dict
    from transformers import AutoTokenizer

    directory = Path(directory)
    meta = read_model_config(directory)
    config = ModelConfig.from_dict(meta["model"])
    check_measurement_block(config, meta, directory)
    llm, _ = load_llm(config, dtype=dtype)
    encoder = ECGEncoder.from_pretrained(directory / "encoder")
    model = QHeartModel(config, llm, encoder)
    prefix = load_file(str(directory / PREFIX_NAME))
    _load_part(model.mapper, prefix, "mapper.", directory)
    _load_part(model.prefix_norm, prefix, "prefix_norm.", directory)
    for name in OPTIONAL_PREFIX_PARTS:
        if getattr(model, name) is not None:
            _load_part(getattr(model, name), prefix, f"{name}.", directory)
    if not config.freeze_llm:
        adapter = directory / "adapter" / "adapter_model.safetensors"
        if not adapter.is_file():
            raise NotAModelError(f"{directory}: the LoRA adapter ({adapter.name}) is missing")
        result = set_peft_model_state_dict(model.llm, load_file(str(adapter)))
        if getattr(result, "unexpected_keys", None):
            raise NotAModelError(f"{adapter}: keys that fit no LoRA layer of this model: "
                                 f"{result.unexpected_keys[:3]}")
    tokenizer = AutoTokenizer.from_pretrained(str(directory / "tokenizer"))
    return model.to(device).eval(), tokenizer, meta
