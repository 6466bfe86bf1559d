"""Resumable training checkpoints with nothing to unpickle: tensors in safetensors, the rest JSON.

Accelerate's `save_state`/`load_state` round-trips optimizer, scheduler and RNG objects through
pickle (`torch.load(weights_only=False)`), so a checkpoint folder from anywhere could run code
on `--resume`. This module writes and reads only these files, by name:

    checkpoint/
      model.safetensors        model weights (all, or only the trainable ones)
      optimizer.safetensors    every tensor of the optimizer state ("state.<param>.<name>")
      optimizer.json           param groups and non-tensor state values
      scheduler.json           the LR scheduler's state_dict (numbers only)
      rng-<rank>.safetensors   each process's torch RNG states (dropout, masks)
      state.json               step, history, … — written last: its presence marks completeness

Anything else in the folder (e.g. a planted `optimizer.bin` or `random_states_0.pkl`) is never
opened. A save is written to `checkpoint.tmp` and swapped in with two renames; a crash between
them leaves `checkpoint.old`, which `find_checkpoint` restores.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

if TYPE_CHECKING:
    from accelerate import Accelerator

CHECKPOINT_DIR = "checkpoint"
STATE_NAME = "state.json"
MODEL_NAME = "model.safetensors"
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_META = "optimizer.json"
SCHEDULER_NAME = "scheduler.json"


class CheckpointError(RuntimeError):
    """No usable checkpoint, or one that does not fit the model being resumed."""


def _rng_name(rank: int) -> str:
    return f"rng-{rank}.safetensors"


def model_state(model: nn.Module, *, trainable_only: bool) -> dict[str, torch.Tensor]:
    """Weights to save: every entry of the state dict, or only parameters that train (frozen
    weights come back from where they were loaded in the first place)."""
    if trainable_only:
        state = {name: p for name, p in model.named_parameters() if p.requires_grad}
    else:
        state = model.state_dict()
    # clone: safetensors refuses tensors that share storage (e.g. tied embeddings)
    return {name: t.detach().cpu().contiguous().clone() for name, t in state.items()}


def _optimizer_files(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, values in state_dict["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"state.{param_id}.{name}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(param_id), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, param_id, name = key.split(".", 2)
        state.setdefault(int(param_id), {})[name] = value
    for param_id, values in meta.get("scalars", {}).items():
        state.setdefault(int(param_id), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def _rng_tensors() -> dict[str, torch.Tensor]:
    out = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, rng in enumerate(torch.cuda.get_rng_state_all()):
            out[f"cuda{index}"] = rng
    return out


def _restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["cpu"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(out: Path, *, accelerator: Accelerator, model: nn.Module,
                    optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, state: dict,
                    trainable_only: bool = False) -> Path:
    """Write a complete checkpoint to out/checkpoint, replacing the previous one atomically.
    `model` is the unwrapped model (identical on every process)."""
    final, tmp, old = (out / CHECKPOINT_DIR, out / f"{CHECKPOINT_DIR}.tmp",
                       out / f"{CHECKPOINT_DIR}.old")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    save_file(_rng_tensors(), str(tmp / _rng_name(accelerator.process_index)))
    if accelerator.is_main_process:
        save_file(model_state(model, trainable_only=trainable_only), str(tmp / MODEL_NAME))
        tensors, meta = _optimizer_files(optimizer)
        save_file(tensors, str(tmp / OPTIMIZER_TENSORS))
        (tmp / OPTIMIZER_META).write_text(json.dumps(meta))
        (tmp / SCHEDULER_NAME).write_text(json.dumps(scheduler.state_dict()))
        (tmp / STATE_NAME).write_text(json.dumps({**state, "trainable_only": trainable_only}))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def find_checkpoint(out: Path) -> tuple[Path | None, str]:
    """The complete checkpoint in `out`, recovering one an interrupted swap left as
    `checkpoint.old`; else (None, why there is none)."""
    final, tmp, old = (out / CHECKPOINT_DIR, out / f"{CHECKPOINT_DIR}.tmp",
                       out / f"{CHECKPOINT_DIR}.old")
    if (final / STATE_NAME).is_file():
        return final, "complete"
    if (old / STATE_NAME).is_file() and not final.exists():
        old.rename(final)  # the save was interrupted between its two renames
        return final, f"recovered {old.name} (a save was interrupted while swapping)"
    if tmp.exists():
        return None, (f"only an incomplete {tmp.name} (the first save was interrupted); "
                      "nothing was completed to resume from")
    if final.exists():
        return None, f"{final.name} has no {STATE_NAME} (incomplete)"
    return None, "no checkpoint was written yet"


def load_checkpoint(out: Path, *, accelerator: Accelerator, model: nn.Module,
                    optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict:
    """Restore weights, optimizer, scheduler and this process's RNG; return state.json.
    Raises CheckpointError when there is nothing usable to resume."""
    directory, why = find_checkpoint(out)
    if directory is None:
        raise CheckpointError(f"{out}: nothing to resume: {why}. Run without --resume to start "
                              "over (delete the folder first).")
    state = json.loads((directory / STATE_NAME).read_text())
    weights = load_file(str(directory / MODEL_NAME))
    if state.get("trainable_only"):
        expected = {name for name, p in model.named_parameters() if p.requires_grad}
        if set(weights) != expected:
            raise CheckpointError(f"{directory}: its trainable weights do not match this model's "
                                  f"({len(set(weights) ^ expected)} names differ)")
        model.load_state_dict(weights, strict=False)
    else:
        model.load_state_dict(weights)
    optimizer.load_state_dict(_optimizer_state(load_file(str(directory / OPTIMIZER_TENSORS)),
                                               json.loads((directory / OPTIMIZER_META).read_text())))
    scheduler.load_state_dict(json.loads((directory / SCHEDULER_NAME).read_text()))
    rng = directory / _rng_name(accelerator.process_index)
    if rng.is_file():
        _restore_rng(load_file(str(rng)))
    return state
