"""`qheart data prepare {ptbxl,mimic-iv-ecg,code15}`: corpora as published → signal store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Read a corpus as published into a memory-mapped signal store.",
                  no_args_is_help=True)

_ROOT_HELP = {
    "ptbxl": "PTB-XL folder as published (holds ptbxl_database.csv and records500/).",
    "mimic-iv-ecg": "MIMIC-IV-ECG folder as published (holds record_list.csv, "
                    "machine_measurements.csv and files/).",
    "code15": "CODE-15% folder (holds exams.csv and exams_part*.hdf5).",
}

Out = Annotated[Path, typer.Option(
    "--out", help="Store folder to create, or to resume: re-running the same command after an "
                  "interruption continues where it stopped.")]
Workers = Annotated[int | None, typer.Option(
    "--workers", min=1, help="Worker processes (default: all cores).")]
ChunkSize = Annotated[int | None, typer.Option(
    "--chunk-size", min=1, help="Records per chunk, the unit of parallel work and of resuming "
                                "(default: 128, fewer for small corpora so every worker has work; "
                                "a resumed run keeps the size the folder was started with).")]
Limit = Annotated[int | None, typer.Option(
    "--limit", min=0, help="Only the first N records in the corpus's order (for a trial run).")]
VerifyChecksums = Annotated[bool, typer.Option(
    "--verify-checksums/--no-verify-checksums",
    help="Compare each WFDB header's checksums with its data and skip records that differ "
         "(--no-verify-checksums stores them: only for files known to carry wrong checksums).")]


def _root(corpus: str):
    return Annotated[Path, typer.Option("--root", help=_ROOT_HELP[corpus], exists=True,
                                        file_okay=False)]


PtbxlRoot = _root("ptbxl")
MimicRoot = _root("mimic-iv-ecg")
Code15Root = _root("code15")


def _run(corpus: str, root: Path, out: Path, workers: int | None, chunk_size: int | None,
         limit: int | None, verify_checksums: bool = True) -> None:
    from rich.console import Console

    from qheart.data.corpora import CorpusError
    from qheart.data.prepare import PrepareConfig, PrepareError, default_workers, describe, prepare
    from qheart.data.store import StoreError

    console = Console(soft_wrap=True)  # one line per message, whatever the terminal width
    try:
        config = PrepareConfig(corpus=corpus, root=root, out=out,
                               workers=workers or default_workers(), chunk_size=chunk_size,
                               limit=limit, verify_checksums=verify_checksums)
        console.print(f"preparing {corpus} from {root} into {out} with {config.workers} workers",
                      highlight=False)
        result = prepare(config)
    except (CorpusError, PrepareError, StoreError) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("interrupted: finished chunks are kept; run the same command to resume")
        raise typer.Exit(130) from None
    _print_summary(console, describe(result))


def _print_summary(console, summary: dict) -> None:
    resumed = summary["resumed_chunks"]
    console.print(
        f"wrote {summary['records_in_store']} records to {summary['store']}; "
        f"skipped {summary['skipped_in_store']} (reasons in {summary['store']}/skipped.csv); "
        f"{summary['chunks']} chunks of ≤ {summary['chunk_size']} records",
        highlight=False,
    )
    for kind, n in summary["skipped_by_kind"].items():
        console.print(f"  skipped {n} × {kind}", highlight=False)
    console.print(
        f"this run: {summary['processed_this_run']} records read in {summary['elapsed_s']:.1f} s "
        f"= {summary['records_per_s']:.1f} records/s"
        + (f"; {resumed} finished chunk(s) from an earlier run kept" if resumed else ""),
        highlight=False,
    )


@app.command("ptbxl")
def ptbxl(root: PtbxlRoot, out: Out, workers: Workers = None,
          chunk_size: ChunkSize = None, limit: Limit = None,
          verify_checksums: VerifyChecksums = True) -> None:
    """PTB-XL 1.0.3: 500 Hz records + ptbxl_database.csv (scp_codes, folds, noise, report)."""
    _run("ptbxl", root, out, workers, chunk_size, limit, verify_checksums)


@app.command("mimic-iv-ecg")
def mimic_iv_ecg(root: MimicRoot, out: Out, workers: Workers = None,
                 chunk_size: ChunkSize = None, limit: Limit = None,
                 verify_checksums: VerifyChecksums = True) -> None:
    """MIMIC-IV-ECG v1.0, streamed: ecg_id = study_id, report = joined report_0 … report_17."""
    _run("mimic-iv-ecg", root, out, workers, chunk_size, limit, verify_checksums)


@app.command("code15")
def code15(root: Code15Root, out: Out, workers: Workers = None,
           chunk_size: ChunkSize = None, limit: Limit = None,
           verify_checksums: VerifyChecksums = True) -> None:
    """CODE-15%: 400 Hz HDF5 tracings → 500 Hz, ecg_id = exam_id, labels from exams.csv."""
    _run("code15", root, out, workers, chunk_size, limit, verify_checksums)
