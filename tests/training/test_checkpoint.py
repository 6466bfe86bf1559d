"""Checkpoints: safetensors + JSON only, never unpickled, atomic swap recovery, clear errors."""

from __future__ import annotations

import pickle

import pytest
import torch
from accelerate import Accelerator

from qheart.training.checkpoint import (
    CheckpointError,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from qheart.training.schedule import warmup_cosine


class Exploit:
    """Unpickling this writes a marker file: proof that a pickle was executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant_pickles(directory, marker) -> None:
    """Files with the names Accelerate (and torch) would load from a checkpoint folder."""
    for name in ("optimizer.bin", "scheduler.bin", "random_states_0.pkl", "pytorch_model.bin",
                 "custom_checkpoint_0.pkl", "model.pt"):
        (directory / name).write_bytes(pickle.dumps(Exploit(str(marker))))


def parts(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    model[0].requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    scheduler, schedule = warmup_cosine(optimizer, 10, 0.2)
    return model, optimizer, scheduler, schedule


def train_some(model, optimizer, scheduler, steps: int) -> None:
    for _ in range(steps):
        loss = model(torch.randn(3, 4)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()


def test_round_trip_restores_weights_optimizer_schedule_and_rng(tmp_path) -> None:
    acc = Accelerator(cpu=True)
    model, optimizer, scheduler, schedule = parts()
    train_some(model, optimizer, scheduler, 3)
    schedule.total = 7  # a time budget moved the horizon
    save_checkpoint(tmp_path, accelerator=acc, model=model, optimizer=optimizer,
                    scheduler=scheduler, state={"step": 3}, trainable_only=True)
    expected_next = torch.rand(3)
    plant_pickles(tmp_path / "checkpoint", tmp_path / "pwned")

    model2, optimizer2, scheduler2, schedule2 = parts(seed=1)
    state = load_checkpoint(tmp_path, accelerator=acc, model=model2, optimizer=optimizer2,
                            scheduler=scheduler2)
    assert not (tmp_path / "pwned").exists()  # no planted pickle was opened
    assert state["step"] == 3 and schedule2.total == 7
    torch.testing.assert_close(model2[1].weight, model[1].weight)
    assert not torch.equal(model2[0].weight, model[0].weight)  # frozen: not in the checkpoint
    assert scheduler2.get_last_lr() == scheduler.get_last_lr()
    torch.testing.assert_close(torch.rand(3), expected_next)  # RNG continues where it was
    for a, b in zip(optimizer.state.values(), optimizer2.state.values(), strict=True):
        torch.testing.assert_close(a["exp_avg"], b["exp_avg"])


def test_resume_without_a_checkpoint_says_why(tmp_path) -> None:
    acc = Accelerator(cpu=True)
    model, optimizer, scheduler, _ = parts()
    with pytest.raises(CheckpointError, match="no checkpoint was written yet"):
        load_checkpoint(tmp_path, accelerator=acc, model=model, optimizer=optimizer,
                        scheduler=scheduler)
    (tmp_path / "checkpoint.tmp").mkdir()
    with pytest.raises(CheckpointError, match=r"incomplete checkpoint\.tmp"):
        load_checkpoint(tmp_path, accelerator=acc, model=model, optimizer=optimizer,
                        scheduler=scheduler)


def test_interrupted_swap_recovers_the_old_checkpoint(tmp_path) -> None:
    acc = Accelerator(cpu=True)
    model, optimizer, scheduler, _ = parts()
    save_checkpoint(tmp_path, accelerator=acc, model=model, optimizer=optimizer,
                    scheduler=scheduler, state={"step": 5})
    (tmp_path / "checkpoint").rename(tmp_path / "checkpoint.old")  # killed between the renames
    (tmp_path / "checkpoint.tmp").mkdir()
    directory, why = find_checkpoint(tmp_path)
    assert directory == tmp_path / "checkpoint" and "recovered" in why
    state = load_checkpoint(tmp_path, accelerator=acc, model=model, optimizer=optimizer,
                            scheduler=scheduler)
    assert state["step"] == 5
