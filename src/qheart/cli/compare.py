"""`qheart data compare`: the realism report, synthetic store vs real store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def compare(
    synthetic: Annotated[Path, typer.Option("--synthetic", exists=True, file_okay=False,
                                            help="Signal store of synthetic ECGs (e.g. BENCH/store).")],
    real: Annotated[Path, typer.Option("--real", exists=True, file_okay=False,
                                       help="Signal store of real ECGs (qheart data prepare).")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for compare.png, compare.json, distances.csv and the features.")] = None,
    max_ecgs: Annotated[int, typer.Option("--max-ecgs", min=2, help="ECGs measured per store, "
                                          "drawn at random (about 0.1 s each).")] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Which ECGs are drawn, and the CV folds.")] = 0,
    top: Annotated[int, typer.Option("--top", min=1, help="Features listed in the table.")] = 20,
) -> None:
    """Realism report: distributions of what both can be measured on, per-feature distances and a
    classifier two-sample test (cross-validated AUC; 0.5 = indistinguishable)."""
    import sys

    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress
    from rich.table import Table

    from qheart.data.compare import KEY_FEATURES, CompareConfig, compare_stores, write_report
    from qheart.data.store import SignalStore

    config = CompareConfig(max_ecgs=max_ecgs, seed=seed)
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 140)  # logs: no cropping
    total = min(len(SignalStore(synthetic)), max_ecgs) + min(len(SignalStore(real)), max_ecgs)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("measuring ECGs", total=total)
        report = compare_stores(synthetic, real, config, progress=lambda n: progress.advance(task, n))
    d = report.distances
    shown = d[d["feature"].isin(KEY_FEATURES)]
    rest = d[~d["feature"].isin(KEY_FEATURES)].dropna(subset=["wasserstein_scaled"]).head(top)
    table = Table(title=f"synthetic ({len(report.synthetic.features)}) vs real "
                        f"({len(report.real.features)}), sorted by scaled distance")  # fmt: skip
    for column in ("feature", "synthetic median", "real median", "NaN syn/real", "W1", "W1/σ", "AUC"):
        if column == "feature":
            table.add_column(column, no_wrap=True, min_width=24)
        else:
            table.add_column(column, justify="right")
    for part in (shown, rest):
        for r in part.sort_values("wasserstein_scaled", ascending=False).itertuples():
            table.add_row(escape(r.feature), f"{r.synthetic_median:.3g}", f"{r.real_median:.3g}",
                          f"{r.synthetic_nan:.0%}/{r.real_nan:.0%}", f"{r.wasserstein:.3g}",
                          f"{r.wasserstein_scaled:.2f}", f"{r.auc:.2f}")  # fmt: skip
        table.add_section()
    console.print(table)
    weights = report.two_sample.weights.head(8)
    console.print("classifier leans on: " + ", ".join(f"{escape(k)} ({v:+.2f})"
                                                      for k, v in weights.items()),
                  highlight=False)  # fmt: skip
    folds = ", ".join(f"{a:.2f}" for a in report.two_sample.fold_aucs)
    console.print(f"two-sample AUC (synthetic vs real, {config.folds}-fold CV): "
                  f"{report.two_sample.auc:.3f}  (folds {folds}; 0.5 = indistinguishable)",
                  highlight=False)  # fmt: skip
    for name, auc in report.group_aucs.items():
        console.print(f"  on {name} alone: {auc:.3f}", highlight=False)
    if out is not None:
        paths = write_report(report, out)
        console.print("wrote " + ", ".join(str(p) for p in paths), highlight=False)
