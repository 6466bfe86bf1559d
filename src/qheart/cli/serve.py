"""`qheart serve`: the HTTP service and web page for one model folder (loopback by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve(
    model: Annotated[Path, typer.Option("--model", help="A trained model folder (qheart train).")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on. Anything but loopback "
                                                     "exposes the service: set a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    max_batch: Annotated[int, typer.Option("--max-batch", min=1,
                                           help="Questions per forward pass (1: no batching).")] = 8,
    batch_wait_ms: Annotated[float, typer.Option("--batch-wait-ms", min=0.0,
                                                 help="Wait this long for a batch to fill.")] = 5.0,
    queue_size: Annotated[int, typer.Option("--queue-size", min=1,
                                            help="Waiting questions before 503.")] = 64,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", min=0.01)] = 16.0,
    timeout_s: Annotated[float, typer.Option("--timeout-s", min=0.1, help="Per-request timeout (504).")] = 60.0,
    token_env: Annotated[str, typer.Option("--token-env", help="Environment variable holding the "
                                                               "bearer token (unset: no token).")] = "QHEART_TOKEN",
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, ...")] = None,
) -> None:
    """Serve POST /v1/ask, the OpenAPI docs at /docs, and the web page at /."""
    try:
        import uvicorn

        from qheart.serving.app import create_app
        from qheart.serving.settings import LOOPBACK_HOSTS, ServeSettings
    except ImportError as exc:
        typer.echo(f"error: {exc.name} is missing; install the serve extra: pip install 'qheart[serve]'",
                   err=True)
        raise typer.Exit(2) from None
    from rich.console import Console

    from qheart.cli.ask import _load_model

    console = Console(stderr=True, soft_wrap=True)
    settings = ServeSettings(max_upload_bytes=int(max_upload_mb * 1024 * 1024), request_timeout_s=timeout_s,
                             queue_size=queue_size, max_batch=max_batch, batch_wait_ms=batch_wait_ms,
                             token_env=token_env)
    if host not in LOOPBACK_HOSTS and settings.token() is None:
        console.print(f"[bold red]warning:[/] listening on {host} without a token: anyone who can "
                      f"reach this address can use the model. Set {token_env} to require one.")
    with console.status(f"loading {model}"):
        qa = _load_model(model, device)
        app = create_app(qa, settings)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"Q-HEART at http://{shown}:{port}/  (API docs: /docs; token "
                  f"{'required' if settings.token() else 'not required'}; batches of up to {max_batch})",
                  highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="info")
