"""`qheart pretrain` and `qheart zero-shot`."""

from __future__ import annotations


def pretrain() -> None:
    """Pre-train the ECG encoder on ECG–report pairs (not implemented yet)."""
    raise NotImplementedError


def zero_shot() -> None:
    """Zero-shot and linear-probe AUC of an encoder (not implemented yet)."""
    raise NotImplementedError
