"""Run the app with uvicorn in a background thread on a free loopback port (tests, benchmarks,
notebooks). Only loopback addresses are accepted: this helper never exposes a service."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from qheart.serving.settings import LOOPBACK_HOSTS


@contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0,
                    startup_timeout_s: float = 30.0) -> Iterator[str]:
    """Yield the base URL (http://127.0.0.1:PORT) while uvicorn serves `app`; stop on exit."""
    import uvicorn

    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"host {host!r}: serve_in_thread only binds loopback addresses")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="qheart-uvicorn")
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"uvicorn did not start on {host}:{bound_port}")
        time.sleep(0.02)
    try:
        yield f"http://{host if ':' not in host else f'[{host}]'}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
