"""`qheart index {build,search,precompute}`."""

from __future__ import annotations

import typer

app = typer.Typer(help="FAISS report retrieval over ECG embeddings.", no_args_is_help=True)
