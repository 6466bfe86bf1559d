"""Uploaded ECG files: size limit while streaming, safe names, a per-request temporary folder.

The body limit is enforced by `BodyLimitMiddleware` as bytes arrive (a declared Content-Length over
the limit is refused before reading anything), so a huge upload never fills memory or disk. Files
are copied only into a `tempfile.TemporaryDirectory` that the request handler removes when it
returns, whatever happened. Accepted sets: a WFDB pair (one `.hea` + its `.dat` files), or one
`.npy` / `.csv` / `.h5` / `.hdf5` file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qheart.serving.errors import ServiceError

WFDB_HEADER = ".hea"
WFDB_DATA = ".dat"
SINGLE_FILE = (".npy", ".csv", ".h5", ".hdf5")
MAX_FILES = 4
"""A WFDB header and its data file(s); PTB-XL needs 2, PTB Diagnostic 3 (.dat + .xyz)."""
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_CHUNK = 256 * 1024


class UploadError(ServiceError):
    """An upload the service refuses before reading it as an ECG (answered with `status`)."""


class BodyTooLargeError(UploadError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "PayloadTooLarge", f"request body larger than the limit of {limit} bytes")


def safe_name(filename: str | None) -> str:
    """The uploaded file's base name with unusual characters replaced; folders never survive."""
    name = _UNSAFE_CHARS.sub("_", Path((filename or "").replace("\\", "/")).name)
    if not name.strip("._") or name.startswith(".") or len(name) > 128:
        raise UploadError(400, "BadFileName", f"file name {filename!r}: give a plain file name "
                          "(letters, digits, '.', '_', '-'; not starting with '.')")
    return name


def check_file_set(names: Sequence[str]) -> None:
    """Refuse sets of files that are not one record, naming what is wrong."""
    if not names:
        raise UploadError(400, "NoFile", "no ECG file uploaded (form field 'files')")
    if len(names) > MAX_FILES:
        raise UploadError(400, "TooManyFiles", f"{len(names)} files uploaded; at most {MAX_FILES} "
                          "(one WFDB .hea with its .dat, or one .npy/.csv/.h5 file)")
    if len(set(names)) != len(names):
        raise UploadError(400, "DuplicateFile", f"the same file name is uploaded twice: {names}")
    suffixes = [Path(n).suffix.lower() for n in names]
    headers = [n for n, s in zip(names, suffixes, strict=True) if s == WFDB_HEADER]
    if headers:
        if len(headers) > 1:
            raise UploadError(400, "TooManyRecords", f"several WFDB headers uploaded: {headers}")
        return  # the reader names missing or extra data files precisely
    if len(names) > 1:
        raise UploadError(400, "TooManyRecords",
                          f"{len(names)} files without a WFDB header: {names}; upload one record")
    if suffixes[0] == WFDB_DATA:
        raise UploadError(400, "MissingHeader", f"{names[0]}: a WFDB data file needs its .hea header")
    if suffixes[0] not in SINGLE_FILE:
        raise UploadError(415, "UnknownFormatError",
                          f"{names[0]}: unknown ECG format (supported: WFDB .hea + .dat, "
                          ".npy, .csv, .h5/.hdf5)")


def record_path(saved: Sequence[Path]) -> Path:
    """The path to hand to the reader: the .hea of a WFDB pair, else the single file."""
    for path in saved:
        if path.suffix.lower() == WFDB_HEADER:
            return path
    return saved[0]


async def save_uploads(files: Sequence[Any], directory: Path, max_bytes: int) -> list[Path]:
    """Copy starlette `UploadFile`s into `directory` in chunks, counting bytes against the limit."""
    names = [safe_name(f.filename) for f in files]
    check_file_set(names)
    total = 0
    saved = []
    for upload, name in zip(files, names, strict=True):
        path = directory / name
        with path.open("xb") as out:
            while chunk := await upload.read(_CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise BodyTooLargeError(max_bytes)
                out.write(chunk)
        saved.append(path)
    return saved


class BodyLimitMiddleware:
    """ASGI middleware: refuse request bodies over `max_bytes` with 413, counting as they stream."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await _send_json(send, 400, "BadRequest", "Content-Length is not a number")
                return
            if too_big:
                await _send_json(send, 413, "PayloadTooLarge",
                                 f"request body of {int(declared)} bytes is over the limit of "
                                 f"{self.max_bytes} bytes")
                return
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError as exc:
            if started:
                raise
            await _send_json(send, exc.status, exc.error, exc.detail)


async def _send_json(send, status: int, error: str, detail: str) -> None:
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
