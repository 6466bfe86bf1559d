"""`qheart demo`: the README's main job — the pipeline built so far, on the embedded defaults.

Each stage is the very CLI command a user would type, run in-process, so the demo can never
drift from the documented commands. A stage whose output already exists is skipped, so an
interrupted demo continues where it stopped; `--fresh` starts over.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

# In a development checkout the real public samples lie beside the repository (../shared).
CHECKOUT_PTBXL = Path(__file__).resolve().parents[3].parent / "shared" / "real-samples" / "ptb-xl"


@dataclass(frozen=True)
class Stage:
    """One demo step: what it does, the `qheart` arguments, and the file that proves it finished."""

    title: str
    argv: list[str]
    done_marker: Path | None
    """None: cheap, always run (it only reads and prints)."""


def plan(out: Path, n_ecgs: int, corpus_ecgs: int, minutes: float, real_ptbxl: Path | None
         ) -> list[Stage]:
    """The stages in order (pure: no side effects, so it is easy to test and to print)."""
    bench, run, index = out / "bench", out / "pretrain", out / "index"
    stages = [
        Stage("generate the synthetic ECG-QA benchmark",
              ["data", "synth", "--out", str(bench), "--n-ecgs", str(n_ecgs),
               "--corpus-ecgs", str(corpus_ecgs), "--seed", "0"],
              bench / "synth.json"),
        Stage("load its ECG-QA training split and join it to the signal store",
              ["data", "ecgqa", "--dataset-dir", str(bench / "ecgqa" / "synthetic"),
               "--variant", "paraphrased", "--split", "train", "--store", str(bench / "store")],
              None),
    ]
    if real_ptbxl is not None:
        stages.append(Stage("prepare the 100 real PTB-XL records into a signal store",
                            ["data", "prepare", "ptbxl", "--root", str(real_ptbxl),
                             "--out", str(out / "ptbxl100")],
                            out / "ptbxl100" / "store.json"))
    stages += [
        Stage(f"pre-train the cpu-small ECG encoder on ECG–report pairs (≤ {minutes:g} min)",
              ["pretrain", "--data", str(bench), "--out", str(run), "--preset", "cpu-small",
               "--max-minutes", str(minutes)],
              run / "encoder" / "config.json"),
        Stage("zero-shot and linear-probe AUC on the synthetic test split",
              ["zero-shot", "--encoder", str(run), "--data", str(bench),
               "--json", str(out / "zero_shot.json")],
              out / "zero_shot.json"),
    ]
    if real_ptbxl is not None:
        stages.append(Stage("zero-shot and linear-probe AUC on the 100 real PTB-XL records",
                            ["zero-shot", "--encoder", str(run), "--data", str(out / "ptbxl100"),
                             "--labels", "ptbxl-super", "--all-rows", "--scp-statements",
                             str(real_ptbxl / "scp_statements.csv"),
                             "--json", str(out / "zero_shot_ptbxl100.json")],
                            out / "zero_shot_ptbxl100.json"))
    stages += [
        Stage("index the corpus and training reports in FAISS",
              ["index", "build", "--data", str(bench / "corpus"), "--data", str(bench / "store"),
               "--split", "corpus", "--split", "train", "--encoder", str(run),
               "--out", str(index)],
              index / "manifest.json"),
        Stage("do retrieved reports share the query ECG's findings? (test split)",
              ["index", "evaluate", "--index", str(index), "--store", str(bench / "store"),
               "--split", "test"],
              None),
    ]
    return stages


def demo(
    out: Annotated[Path, typer.Option(help="Folder for everything the demo writes.")] = Path(
        "runs/demo"),
    n_ecgs: Annotated[int, typer.Option(help="Synthetic ECGs in the QA splits.")] = 2000,
    corpus_ecgs: Annotated[int, typer.Option(
        help="Extra synthetic ECGs with reports (pre-training and retrieval corpus).")] = 4000,
    minutes: Annotated[float, typer.Option(help="Wall-time budget for encoder pre-training.")] = 6.0,
    real_ptbxl: Annotated[Path | None, typer.Option(
        help="A PTB-XL folder (published layout) to prepare and score the encoder on; default: "
             "../shared/real-samples/ptb-xl when present.")] = None,
    fresh: Annotated[bool, typer.Option(help="Delete --out first instead of continuing.")] = False,
) -> None:
    """Run the pipeline built so far on the embedded defaults: synthetic benchmark → ECG-QA
    loading → encoder pre-training → zero-shot AUC → FAISS report retrieval. (Instruction
    tuning and question answering arrive with the Q-HEART model.)"""
    from rich.console import Console

    from qheart.cli import app

    console = Console()
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if real_ptbxl is None and (CHECKOUT_PTBXL / "ptbxl_database.csv").is_file():
        real_ptbxl = CHECKOUT_PTBXL
    if real_ptbxl is not None and not (real_ptbxl / "ptbxl_database.csv").is_file():
        raise typer.BadParameter(f"{real_ptbxl}: no ptbxl_database.csv (not a PTB-XL folder)")
    real = real_ptbxl.resolve() if real_ptbxl is not None else None
    stages = plan(out, n_ecgs, corpus_ecgs, minutes, real)
    timings: dict[str, float] = {}
    for number, stage in enumerate(stages, 1):
        console.rule(f"[bold]{number}/{len(stages)}  {stage.title}")
        console.print("$ qheart " + " ".join(stage.argv), style="dim")
        if stage.done_marker is not None and stage.done_marker.exists():
            console.print(f"already done ({stage.done_marker} exists); skipped")
            continue
        started = time.monotonic()
        app(stage.argv, standalone_mode=False)
        timings[stage.title] = time.monotonic() - started
    _summary(console, out, timings)


def _summary(console, out: Path, timings: dict[str, float]) -> None:
    """Print what was measured, read back from the files the stages wrote."""
    console.rule("[bold]summary")
    for title, seconds in timings.items():
        console.print(f"{seconds:7.1f} s  {title}")
    for name in ("zero_shot.json", "zero_shot_ptbxl100.json"):
        path = out / name
        if path.is_file():
            result = json.loads(path.read_text())
            console.print(f"{name}: zero-shot macro AUC {result.get('zero_shot_macro_auc')}, "
                          f"linear-probe macro AUC {result.get('probe_macro_auc')}")
    console.print(f"outputs in {out.resolve()}")
