"""`qheart demo`: the README's main job on the embedded defaults."""

from __future__ import annotations


def demo() -> None:
    """Run the main job on the embedded defaults (not implemented yet)."""
    raise NotImplementedError
