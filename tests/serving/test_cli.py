"""`qheart ask` and `qheart serve` on the fake model (swapped in for `qheart.api.QHeart`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from qheart import api
from qheart.cli import app

from .conftest import GOOD_QUESTION, GoodRecord
from .fake_model import FakeQHeart

runner = CliRunner()


@pytest.fixture
def fake_class(monkeypatch: pytest.MonkeyPatch) -> type[FakeQHeart]:
    monkeypatch.setattr(api, "QHeart", FakeQHeart, raising=False)
    return FakeQHeart


def test_ask_prints_answer_options_and_reports(fake_class, good_record: GoodRecord, tmp_path: Path) -> None:
    plot = tmp_path / "ecg.png"
    result = runner.invoke(app, ["ask", "--model", str(tmp_path), "--ecg", str(good_record.folder / "rec.hea"),
                                 "--plot", str(plot), "What leads show ST elevation?"])
    assert result.exit_code == 0, result.output
    expected = FakeQHeart().ask(good_record.folder / "rec.hea", "What leads show ST elevation?")
    assert f"A: {', '.join(expected.answer)}" in result.output
    assert "options considered" in result.output and "lead V6" in result.output
    assert "retrieved reports" in result.output
    for report in expected.reports:
        assert f"{report.similarity:.3f}" in result.output
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_ask_json_is_the_answer_dict(fake_class, good_record: GoodRecord, tmp_path: Path) -> None:
    npy = tmp_path / "x.npy"
    np.save(npy, good_record.signal.T)  # (n, 12) also accepted
    result = runner.invoke(app, ["ask", "--model", str(tmp_path), "--ecg", str(npy), "--sample-rate", "500",
                                 "--json", "--decode", "generate", GOOD_QUESTION])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    expected = FakeQHeart().ask(good_record.signal, GOOD_QUESTION, sample_rate=500, decode="generate")
    assert payload == expected.to_dict()


def test_ask_free_form_question_carries_a_note(fake_class, good_record: GoodRecord, tmp_path: Path) -> None:
    result = runner.invoke(app, ["ask", "--model", str(tmp_path), "--ecg", str(good_record.folder / "rec"),
                                 "Tell me about this ECG"])
    assert result.exit_code == 0, result.output
    assert "note:" in result.output


def test_ask_bad_ecg_is_one_clear_error(fake_class, tmp_path: Path) -> None:
    npy = tmp_path / "short.npy"
    np.save(npy, np.random.default_rng(0).normal(size=(12, 500)))
    result = runner.invoke(app, ["ask", "--model", str(tmp_path), "--ecg", str(npy), "--sample-rate", "500",
                                 GOOD_QUESTION])
    assert result.exit_code == 1
    assert "short.npy" in result.output and "at least" in result.output
    assert "Traceback" not in result.output


def test_ask_rejects_unknown_decode(fake_class, good_record: GoodRecord, tmp_path: Path) -> None:
    result = runner.invoke(app, ["ask", "--model", str(tmp_path), "--ecg", str(good_record.folder / "rec.hea"),
                                 "--decode", "beam", GOOD_QUESTION])
    assert result.exit_code == 2 and "beam" in result.output


def test_serve_builds_the_app_on_loopback(fake_class, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    result = runner.invoke(app, ["serve", "--model", str(tmp_path), "--max-batch", "2", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    assert seen["app"].state.settings.max_batch == 2
    assert seen["app"].state.batcher.model.model_dir == str(tmp_path)


def test_serve_warns_when_exposed_without_token(fake_class, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    monkeypatch.delenv("QHEART_TOKEN", raising=False)
    result = runner.invoke(app, ["serve", "--model", str(tmp_path), "--host", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert "without a token" in result.output


@pytest.mark.parametrize("command", ["ask", "serve"])
def test_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "--model" in result.output


def test_ask_prints_measurements_when_the_model_used_them(monkeypatch: pytest.MonkeyPatch,
                                                          good_record: GoodRecord, tmp_path: Path) -> None:
    import dataclasses

    if "measurements" not in {f.name for f in dataclasses.fields(api.Answer)}:
        pytest.skip("this Answer has no measurements field")

    class Measuring(FakeQHeart):
        def ask_many(self, *args, **kwargs):
            return [dataclasses.replace(a, measurements="heart rate 72 bpm; qrs duration 96 ms")
                    for a in super().ask_many(*args, **kwargs)]

    monkeypatch.setattr(api, "QHeart", Measuring, raising=False)
    result = runner.invoke(app, ["ask", "--model", str(tmp_path), "--ecg", str(good_record.folder / "rec.hea"),
                                 GOOD_QUESTION])
    assert result.exit_code == 0, result.output
    assert "qrs duration 96 ms" in result.output
