"""`qheart index {build,search,precompute,evaluate}`: thin wrappers over qheart.retrieval
(heavy imports inside the commands so `qheart --help` stays instant)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="FAISS report retrieval over ECG embeddings.", no_args_is_help=True)

EncoderOpt = Annotated[Path, typer.Option(
    help="Encoder folder (config.json + model.safetensors) or a `qheart pretrain` run folder.")]


def _encoder_dir(path: Path) -> Path:
    """Accept a `qheart pretrain` run folder as well as the encoder folder inside it."""
    if not (path / "config.json").is_file() and (path / "encoder" / "config.json").is_file():
        return path / "encoder"
    return path


def _load_embedder(path: Path):
    from qheart.models.encoder import ECGEncoder

    return ECGEncoder.from_pretrained(_encoder_dir(path)).embed


def _stores(paths: list[Path]):
    """Signal stores from paths; a benchmark folder (store/, corpus/) contributes both."""
    from qheart.data.store import SignalStore

    found = []
    for path in paths:
        if (path / "store.json").is_file():
            found.append(SignalStore(path))
            continue
        subs = [path / name for name in ("store", "corpus") if (path / name / "store.json").is_file()]
        if not subs:
            raise typer.BadParameter(f"{path}: neither a signal store nor a folder holding store/ "
                                     "or corpus/")
        found.extend(SignalStore(s) for s in subs)
    return found


def _encoder_from_manifest(index: Path, encoder: Path | None) -> Path:
    if encoder is not None:
        return encoder
    from qheart.retrieval.search import Retriever

    recorded = Retriever.load(index).manifest.get("encoder", {}).get("path")
    if not recorded:
        raise typer.BadParameter("the index records no encoder; pass --encoder")
    return Path(recorded)


@app.command()
def build(
    data: Annotated[list[Path], typer.Option(
        help="Signal store(s) to index (repeatable); a benchmark folder adds its store/ and "
             "corpus/.")],
    encoder: EncoderOpt,
    out: Annotated[Path, typer.Option(help="Index folder to create.")],
    index_type: Annotated[str, typer.Option(
        help="auto | flat | ivf | hnsw | ivfpq (auto: exact up to 1M vectors).")] = "auto",
    split: Annotated[list[str] | None, typer.Option(
        help="Index only rows of these `split` values (repeatable), e.g. train, corpus.")] = None,
    batch_size: Annotated[int, typer.Option(help="ECGs per encoder forward pass.")] = 64,
    chunk_size: Annotated[int, typer.Option(help="ECGs per resumable embedding chunk.")] = 4096,
    nprobe: Annotated[int | None, typer.Option(help="IVF lists searched per query.")] = None,
    whiten: Annotated[bool, typer.Option(
        help="PCA-whiten embeddings and queries inside the index, fitted on this corpus "
             "(removes a direction all embeddings share; off: plain cosine).")] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing index at --out.")] = False,
    restart: Annotated[bool, typer.Option(
        help="Discard embeddings left by an interrupted build instead of resuming.")] = False,
) -> None:
    """Embed every ECG with a report and index it; re-run the same command to resume."""
    from dataclasses import replace

    from rich import print as rprint

    from qheart.retrieval.factory import IndexConfig
    from qheart.retrieval.index import build_index, encoder_fingerprint
    from qheart.retrieval.search import Retriever

    config = IndexConfig(index_type=index_type, whiten=whiten)
    if nprobe is not None:
        config = replace(config, nprobe=nprobe)
    encoder_dir = _encoder_dir(encoder)
    build_index(_stores(data), _load_embedder(encoder_dir), out, config=config,
                encoder=encoder_fingerprint(encoder_dir), splits=split, chunk_size=chunk_size,
                batch_size=batch_size, overwrite=overwrite, restart=restart)
    info = Retriever.load(out).describe()
    rprint(f"[bold]indexed {info['n']} ECGs[/bold] ({info['dim']}-d, "
           f"{'whitened, ' if info['whiten'] else ''}{info['factory']}) in {out}")


@app.command()
def search(
    index: Annotated[Path, typer.Option(help="Index folder from `qheart index build`.")],
    ecg: Annotated[Path, typer.Option(help="Any ECG file qheart reads (WFDB .hea, .npy, .csv, …).")],
    k: Annotated[int, typer.Option("-k", "--k", help="Reports to return.")] = 3,
    encoder: Annotated[Path | None, typer.Option(
        help="Encoder folder (default: the one recorded in the index).")] = None,
    sample_rate: Annotated[float | None, typer.Option(
        help="Sample rate for formats that do not carry one (.npy, .csv).")] = None,
    exclude_ecg_id: Annotated[int | None, typer.Option(
        help="Leave out this ecg_id (the query's own record, if it is in the corpus).")] = None,
    exclude_patient_id: Annotated[int | None, typer.Option(
        help="Leave out every record of this patient.")] = None,
) -> None:
    """Print the reports of the k ECGs most similar to one ECG file, with cosine scores."""
    from rich.console import Console
    from rich.table import Table

    from qheart.data.readers import read_ecg
    from qheart.retrieval.search import Retriever

    retriever = Retriever.load(index)
    embed = _load_embedder(_encoder_from_manifest(index, encoder))
    signal = read_ecg(ecg, sample_rate=sample_rate)  # (12, 5000)
    hits = retriever.search(embed(signal[None]), k, exclude_ecg_ids=[exclude_ecg_id],
                            exclude_patient_ids=[exclude_patient_id])[0]
    table = Table(title=f"top {k} of {len(retriever)} reports for {ecg.name}")
    for column in ("rank", "score", "ecg_id", "report"):
        table.add_column(column)
    for rank, hit in enumerate(hits, 1):
        table.add_row(str(rank), f"{hit.score:.4f}", str(hit.ecg_id), hit.report)
    Console().print(table)


@app.command()
def precompute(
    index: Annotated[Path, typer.Option(help="Index folder from `qheart index build`.")],
    dataset_dir: Annotated[Path, typer.Option(help="ECG-QA dataset folder (official layout).")],
    store: Annotated[Path, typer.Option(help="Signal store holding the questions' ECGs.")],
    out: Annotated[Path, typer.Option(help="Cache file to write (JSON).")],
    variant: Annotated[str, typer.Option(help="paraphrased | template")] = "paraphrased",
    split: Annotated[str, typer.Option(help="train | valid | test")] = "train",
    k: Annotated[int, typer.Option("-k", "--k", help="Reports per ECG.")] = 3,
    encoder: Annotated[Path | None, typer.Option(
        help="Encoder folder (default: the one recorded in the index).")] = None,
    exclude_same_patient: Annotated[bool, typer.Option(
        help="Also leave out other records of the query's patient.")] = True,
    batch_size: Annotated[int, typer.Option(help="ECGs per encoder forward pass.")] = 64,
) -> None:
    """Cache the top-k reports for every question of an ECG-QA split (never the ECG's own)."""
    from rich import print as rprint

    from qheart.data.ecgqa import load_split
    from qheart.data.store import SignalStore
    from qheart.retrieval.precompute import precompute_reports
    from qheart.retrieval.search import Retriever

    retriever = Retriever.load(index)
    embed = _load_embedder(_encoder_from_manifest(index, encoder))
    qa = load_split(dataset_dir, variant, split)
    cache = precompute_reports(retriever, qa.samples, SignalStore(store), embed, k=k,
                               exclude_same_patient=exclude_same_patient, batch_size=batch_size,
                               info={"dataset_dir": str(dataset_dir), "variant": variant,
                                     "split": split})
    cache.save(out)
    rprint(f"[bold]{cache.info['n_samples']} questions[/bold], {cache.info['n_ecgs']} ECGs → {out}"
           + (f" ({cache.info['n_samples_missing_ecg']} questions without an ECG in the store)"
              if cache.info["n_samples_missing_ecg"] else ""))


@app.command()
def evaluate(
    index: Annotated[Path, typer.Option(help="Index folder from `qheart index build`.")],
    store: Annotated[Path, typer.Option(
        help="Signal store of query ECGs with a `findings` column (synthetic benchmark store/).")],
    split: Annotated[str, typer.Option(help="Queries: rows of this `split`.")] = "test",
    k: Annotated[int, typer.Option("-k", "--k", help="Hits per query.")] = 3,
    limit: Annotated[int | None, typer.Option(help="At most this many queries.")] = None,
    encoder: Annotated[Path | None, typer.Option(
        help="Encoder folder (default: the one recorded in the index).")] = None,
    exclude_same_patient: Annotated[bool, typer.Option(
        help="Also leave out other records of the query's patient.")] = True,
    seed: Annotated[int, typer.Option(help="Seed of the random-report baseline.")] = 0,
) -> None:
    """How often retrieved reports share the query ECG's findings, against random reports."""
    from rich.console import Console
    from rich.table import Table

    from qheart.data.store import SignalStore
    from qheart.retrieval.evaluate import findings_agreement
    from qheart.retrieval.search import Retriever

    retriever = Retriever.load(index)
    embed = _load_embedder(_encoder_from_manifest(index, encoder))
    result = findings_agreement(retriever, SignalStore(store), embed, split=split, k=k,
                                limit=limit, exclude_same_patient=exclude_same_patient, seed=seed)
    table = Table(title=f"findings agreement: {result.n_queries} {split} queries × top {k} "
                        f"of {len(retriever)} indexed reports")
    for column in ("metric", "retrieved", "random", "ratio"):
        table.add_column(column)
    for name, label in (("same_findings", "identical finding set"), ("jaccard", "mean Jaccard"),
                        ("query_coverage", "query findings covered")):
        got, base = getattr(result.retrieved, name), getattr(result.random, name)
        table.add_row(label, f"{got:.3f}", f"{base:.3f}",
                      f"{got / base:.2f}×" if base else "inf")
    Console().print(table)
