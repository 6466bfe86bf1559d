"""`qheart ask`: one question about one ECG file, answered by a trained model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _load_model(model: Path, device: str | None):
    """`QHeart.from_pretrained`, looked up at call time (tests substitute a fake class)."""
    from qheart import api

    try:
        return api.QHeart.from_pretrained(model, device=device)
    except (FileNotFoundError, NotADirectoryError, ValueError, KeyError, OSError) as exc:
        typer.echo(f"error: cannot load model {model}: {exc}", err=True)
        raise typer.Exit(2) from None


def _quiet_libraries() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)


def print_answer(answer, console) -> None:
    """The answer, its options with scores, the retrieved reports and any notes, as rich tables."""
    from rich.table import Table

    console.print(f"[bold]Q:[/] {answer.question}", highlight=False)
    console.print(f"[bold magenta]A: {', '.join(answer.answer) or '(no option chosen)'}[/]",
                  highlight=False)
    console.print(f"[dim]question type {answer.question_type}, decode {answer.decode}[/]",
                  highlight=False)
    if answer.raw_text is not None:
        console.print(f"[dim]generated text: {answer.raw_text!r}[/]", highlight=False)
    options = Table(title="options considered", title_justify="left")
    options.add_column("option")
    options.add_column("score", justify="right")
    options.add_column("", min_width=20)
    chosen = set(answer.answer)
    rows = [(o, None if answer.scores is None else answer.scores.get(o)) for o in answer.options]
    if answer.scores is not None:
        rows.sort(key=lambda row: -(row[1] or 0.0))
    for option, score in rows:
        mark = "bold magenta" if option in chosen else None
        bar = "" if score is None else "█" * max(1, round(score * 20)) if score > 0.005 else ""
        options.add_row(option, "–" if score is None else f"{score:.3f}", bar, style=mark)
    console.print(options)
    reports = Table(title="retrieved reports", title_justify="left")
    reports.add_column("similarity", justify="right")
    reports.add_column("ecg_id", justify="right")
    reports.add_column("report")
    for report in answer.reports:
        reports.add_row(f"{report.similarity:.3f}", str(report.ecg_id), report.report)
    console.print(reports)
    hint = getattr(answer, "hint", None)
    if hint:
        console.print("[bold]finding hint given to the model[/]", highlight=False)
        console.print(hint, highlight=False, markup=False)
    measurements = getattr(answer, "measurements", None)
    if measurements:
        console.print("[bold]measurements given to the model[/]", highlight=False)
        console.print(measurements, highlight=False, markup=False)
    for note in answer.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


def ask(
    question: Annotated[str, typer.Argument(help="The question, e.g. \"Does this ECG show atrial fibrillation?\"")],
    model: Annotated[Path, typer.Option("--model", help="A trained model folder (qheart train).")],
    ecg: Annotated[Path, typer.Option("--ecg", help="An ECG file: WFDB .hea (or record path), "
                                                    ".npy, .csv, .h5.")],
    sample_rate: Annotated[float | None, typer.Option(
        "--sample-rate", help="Sampling rate (Hz) of a .npy/.csv file.")] = None,
    decode: Annotated[str, typer.Option("--decode", help="rank: score the options; generate: free text.")] = "rank",
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw the 12-lead figure here (.png/.pdf/.svg).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the answer as JSON.")] = False,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, ... (default: best available).")] = None,
) -> None:
    """Answer a question about an ECG: the answer, the options' scores and the retrieved reports."""
    import json

    from rich.console import Console

    from qheart.data.errors import ECGError

    if decode not in {"rank", "generate"}:
        raise typer.BadParameter(f"{decode!r}: use rank or generate", param_hint="--decode")
    if not question.strip():
        raise typer.BadParameter("the question is empty", param_hint="QUESTION")
    if as_json:  # stdout is for the JSON alone; keep library chatter off stderr too
        _quiet_libraries()
    qa = _load_model(model, device)
    try:
        signal = qa.load_ecg(ecg, sample_rate)
        answer = qa.ask(signal, question, sample_rate=500.0, decode=decode)
    except ECGError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if plot is not None:
        from qheart.data.plot import plot_ecg, wrap

        title = wrap(f"{ecg.name}   Q: {question}   A: {', '.join(answer.answer)}")
        plot_ecg(signal, plot, title=title)
    if as_json:
        typer.echo(json.dumps(answer.to_dict(), indent=2))
        return
    console = Console(soft_wrap=True)
    print_answer(answer, console)
    if plot is not None:
        console.print(f"figure: {plot}", highlight=False)
