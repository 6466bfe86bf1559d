"""`qheart data prepare {ptbxl,mimic-iv-ecg,code15}`: corpora as published → signal store."""

from __future__ import annotations

import typer

app = typer.Typer(help="Read a corpus as published into a memory-mapped signal store.",
                  no_args_is_help=True)
