"""The `qheart` console script: one table mapping subcommands to the functions that implement them.

Each `cli/*.py` module holds thin typer wrappers; heavy imports (torch, faiss, transformers)
happen inside the commands so that `qheart --help` stays instant.
"""

from __future__ import annotations

import typer

from qheart.cli import ask, demo, ecgqa, index, measure, prepare, pretrain, serve, synth, train

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
app.add_typer(data_app, name="data")
app.command("pretrain")(pretrain.pretrain)
app.command("zero-shot")(pretrain.zero_shot)
app.add_typer(index.app, name="index")
app.command("train")(train.train)
app.command("demo")(demo.demo)
app.command("measure")(measure.measure)
app.command("ask")(ask.ask)
app.command("serve")(serve.serve)


def main() -> None:
    app()
