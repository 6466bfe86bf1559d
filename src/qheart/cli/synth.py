"""`qheart data synth` and `qheart data plot`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from qheart.data.synth.realism import DEFAULT_REALISM, REALISM


def synth(
    out: Annotated[Path, typer.Option("--out", help="Output folder (store/, ecgqa/synthetic/, "
                                      "corpus/, synth.json).")],
    n_ecgs: Annotated[int, typer.Option("--n-ecgs", min=3, help="ECGs in the QA splits.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same files (byte for byte).")] = 0,
    corpus_ecgs: Annotated[int, typer.Option(
        "--corpus-ecgs", min=0, help="Extra ECGs with reports only, outside the QA splits "
                                     "(the role MIMIC-IV-ECG plays for pre-training/retrieval).")] = 0,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="Worker processes (default: all cores).")] = None,
    questions_per_ecg: Annotated[int, typer.Option(
        "--questions-per-ecg", min=1, help="Single-ECG questions per ECG (ECG-QA: about 10).")] = 10,
    realism: Annotated[str, typer.Option(
        "--realism", help=f"Generator version: {', '.join(sorted(REALISM))} "
                          f"(qheart/data/synth/realism.py).")] = DEFAULT_REALISM,
) -> None:
    """Generate the synthetic ECG-QA benchmark (signals, questions, reports) with exact labels."""
    if realism not in REALISM:
        raise typer.BadParameter(f"{realism!r}; known: {', '.join(sorted(REALISM))}",
                                 param_hint="--realism")
    import time

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from qheart.data.synth import generate_benchmark

    console = Console(soft_wrap=True)
    workers = workers or os.cpu_count() or 1
    total = n_ecgs + corpus_ecgs
    start = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("simulating ECGs", total=total)
        summary = generate_benchmark(
            out, n_ecgs, seed, corpus_ecgs, workers=workers, questions_per_ecg=questions_per_ecg,
            progress=lambda n: progress.advance(task, n), realism=realism,
        )
    elapsed = time.perf_counter() - start
    console.print(f"wrote {n_ecgs} QA ECGs{f' + {corpus_ecgs} corpus ECGs' if corpus_ecgs else ''} "
                  f"to {out} in {elapsed:.1f} s with {workers} workers", highlight=False)
    console.print(f"ECGs per split: {summary['ecgs_per_split']}", highlight=False)
    questions = summary["questions"]
    table = Table(title="questions")
    table.add_column("split")
    for column in ("n", "verify", "choose", "query", "yes", "no", "lead share"):
        table.add_column(column, justify="right")
    for split, counts in questions.items():
        types = counts["per_type"]
        table.add_row(split, str(counts["n"]), str(types.get("single-verify", 0)),
                      str(types.get("single-choose", 0)), str(types.get("single-query", 0)),
                      str(counts["verify_yes"]), str(counts["verify_no"]),
                      f"{counts['lead_share']:.0%}")  # fmt: skip
    console.print(table)
    per_template = questions["all"]["per_template"]
    console.print("per template: " + ", ".join(f"{k}: {v}" for k, v in per_template.items()),
                  highlight=False)  # fmt: skip
    console.print("findings (ECGs): " + ", ".join(f"{k}: {v}" for k, v in summary["findings"].items()),
                  highlight=False)  # fmt: skip
    prior = summary["prior_baseline"]
    console.print("blind prior baseline (template + attribute majority, train → test): "
                  + " / ".join(f"{t} {prior[f'single-{t}']['accuracy']:.2f}"
                               for t in ("verify", "choose", "query") if f"single-{t}" in prior)
                  + "  (ECG-QA question-only model: verify 0.68 / choose 0.31 / query 0.24)",
                  highlight=False)  # fmt: skip


def plot(
    out: Annotated[Path, typer.Option("--out", help="Image to write (.png, .pdf, .svg).")],
    store: Annotated[Path | None, typer.Option("--store", help="A signal store folder.")] = None,
    ecg_id: Annotated[int | None, typer.Option("--ecg-id", help="The ECG to draw from --store.")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="Or any ECG file qheart can read (WFDB .hea, .npy, .csv, .h5).")] = None,
    sample_rate: Annotated[float | None, typer.Option(
        "--sample-rate", help="Sampling rate of a .npy/.csv --file.")] = None,
) -> None:
    """Draw an ECG as a 12-lead paper-style figure (grid, lead labels, findings as the title)."""
    import json

    from qheart.data.plot import plot_ecg, wrap

    if (store is None) == (file is None):
        raise typer.BadParameter("give either --store with --ecg-id, or --file")
    title, subtitle = "", ""
    if store is not None:
        from qheart.data.store import SignalStore, StoreError

        if ecg_id is None:
            raise typer.BadParameter("--store needs --ecg-id")
        try:
            signals = SignalStore(store)
            row = signals.row_of(ecg_id)
        except (StoreError, KeyError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        signal = signals.signal(row)
        meta = signals.metadata.iloc[row]
        found = json.loads(meta["findings"]) if meta.get("findings") else []
        title = wrap(f"ecg_id {ecg_id}: " + "; ".join(found))
        subtitle = wrap(f"report: {meta['report']}") if meta["report"] else ""
    else:
        from qheart.data.readers import read_ecg

        # A bad file raises its typed ECGError: `qheart.cli.main` prints it as one line.
        signal = read_ecg(file, sample_rate=sample_rate)
        title = str(file)
    path = plot_ecg(signal, out, title=title, subtitle=subtitle)
    typer.echo(f"wrote {path}")
