"""`qheart evaluate`: thin wrapper over qheart.evaluation (heavy imports inside)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

SYSTEMS: dict[str, list[str]] = {
    "qheart": [],
    "blind": ["model.use_ecg=false"],
    "deaf": ["model.use_question=false"],
    "no-dynamic-prompting": ["model.dynamic_prompting=false"],
    "no-retrieval": ["model.use_retrieval=false"],
    "no-et-mapper": ["model.mapper_layers=0"],
    "no-positional-skip": ["model.positional_skip=false"],
    "frozen-llm": ["model.freeze_llm=true"],
    "frozen-encoder": ["model.freeze_encoder=true"],
    "all-measurements": ["model.use_measurements=true", "model.measurement_scope=all"],
    "no-measurements": ["model.use_measurements=false"],
    "lead-tokens": ["model.lead_tokens=true"],
    "measurement-tokens": ["model.lead_tokens=true", "model.measurement_tokens=true"],
    "no-finding-hints": ["model.finding_hints=false"],
    "per-token-loss": ["model.answer_weighting=token"],
}
"""Table 3/4's systems as `--set` overrides of the same preset (one config field each), and
six beyond the paper: `all-measurements` (the ECG's whole measurement block in its context
instead of only what the question names), `lead-tokens` (per-lead signal-quality features and
lead names in the prefix), `measurement-tokens` (the measurements as numbers in the prefix, on
top of the lead tokens), and three that take back a `cpu-small` choice: `no-measurements`
(without the line of the measurements the question names), `no-finding-hints` (without the
encoder's reading of the findings a question names) and `per-token-loss` (answer tokens
weighted alike instead of once per question)."""


def _print_em(console, title: str, em) -> None:
    from rich.table import Table

    from qheart.evaluation.metrics import LEAD_SPECIFIC

    table = Table(title=title)
    for column in ("", "verify", "choose", "query", "avg", "overall", LEAD_SPECIFIC):
        table.add_column(column)
    cells = [em.by_type.get(t) for t in ("single-verify", "single-choose", "single-query")]
    fmt = lambda c: "—" if c is None else f"{c.accuracy:.3f} (n={c.n})"  # noqa: E731
    table.add_row("EM", *[fmt(c) for c in cells], f"{em.avg.accuracy:.3f}", fmt(em.overall),
                  fmt(em.by_scope.get(LEAD_SPECIFIC)))
    console.print(table)


def evaluate_split(model_dir: Path, data: Path, store: Path | None, split: str,
                   subset: float | None, decode: str, limit: int | None, out: Path,
                   text: bool, batch_size: int, console, multi_rule: str | None = None) -> dict:
    """Evaluate one model on one split with one decoding; write and print the results."""
    from qheart.api import QHeart
    from qheart.data.leads import is_lead_specific
    from qheart.evaluation.evaluate import answer_questions, split_questions
    from qheart.evaluation.metrics import exact_match, text_metrics
    from qheart.evaluation.report import write_results
    from qheart.training.instruct_data import Benchmark

    model = QHeart.from_pretrained(model_dir)
    model.multi_rule = multi_rule or model.multi_rule
    questions = split_questions(model, Benchmark.from_path(data, store), split, subset, limit,
                                progress=True)
    run = answer_questions(model, questions, decode=decode, batch_size=batch_size, out=out)
    records = run.records
    em = exact_match([r.predicted for r in records], [r.gold for r in records],
                     [r.question_type for r in records], [r.attribute_type for r in records],
                     lead_specific=[is_lead_specific(r.question) for r in records])
    metrics = text_metrics([r.predicted for r in records], [r.gold for r in records]) \
        if text else None
    invalid = sum(not r.valid for r in records)
    meta = {"model": str(model_dir), "data": str(data), "split": split, "subset": subset,
            "decode": decode, "multi_rule": model.multi_rule if decode == "rank" else None,
            "n": len(records), "invalid_answers": invalid,
            "invalid_rate": invalid / max(len(records), 1)}
    write_results(out, em=em, records=records, text=metrics, meta=meta,
                  title=f"{model_dir.name}: {split}{f' ({subset:.0%})' if subset else ''}, {decode}")
    _print_em(console, f"{model_dir.name} on {split}{f' ({subset:.0%})' if subset else ''}, "
                       f"{decode} decoding", em)
    if decode == "generate":
        console.print(f"invalid generated answers: {invalid}/{len(records)}")
    if metrics is not None:
        console.print(f"BERTScore F1 {metrics.bertscore_f1}, ROUGE-L {metrics.rouge_l:.3f}, "
                      f"METEOR {metrics.meteor:.3f}"
                      f"{'' if metrics.meteor_synonyms else ' (no WordNet: without synonyms)'}, "
                      f"BLEU-1 {metrics.bleu1:.3f}")
    console.print(f"written to {out}")
    return {"em": em, "meta": meta, "records": records}


def _questions_csv(path: Path) -> Path:
    """A per-question CSV, or an evaluation folder that holds one."""
    if path.is_dir():
        found = sorted(path.glob("*_questions.csv"))
        if len(found) != 1:
            raise typer.BadParameter(f"{path}: expected one *_questions.csv (a `qheart evaluate` "
                                     f"results folder), found {len(found)}")
        return found[0]
    if not path.is_file():
        raise typer.BadParameter(f"{path}: no such file or folder")
    return path


def _system_name(path: Path) -> str:
    """Who answered, from where `qheart evaluate` put the results: MODEL/eval/<tag>/ → MODEL,
    <out>/<system>/<tag>/ (the demo's eval/qheart/test-rank) → system."""
    above_tag = (path.parent if path.is_file() else path).resolve().parent
    return above_tag.parent.name if above_tag.name == "eval" else above_tag.name


def _seed_runs(path: Path) -> list[Path]:
    """One --compare value: a results folder or CSV, or several (seeds) joined by commas."""
    return [_questions_csv(Path(part)) for part in str(path).split(",") if part]


def compare_results(paths: list[Path], out: Path | None, console) -> None:
    """Paired comparison of two evaluations of the same questions (A = the first); each side may
    be several seeds, comma-separated, seed s of A paired with seed s of B and pooled."""
    from qheart.evaluation.paired import pair_records, paired_cells, paired_markdown
    from qheart.evaluation.report import read_questions_csv

    if len(paths) != 2:
        raise typer.BadParameter(f"--compare takes exactly two results (A, then B), got {len(paths)}")
    runs = [_seed_runs(p) for p in paths]
    if len(runs[0]) != len(runs[1]):
        raise typer.BadParameter(f"--compare: A has {len(runs[0])} results and B {len(runs[1])}; "
                                 "give both sides the same seeds, in the same order")
    csvs = [", ".join(str(c) for c in side) for side in runs]
    names = [_system_name(side[0]) for side in runs]
    if names[0] == names[1]:
        names = ["A", "B"]
    if len(runs[0]) > 1:
        names = [f"{name} ({len(runs[0])} seeds)" for name in names]
    try:
        pairs = pair_records([read_questions_csv(c) for c in runs[0]],
                             [read_questions_csv(c) for c in runs[1]])
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    cells = paired_cells(pairs)
    markdown = paired_markdown(names[0], names[1], cells)
    console.print(f"A = {names[0]} ({csvs[0]})\nB = {names[1]} ({csvs[1]})\n\n{markdown}")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "paired.md").write_text(f"# {names[0]} against {names[1]}\n\n- A: {csvs[0]}\n"
                                       f"- B: {csvs[1]}\n\n{markdown}\n", encoding="utf-8")
        (out / "paired.json").write_text(json.dumps(
            {"a": str(csvs[0]), "b": str(csvs[1]),
             "cells": {k: c.to_dict() for k, c in cells.items()}}, indent=2) + "\n",
            encoding="utf-8")
        console.print(f"written to {out / 'paired.md'}")


def evaluate_yardstick(model_dir: Path, ptbxl: Path, decode: str, out: Path, console,
                       per_side: int | None = None) -> None:
    from qheart.api import QHeart
    from qheart.evaluation.evaluate import answer_yardstick, yardstick_questions
    from qheart.evaluation.report import yardstick_markdown
    from qheart.evaluation.yardstick import score_yardstick

    model = QHeart.from_pretrained(model_dir)
    samples, signals, yardstick = yardstick_questions(ptbxl, max_per_side=per_side)
    answers = answer_yardstick(model, samples, signals, decode=decode)
    yes_scores = ([a.scores.get("yes", 0.0) for a in answers]
                  if all(a.scores is not None for a in answers) else None)
    table = score_yardstick(samples, [a.answer for a in answers], yes_scores)
    markdown = yardstick_markdown(table, yardstick.counts, yardstick.skipped)
    out.mkdir(parents=True, exist_ok=True)
    (out / "yardstick.md").write_text(markdown)
    (out / "yardstick.json").write_text(json.dumps(table.to_dict(), indent=1, default=str))
    console.print(markdown)
    console.print(f"written to {out / 'yardstick.md'}")


def parse_fraction(value: str | None) -> float | None:
    """`--subset` as users write it: "10%" or "0.1" → 0.1; anything outside (0, 1] is refused."""
    if value is None:
        return None
    text = value.strip()
    try:
        fraction = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise typer.BadParameter(
            f"--subset takes a fraction such as 10% or 0.1, not {value!r}") from None
    if not 0.0 < fraction <= 1.0:
        raise typer.BadParameter(f"--subset must be in (0, 1] (or 0–100%), not {value!r}")
    return fraction


def evaluate(
    model: Annotated[Path | None, typer.Option(help="A `qheart train` model folder.")] = None,
    data: Annotated[Path | None, typer.Option(
        help="A synthetic benchmark folder, or an ECG-QA folder (with --store).")] = None,
    store: Annotated[Path | None, typer.Option(help="Signal store for real ECG-QA.")] = None,
    split: Annotated[str, typer.Option(help="train | valid | test")] = "test",
    subset: Annotated[str | None, typer.Option(
        help="Evaluate the paper's fixed subset of this fraction: 10% or 0.1 (the \"10% test\").")
    ] = None,
    decode: Annotated[str, typer.Option(help="rank (always a valid option set) | generate "
                                             "(free text parsed to options) | both")] = "rank",
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many questions.")] = None,
    ptbxl: Annotated[Path | None, typer.Option(
        help="A PTB-XL folder (published layout): the real-data yardstick.")] = None,
    out: Annotated[Path | None, typer.Option(help="Results folder (default MODEL/eval/…).")] = None,
    text_metrics: Annotated[bool, typer.Option(
        help="Also BERTScore / ROUGE-L / METEOR / BLEU-1.")] = True,
    batch_size: Annotated[int, typer.Option(help="Questions per batched pass.")] = 16,
    yardstick_per_side: Annotated[int | None, typer.Option(
        help="--ptbxl: at most this many yes (and as many no) questions per finding.")] = None,
    table: Annotated[Path | None, typer.Option(
        help="Train and evaluate Table 3/4's systems on this benchmark (needs --encoder, "
             "--index, --budget).")] = None,
    encoder: Annotated[Path | None, typer.Option(help="--table: the pre-training run.")] = None,
    index: Annotated[Path | None, typer.Option(help="--table: the report index.")] = None,
    budget: Annotated[float, typer.Option(help="--table: training minutes per system.")] = 20.0,
    seeds: Annotated[int, typer.Option(help="--table: seeds per system (mean ± 95% CI).")] = 1,
    systems: Annotated[list[str] | None, typer.Option(
        "--system", help=f"--table: systems to run (repeatable; default all: {', '.join(SYSTEMS)})."
    )] = None,
    multi_rule: Annotated[str | None, typer.Option(
        help="rank: how many options a multi-answer question gets — grow (the most probable "
             "set, greedily; the default) | threshold (options within 0.7× of the best).")
    ] = None,
    compare: Annotated[list[Path] | None, typer.Option(
        help="Twice: two results folders (or *_questions.csv) of the same questions; prints A − B "
             "per type, paired (bootstrap interval, exact McNemar). Several seeds per side: "
             "comma-separated, in the same order on both sides (pooled, seed by seed).")] = None,
) -> None:
    """Exact match per question type (Tables 3–4), text metrics, and the real-data yardstick."""
    from rich.console import Console

    console = Console()
    fraction = parse_fraction(subset)
    if compare:
        compare_results(compare, out, console)
        return
    if table is not None:
        run_table(table, encoder, index, budget, seeds, systems or list(SYSTEMS), fraction,
                  out or Path("runs/table"), console)
        return
    if model is None:
        raise typer.BadParameter("--model is needed (or --table to train the systems)")
    decodes = ["rank", "generate"] if decode == "both" else [decode]
    if any(d not in ("rank", "generate") for d in decodes):
        raise typer.BadParameter(f"--decode must be rank, generate or both, not {decode!r}")
    if multi_rule is not None:
        from qheart.models.decoding import MULTI_RULES

        if multi_rule not in MULTI_RULES:
            raise typer.BadParameter(f"--multi-rule must be one of {', '.join(MULTI_RULES)}, "
                                     f"not {multi_rule!r}")
    if data is None and ptbxl is None:
        raise typer.BadParameter("give --data (an ECG-QA split) and/or --ptbxl (the yardstick)")
    from qheart.data.ecgqa import SPLITS

    if split not in SPLITS:  # before the model loads
        raise typer.BadParameter(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    base = out or model / "eval"
    for d in decodes:
        if data is not None:
            tag = f"{split}{'-subset' if fraction else ''}-{d}"
            if d == "rank" and multi_rule is not None:
                tag += f"-{multi_rule}"
            evaluate_split(model, data, store, split, fraction, d, limit, base / tag, text_metrics,
                           batch_size, console, multi_rule)
        if ptbxl is not None:
            evaluate_yardstick(model, ptbxl, d, base / f"yardstick-{d}", console,
                               yardstick_per_side)


def run_table(bench: Path, encoder: Path | None, index: Path | None, budget: float, seeds: int,
              systems: list[str], subset: float | None, out: Path, console) -> None:
    """Train each system for `budget` minutes per seed, evaluate each on the test split (rank
    decoding), print and write the Table 3/4-style comparison."""
    from qheart.cli.train import train
    from qheart.evaluation.report import comparison_markdown, comparison_rows, write_comparison

    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        raise typer.BadParameter(f"unknown systems {sorted(unknown)}; known: {list(SYSTEMS)}")
    results: dict[str, list] = {}
    records: dict[str, list] = {}
    for system in systems:
        for seed in range(seeds):
            model_dir = out / f"{system}-seed{seed}"
            if not (model_dir / "config.json").is_file():
                resume = (model_dir / "checkpoint").is_dir()
                train(data=bench, out=model_dir, encoder=encoder, index=index, store=None,
                      preset="cpu-small", config=None, set_=SYSTEMS[system],
                      max_minutes=budget, max_steps=None, seed=seed, resume=resume)
            result = evaluate_split(model_dir, bench, None, "test", subset, "rank", None,
                                    model_dir / "eval" / "test-rank", False, 16, console)
            results.setdefault(system, []).append(result["em"])
            records.setdefault(system, []).append(result["records"])
    rows = comparison_rows(results, paper_subset="10% test" if subset else "all test")
    paired = paired_against_qheart(records)
    write_comparison(out, rows, meta={"budget_minutes": budget, "seeds": seeds, "bench": str(bench)},
                     extra_markdown=paired)
    console.print(comparison_markdown(rows, data_label="ours, synthetic benchmark"))
    if paired:
        console.print(paired)


def paired_against_qheart(records: dict[str, list]) -> str:
    """Q-HEART against every other system, question by question, seeds pooled (seed with
    seed); empty without a Q-HEART row."""
    from qheart.evaluation.paired import pair_records, paired_cells, paired_markdown

    if "qheart" not in records:
        return ""
    sections = [f"## Q-HEART against {system}, paired on the same questions\n\n"
                + paired_markdown("qheart", system,
                                  paired_cells(pair_records(records["qheart"], runs)))
                for system, runs in records.items() if system != "qheart"]
    return "\n\n".join(sections)
