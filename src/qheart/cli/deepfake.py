"""`qheart data deepfake`: unlabelled real-morphology ECGs from the deepfake-ecg generator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def deepfake(
    out: Annotated[Path, typer.Option(
        "--out", help="Store folder to create, or to resume with the same --n and --seed.")],
    n: Annotated[int, typer.Option("--n", min=1, help="ECGs to generate (ecg_id 1..N).")],
    seed: Annotated[int, typer.Option(
        "--seed", min=0, help="ECG k depends only on (seed, k): any larger --n starts with the same "
                             "ECGs.")] = 0,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, help="ECGs per forward pass (memory vs speed; same signals up to "
                                    "float rounding).")] = 32,
) -> None:
    """Generate 12-lead ECGs with the DeepFake (Pulse2Pulse GAN) generator of the optional
    package deepfake-ecg (MIT; `pip install 'qheart\\[deepfake]'`): trained on real normal ECGs,
    no labels. Writes a signal store in mV (III, aVR, aVL, aVF derived from I and II)."""
    import time

    from qheart.data.corpora.deepfake import DeepfakeConfig, generate_store

    start = time.perf_counter()
    store = generate_store(out, DeepfakeConfig(n=n, seed=seed, batch_size=batch_size))
    elapsed = time.perf_counter() - start
    typer.echo(f"wrote {len(store)} ECGs to {out} in {elapsed:.1f} s ({len(store) / elapsed:.1f} ECGs/s)")
