"""The `qheart` console script: one table mapping subcommands to the functions that implement them.

Each `cli/*.py` module holds thin typer wrappers; heavy imports (torch, faiss, transformers)
happen inside the commands so that `qheart --help` stays instant.
"""

from __future__ import annotations

import errno
import os
from typing import Annotated

import typer

from qheart.cli import (
    ask,
    compare,
    deepfake,
    demo,
    ecgqa,
    evaluate,
    index,
    measure,
    prepare,
    pretrain,
    serve,
    synth,
    train,
)

app = typer.Typer(
    name="qheart",
    help="Q-HEART: answer clinical questions about 12-lead ECGs.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
data_app = typer.Typer(help="Prepare corpora, generate the synthetic benchmark, plot ECGs.",
                       no_args_is_help=True)
data_app.add_typer(prepare.app, name="prepare")
data_app.command("synth")(synth.synth)
data_app.command("plot")(synth.plot)
data_app.command("ecgqa")(ecgqa.summarize)
data_app.command("compare")(compare.compare)
data_app.command("deepfake")(deepfake.deepfake)
app.add_typer(data_app, name="data")
app.command("pretrain")(pretrain.pretrain)
app.command("zero-shot")(pretrain.zero_shot)
app.add_typer(index.app, name="index")
app.command("train")(train.train)
app.command("evaluate")(evaluate.evaluate)
app.command("demo")(demo.demo)
app.command("measure")(measure.measure)
app.command("ask")(ask.ask)
app.command("serve")(serve.serve)


_options = {"debug": False}


@app.callback()
def _global_options(
    debug: Annotated[bool, typer.Option(
        "--debug", help="On an error, show the full traceback instead of one line.")] = False,
) -> None:
    _options["debug"] = debug


def _is_known_error(exc: BaseException) -> bool:
    """Errors that describe the input or the machine, not a bug: qheart's own typed errors
    (ECGError, StoreError, CorpusError, …) and what the OS reports (disk full, no permission)."""
    if isinstance(exc, OSError):
        return True
    return any(cls.__module__.startswith("qheart.") for cls in type(exc).__mro__)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not any(c.__module__.startswith("qheart.")
                                            for c in type(exc).__mro__):
        where = f"{exc.filename}: " if exc.filename else ""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"{where}disk full ({exc.strerror}); free space and re-run the same command"
        return f"{where}{exc.strerror or exc}"
    return " ".join(str(exc).splitlines()) or type(exc).__name__


def main(argv: list[str] | None = None) -> None:
    """The console script. A known error (see `_is_known_error`) is one line on stderr and exit
    code 1, handled here once for every command; `qheart --debug ...` re-raises it with its
    traceback. Anything else is a bug and keeps its traceback."""
    _options["debug"] = False
    # Libraries that load encoders themselves (bert-score) would otherwise fetch hub kernels on a
    # GPU, which fails offline; our own loads pass use_kernels=False.
    os.environ.setdefault("USE_HUB_KERNELS", "NO")
    # transformers draws a bar over the tensors of every model it loads (a blink for ours) on
    # every command, `qheart ask` included; our own bars are plain tqdm and stay.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        app(args=argv)
    except Exception as exc:
        if _options["debug"] or not _is_known_error(exc):
            raise
        typer.echo(f"error: {_one_line(exc)}", err=True)
        raise SystemExit(1) from None
