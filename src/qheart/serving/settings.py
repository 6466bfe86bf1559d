"""What an operator may tune in `qheart serve`; one dataclass, validated on construction."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class ServeSettings:
    """Limits and switches of the service. Defaults suit one person on their own machine."""

    max_upload_bytes: int = 16 * 1024 * 1024
    """Largest request body accepted (all files together); checked while the body streams in."""
    request_timeout_s: float = 60.0
    """A request not answered within this (reading + queue + model) gets 504."""
    queue_size: int = 64
    """Questions waiting for the model; one more gets 503 (the client should retry later)."""
    max_batch: int = 8
    """Most questions answered in one batched forward pass; 1 turns batching off."""
    batch_wait_ms: float = 5.0
    """How long the batcher waits for more questions once it has one (latency it may add)."""
    token_env: str = "QHEART_TOKEN"
    """Environment variable holding the bearer token; unset or empty means no token needed."""
    upload_dir: Path | None = None
    """Where per-request temporary folders are made (default: the system's temporary folder)."""
    n_examples: int = 4
    """Bundled synthetic example ECGs offered on the page (made at start-up, never stored)."""
    examples_seed: int = 7

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1024:
            raise ValueError(f"max_upload_bytes={self.max_upload_bytes}: at least 1024 bytes")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s={self.request_timeout_s}: must be positive")
        if self.queue_size < 1 or self.max_batch < 1:
            raise ValueError(f"queue_size={self.queue_size}, max_batch={self.max_batch}: >= 1")
        if self.batch_wait_ms < 0:
            raise ValueError(f"batch_wait_ms={self.batch_wait_ms}: must be >= 0")
        if not 0 <= self.n_examples <= 16:
            raise ValueError(f"n_examples={self.n_examples}: 0..16")

    def token(self) -> str | None:
        """The bearer token clients must send, read from the environment now (None: no auth)."""
        value = os.environ.get(self.token_env, "").strip()
        return value or None

    def public(self) -> dict:
        """The settings as JSON-safe values (the token is never part of them)."""
        out = asdict(self)
        out["upload_dir"] = None if self.upload_dir is None else str(self.upload_dir)
        return out
