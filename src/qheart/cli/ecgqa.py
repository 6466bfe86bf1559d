"""`qheart data ecgqa`: load one ECG-QA split as published and say what is in it."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from qheart.data.ecgqa import QASample


class Variant(StrEnum):
    paraphrased = "paraphrased"
    template = "template"


class Split(StrEnum):
    train = "train"
    valid = "valid"
    test = "test"


def summarize(
    dataset_dir: Annotated[
        Path,
        typer.Option(
            "--dataset-dir",
            help="ECG-QA folder for one corpus, e.g. ecgqa/ptbxl (holds "
            "answers_for_each_template.csv and paraphrased/, template/).",
            exists=True,
            file_okay=False,
        ),
    ],
    variant: Annotated[Variant, typer.Option(help="Question wording.")],
    split: Annotated[Split, typer.Option(help="Which split to read.")],
    store: Annotated[
        Path | None,
        typer.Option(help="Signal store (from `qheart data prepare`) to join ecg_ids against."),
    ] = None,
) -> None:
    """Count an ECG-QA split's questions per type, the skipped comparison questions, answer-set
    sizes and Table 1 option coverage; with --store, the questions whose ECG is not in the store."""
    from rich.console import Console

    from qheart.data.ecgqa import (
        TEMPLATE_OPTIONS_FILE,
        ECGQAFormatError,
        describe_missing,
        fixed_subset,
        join_store,
        load_split,
        load_template_options,
    )
    from qheart.data.options import OptionsError

    console = Console()
    try:
        qa = load_split(dataset_dir, variant.value, split.value)
        template_options = (
            load_template_options(dataset_dir)
            if (dataset_dir / TEMPLATE_OPTIONS_FILE).is_file()
            else None
        )
    except (ECGQAFormatError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from e

    console.print(
        f"{dataset_dir}/{variant.value}/{split.value}: {len(qa.files)} file(s), "
        f"{len(qa)} single-ECG questions kept, {sum(qa.skipped.values())} skipped"
    )
    if qa.samples:
        try:
            console.print(_kept_table(qa.samples, template_options))
        except OptionsError as e:
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(1) from e
    if template_options is None:
        console.print(f"[yellow]no {TEMPLATE_OPTIONS_FILE}: option coverage not checked[/yellow]")
    if qa.skipped:
        console.print(_skipped_table(qa.skipped))
    console.print(f"fixed 10% subset (seed 0): {len(fixed_subset(qa.samples))} questions")

    if store is not None:
        from qheart.data.store import SignalStore, StoreError

        try:
            signal_store = SignalStore(store)
        except StoreError as e:
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(1) from e
        kept, missing = join_store(qa.samples, signal_store)
        console.print(
            f"store {store} ({len(signal_store)} ECGs): {len(kept)} of {len(qa)} questions have "
            "their ECG"
        )
        if missing:
            console.print(f"[yellow]missing from the store:[/yellow] {describe_missing(missing)}")


def _kept_table(
    samples: Sequence[QASample], template_options: dict[int, list[str]] | None
) -> Table:
    """Per question type: count, distinct answer sets, answers per question, option coverage."""
    from collections import Counter, defaultdict

    from rich.table import Table

    from qheart.data.ecgqa import KEPT_TYPES
    from qheart.data.options import answer_set, candidate_options, options_cover

    by_type: defaultdict[str, list[QASample]] = defaultdict(list)
    for s in samples:
        by_type[s.question_type].append(s)
    table = Table(title="kept questions")
    for column in ("question type", "questions", "distinct answers", "answers per question"):
        table.add_column(column)
    if template_options is not None:
        table.add_column("gold within Table 1 options")
    for question_type in KEPT_TYPES:
        group = by_type.get(question_type, [])
        if not group:
            continue
        sizes = Counter(len(answer_set(s.answer)) for s in group)
        distinct = {a for s in group for a in answer_set(s.answer)}
        row = [
            question_type,
            str(len(group)),
            str(len(distinct)),
            ", ".join(f"{k}: {v}" for k, v in sorted(sizes.items())),
        ]
        if template_options is not None:
            covered = sum(options_cover(s, candidate_options(s, template_options)) for s in group)
            row.append(f"{covered}/{len(group)}")
        table.add_row(*row)
    return table


def _skipped_table(skipped: dict[str, int]) -> Table:
    """Per skipped question type: how many questions."""
    from rich.table import Table

    table = Table(title="skipped (not single-ECG)")
    table.add_column("question type")
    table.add_column("questions")
    for question_type, count in skipped.items():
        table.add_row(question_type, str(count))
    return table
