"""The service and `qheart ask` on a real (tiny, 6-step) Q-HEART model folder: the answers are
exactly what `QHeart.ask` gives for the same record, and bad input still gets a 4xx JSON error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from .conftest import GOOD_QUESTION, GoodRecord


@pytest.fixture(scope="module")
def real_model(tiny_model_dir: Path):
    from qheart.api import QHeart

    return QHeart.from_pretrained(tiny_model_dir, device="cpu")


def _same_answer(body: dict, expected: dict) -> None:
    for key in ("answer", "question_type", "options", "reports", "decode", "notes"):
        assert body[key] == expected[key], key
    if expected["scores"] is None:
        assert body["scores"] is None
    else:
        assert body["scores"].keys() == expected["scores"].keys()
        for option, score in expected["scores"].items():
            assert body["scores"][option] == pytest.approx(score, abs=1e-5), option


def test_service_on_real_model_answers_like_the_api(real_model, good_record: GoodRecord, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from qheart.serving.app import create_app
    from qheart.serving.settings import ServeSettings

    app = create_app(real_model, ServeSettings(n_examples=1, upload_dir=tmp_path,
                                               token_env="QHEART_NO_SUCH_VAR"))
    with TestClient(app, raise_server_exceptions=False) as client:
        info = client.get("/v1/model").json()["model"]
        assert info["model_dir"] == str(real_model.directory)
        questions = client.get("/v1/questions").json()
        assert questions and all(isinstance(q, str) for qs in questions.values() for q in qs)
        for question in (GOOD_QUESTION, "What leads show ST elevation?"):
            response = client.post("/v1/ask", data={"question": question}, files=good_record.files())
            assert response.status_code == 200, response.text
            expected = real_model.ask(good_record.folder / "rec.hea", question).to_dict()
            _same_answer(response.json(), expected)
        bad = client.post("/v1/ask", data={"question": GOOD_QUESTION},
                          files=[("files", ("rec.hea", good_record.hea, "text/plain"))])
        assert bad.status_code == 422 and "rec.dat" in bad.json()["detail"]
        no_rate = client.post("/v1/ask", json={"question": GOOD_QUESTION, "signal": good_record.signal.tolist()})
        assert no_rate.status_code == 422 and no_rate.json()["error"] == "SampleRateError"
        again = client.post("/v1/ask", json={"question": GOOD_QUESTION, "signal": good_record.signal.tolist(),
                                             "sample_rate": 500})
        assert again.status_code == 200
        _same_answer(again.json(), real_model.ask(good_record.signal, GOOD_QUESTION, sample_rate=500).to_dict())
    assert list(tmp_path.iterdir()) == []


def test_qheart_ask_on_real_model(tiny_model_dir: Path, real_model, good_record: GoodRecord, tmp_path: Path) -> None:
    from qheart.cli import app

    plot = tmp_path / "fig.png"
    runner = CliRunner()
    result = runner.invoke(app, ["ask", "--model", str(tiny_model_dir), "--ecg", str(good_record.folder / "rec.hea"),
                                 "--device", "cpu", "--plot", str(plot), "--json", GOOD_QUESTION])
    assert result.exit_code == 0, result.output
    _same_answer(json.loads(result.stdout), real_model.ask(good_record.folder / "rec.hea", GOOD_QUESTION).to_dict())
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_qheart_ask_on_a_real_ptbxl_record(tiny_model_dir: Path, real_model, real_samples: Path,
                                           tmp_path: Path) -> None:
    from qheart.cli import app

    record = next(iter(sorted((real_samples / "ptb-xl").rglob("*_hr.hea"))), None)
    if record is None:
        pytest.skip("no PTB-XL 500 Hz record in the real samples")
    plot = tmp_path / "ptbxl.png"
    result = CliRunner().invoke(app, ["ask", "--model", str(tiny_model_dir), "--ecg", str(record), "--device",
                                      "cpu", "--plot", str(plot), "What leads show ST elevation?"])
    assert result.exit_code == 0, result.output
    expected = real_model.ask(record, "What leads show ST elevation?")
    assert f"A: {', '.join(expected.answer)}" in result.stdout
    assert "retrieved reports" in result.stdout
    assert plot.stat().st_size > 50_000 and plot.read_bytes().startswith(b"\x89PNG")
