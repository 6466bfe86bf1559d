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
    resume_dir: Path | None = None
    """A training stage: when this folder holds a checkpoint, the stage runs with --resume."""


@dataclass(frozen=True)
class DemoSizes:
    """How big each stage is. The default fits 30 minutes on 2 cores; `--quick` is a smoke run."""

    n_ecgs: int = 2000
    corpus_ecgs: int = 4000
    pretrain_minutes: float = 5.0
    train_minutes: float = 7.0
    subset: float | None = 0.1
    """Evaluate on the paper's fixed 10% test subset (None: the whole test split)."""
    eval_limit: int | None = None
    yardstick_per_side: int | None = 10
    """Yardstick questions per finding and answer (10: ~300 questions, ~3 minutes on 2 cores)."""


QUICK = DemoSizes(n_ecgs=60, corpus_ecgs=60, pretrain_minutes=0.3, train_minutes=0.5,
                  subset=None, eval_limit=24, yardstick_per_side=2)


def plan(out: Path, sizes: DemoSizes, real_ptbxl: Path | None) -> list[Stage]:
    """The stages in order (pure: no side effects, so it is easy to test and to print)."""
    bench, run, index = out / "bench", out / "pretrain", out / "index"
    stages = [
        Stage("generate the synthetic ECG-QA benchmark",
              ["data", "synth", "--out", str(bench), "--n-ecgs", str(sizes.n_ecgs),
               "--corpus-ecgs", str(sizes.corpus_ecgs), "--seed", "0"],
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
    minutes = sizes.pretrain_minutes
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
        for group, suffix, classes in (("super", "", "superclasses"), ("rhythm", "_rhythm", "rhythm")):
            result = out / f"zero_shot_ptbxl100{suffix}.json"
            stages.append(Stage(f"zero-shot and linear-probe AUC on the 100 real PTB-XL records "
                                f"({classes})",
                                ["zero-shot", "--encoder", str(run), "--data", str(out / "ptbxl100"),
                                 "--labels", f"ptbxl-{group}", "--all-rows", "--scp-statements",
                                 str(real_ptbxl / "scp_statements.csv"), "--json", str(result)],
                                result))
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
    eval_args = (["--subset", str(sizes.subset)] if sizes.subset else []) + (
        ["--limit", str(sizes.eval_limit)] if sizes.eval_limit else [])
    for name, title, extra in (("qheart", "Q-HEART", []),
                               ("blind", "the blind baseline (question only)",
                                ["--set", "model.use_ecg=false"])):
        model = out / name
        stages.append(Stage(
            f"instruction-tune {title} (cpu-small, ≤ {sizes.train_minutes:g} min)",
            ["train", "--data", str(bench), "--encoder", str(run), "--index", str(index),
             "--out", str(model), "--preset", "cpu-small",
             "--max-minutes", str(sizes.train_minutes), *extra],
            model / "config.json", resume_dir=model))
    for name in ("qheart", "blind"):
        stages.append(Stage(
            f"evaluate {name} on the synthetic test split (rank decoding)",
            ["evaluate", "--model", str(out / name), "--data", str(bench), "--split", "test",
             *eval_args, "--decode", "rank", "--out", str(out / "eval" / name)],
            out / "eval" / name / _eval_tag(sizes) / "results.json"))
    stages.append(Stage(
        "Q-HEART against blind, question by question (paired)",
        ["evaluate", "--compare", str(out / "eval" / "qheart" / _eval_tag(sizes)),
         "--compare", str(out / "eval" / "blind" / _eval_tag(sizes)),
         "--out", str(out / "eval" / PAIRED)],
        out / "eval" / PAIRED / "paired.json"))
    if real_ptbxl is not None:
        stages.append(Stage(
            "the real-data yardstick: Q-HEART on the 100 real PTB-XL records",
            ["evaluate", "--model", str(out / "qheart"), "--ptbxl", str(real_ptbxl),
             "--out", str(out / "eval" / "qheart"),
             *(["--yardstick-per-side", str(sizes.yardstick_per_side)]
               if sizes.yardstick_per_side else [])],
            out / "eval" / "qheart" / "yardstick-rank" / "yardstick.json"))
    return stages


PAIRED = "qheart-vs-blind"
"""Folder (under eval/) of the paired comparison of the two systems."""


def _eval_tag(sizes: DemoSizes) -> str:
    return f"test{'-subset' if sizes.subset else ''}-rank"


def demo(
    out: Annotated[Path, typer.Option(help="Folder for everything the demo writes.")] = Path(
        "runs/demo"),
    n_ecgs: Annotated[int, typer.Option(help="Synthetic ECGs in the QA splits.")] = 2000,
    corpus_ecgs: Annotated[int, typer.Option(
        help="Extra synthetic ECGs with reports (pre-training and retrieval corpus).")] = 4000,
    minutes: Annotated[float, typer.Option(help="Wall-time budget for encoder pre-training.")] = 5.0,
    train_minutes: Annotated[float, typer.Option(
        help="Wall-time budget for each instruction-tuning run (Q-HEART, blind).")] = 7.0,
    quick: Annotated[bool, typer.Option(
        help="The same stages at smoke size (a few minutes); numbers mean nothing.")] = False,
    real_ptbxl: Annotated[Path | None, typer.Option(
        help="A PTB-XL folder (published layout) to prepare and score the encoder on; default: "
             "../shared/real-samples/ptb-xl when present.")] = None,
    fresh: Annotated[bool, typer.Option(help="Delete --out first instead of continuing.")] = False,
) -> None:
    """The whole pipeline on the embedded defaults: synthetic benchmark → encoder pre-training →
    zero-shot AUC → FAISS report index → instruction tuning of Q-HEART and the blind baseline →
    evaluation (rank decoding) → the real-data yardstick → a ready `qheart ask` line."""
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
    sizes = QUICK if quick else DemoSizes(n_ecgs, corpus_ecgs, minutes, train_minutes)
    stages = plan(out, sizes, real)
    timings: dict[str, float] = {}
    for number, stage in enumerate(stages, 1):
        console.rule(f"[bold]{number}/{len(stages)}  {stage.title}")
        console.print("$ qheart " + " ".join(stage.argv), style="dim")
        if stage.done_marker is not None and stage.done_marker.exists():
            console.print(f"already done ({stage.done_marker} exists); skipped")
            continue
        argv = list(stage.argv)
        if stage.resume_dir is not None and (stage.resume_dir / "checkpoint").is_dir():
            argv.append("--resume")
        started = time.monotonic()
        app(argv, standalone_mode=False)
        timings[stage.title] = time.monotonic() - started
    _summary(console, out, timings, sizes, real)


def _summary(console, out: Path, timings: dict[str, float], sizes: DemoSizes,
             real_ptbxl: Path | None) -> None:
    """Print what was measured, read back from the files the stages wrote."""
    from rich.table import Table

    console.rule("[bold]summary")
    for title, seconds in timings.items():
        console.print(f"{seconds:7.1f} s  {title}")
    for name in ("zero_shot.json", "zero_shot_ptbxl100.json", "zero_shot_ptbxl100_rhythm.json"):
        path = out / name
        if path.is_file():
            result = json.loads(path.read_text())
            console.print(f"{name}: zero-shot macro AUC {result.get('zero_shot_macro_auc'):.3f}, "
                          f"linear-probe macro AUC {result.get('probe_macro_auc'):.3f}")
    table = Table(title="exact match, synthetic test split"
                        + (f" ({sizes.subset:.0%} subset)" if sizes.subset else "")
                        + ", rank decoding (synthetic data: not comparable to the paper's)")
    for column in ("system", "verify", "choose", "query", "avg", "questions"):
        table.add_column(column)
    for name in ("qheart", "blind"):
        path = out / "eval" / name / _eval_tag(sizes) / "results.json"
        if not path.is_file():
            continue
        em = json.loads(path.read_text())["exact_match"]
        cells = [em["by_type"].get(t, {}).get("accuracy") for t in
                 ("single-verify", "single-choose", "single-query")]
        table.add_row(name, *[f"{c:.3f}" if c is not None else "—" for c in cells],
                      f"{em['avg']['accuracy']:.3f}", str(em["overall"]["n"]))
    paired = out / "eval" / PAIRED / "paired.json"
    if paired.is_file():
        cells = json.loads(paired.read_text())["cells"]
        diff = lambda c: "—" if c is None else (  # noqa: E731
            f"{c['difference']:+.3f}{' *' if c['better'] else ''}")
        table.add_row("qheart − blind", *[diff(cells.get(k)) for k in ("verify", "choose",
                                                                          "query", "avg")], "")
        table.caption = ("qheart − blind: paired on the same questions; * = a real difference "
                         f"(McNemar p < 0.05; avg: 95% interval excludes 0), else within noise; "
                         f"details in {paired.with_suffix('.md')}")
    console.print(table)
    yardstick = out / "eval" / "qheart" / "yardstick-rank" / "yardstick.json"
    if yardstick.is_file():
        overall = json.loads(yardstick.read_text())["overall"]
        console.print(f"real-data yardstick (100 PTB-XL records, balanced yes/no, chance 0.5): "
                      f"accuracy {overall['accuracy']:.3f} on {overall['n']} questions — per "
                      f"finding in {yardstick.with_suffix('.md')}")
    model = out / "qheart"
    if (model / "config.json").is_file():
        console.print(f"model saved in {model.resolve()}")
        example = (real_ptbxl / "records500" / "00000" / "00001_hr.hea"
                   if real_ptbxl is not None else None)
        ecg = str(example) if example is not None and example.is_file() else "YOUR_ECG.hea"
        console.print(f"ask it: qheart ask --model {model} --ecg {ecg} "
                      "\"Does this ECG show sinus rhythm?\"")
    console.print(f"outputs in {out.resolve()}")
