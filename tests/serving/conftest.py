"""Service fixtures: a fake model, an app with a token and small limits, and good ECG files."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.data.ecg_fixtures import PTBXL_NAMES, synthetic_ecg, write_wfdb_record

from .fake_model import FakeQHeart

TOKEN_ENV = "QHEART_TEST_TOKEN"
TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GOOD_QUESTION = "Does this ECG show atrial fibrillation?"
MAX_UPLOAD = 4 * 1024 * 1024


@dataclass(frozen=True)
class GoodRecord:
    """A valid PTB-XL-style WFDB pair (and its .npy twin) with the answer the API gives."""

    folder: Path
    hea: bytes
    dat: bytes
    signal: np.ndarray  # (12, 5000) mV at 500 Hz, as written

    def files(self) -> list[tuple[str, tuple[str, bytes, str]]]:
        return [("files", ("rec.hea", self.hea, "text/plain")),
                ("files", ("rec.dat", self.dat, "application/octet-stream"))]

    def npy(self) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, self.signal.astype(np.float32))
        return buffer.getvalue()


@pytest.fixture(scope="session")
def good_record(tmp_path_factory: pytest.TempPathFactory) -> GoodRecord:
    folder = tmp_path_factory.mktemp("good")
    signal = synthetic_ecg(12, 500, 10, seed=3)
    write_wfdb_record(folder, "rec", signal, 500, PTBXL_NAMES)
    return GoodRecord(folder, (folder / "rec.hea").read_bytes(), (folder / "rec.dat").read_bytes(),
                      signal)


@pytest.fixture(scope="module")
def fake_model() -> FakeQHeart:
    return FakeQHeart("tests/fake-model")


@pytest.fixture(scope="module")
def upload_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uploads")


@pytest.fixture(scope="module")
def token_app(fake_model: FakeQHeart, upload_dir: Path):
    """The app with a required token, a 4 MiB upload limit and uploads under `upload_dir`."""
    from qheart.serving.app import create_app
    from qheart.serving.settings import ServeSettings

    os.environ[TOKEN_ENV] = TOKEN
    try:
        settings = ServeSettings(max_upload_bytes=MAX_UPLOAD, request_timeout_s=20, queue_size=16,
                                 max_batch=4, batch_wait_ms=2, token_env=TOKEN_ENV,
                                 upload_dir=upload_dir, n_examples=2)
        return create_app(fake_model, settings)
    finally:
        del os.environ[TOKEN_ENV]


@pytest.fixture(scope="module")
def client(token_app):
    from fastapi.testclient import TestClient

    with TestClient(token_app, raise_server_exceptions=False) as c:
        yield c
