"""`qheart index build/search/precompute/evaluate` end to end with a tiny real encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from qheart.cli import app
from qheart.models.encoder import ECGEncoder, EncoderConfig
from qheart.retrieval.precompute import RetrievedReports
from qheart.retrieval.search import Retriever

from .fakes import clustered_codes, write_ecgqa, write_store

runner = CliRunner()


def test_build_search_precompute_evaluate(tmp_path: Path) -> None:
    codes, labels = clustered_codes(3, 6)
    store = write_store(tmp_path / "store", codes,
                        findings=[[f"finding {label}"] for label in labels],
                        splits=["test" if i % 3 == 0 else "train" for i in range(18)])
    config = EncoderConfig.from_name("cpu-small")
    encoder = ECGEncoder(config).save_pretrained(tmp_path / "enc")
    out = tmp_path / "idx"

    result = runner.invoke(app, ["index", "build", "--data", str(store.root), "--encoder",
                                 str(encoder), "--out", str(out), "--chunk-size", "5"])
    assert result.exit_code == 0, result.output
    assert "indexed 18 ECGs" in result.output
    retriever = Retriever.load(out)
    assert retriever.dim == config.embed_dim
    assert retriever.manifest["encoder"]["path"] == str(encoder.resolve())
    # Whitening is on by default but needs ≥ 4 vectors per dimension: 18 ECGs stay unwhitened.
    assert retriever.manifest["config"]["whiten"] and not retriever.whitened

    ecg = tmp_path / "query.npy"
    np.save(ecg, store.signal(0))
    result = runner.invoke(app, ["index", "search", "--index", str(out), "--ecg", str(ecg),
                                 "-k", "2", "--sample-rate", "500"])
    assert result.exit_code == 0, result.output
    assert "report of ecg 1000" in result.output  # the same signal is its own best match
    result = runner.invoke(app, ["index", "search", "--index", str(out), "--ecg", str(ecg),
                                 "-k", "2", "--sample-rate", "500", "--exclude-ecg-id", "1000"])
    assert result.exit_code == 0, result.output
    assert "report of ecg 1000" not in result.output

    write_ecgqa(tmp_path / "qa", "test", [(1, 1000), (2, 1003), (3, 1003)])
    cache = tmp_path / "test.json"
    result = runner.invoke(app, ["index", "precompute", "--index", str(out), "--dataset-dir",
                                 str(tmp_path / "qa"), "--split", "test", "--store",
                                 str(store.root), "--out", str(cache)])
    assert result.exit_code == 0, result.output
    loaded = RetrievedReports.load(cache, build_id=retriever.build_id)
    assert sorted(loaded.samples) == [1, 2, 3]
    assert "report of ecg 1003" not in loaded.for_sample(2)
    assert json.loads(cache.read_text())["split"] == "test"

    result = runner.invoke(app, ["index", "evaluate", "--index", str(out), "--store",
                                 str(store.root)])
    assert result.exit_code == 0, result.output
    assert "identical finding set" in result.output and "random" in result.output


def test_build_without_whitening_is_recorded(tmp_path: Path) -> None:
    codes, _ = clustered_codes(2, 3)
    store = write_store(tmp_path / "store", codes)
    encoder = ECGEncoder(EncoderConfig.from_name("cpu-small")).save_pretrained(tmp_path / "enc")
    result = runner.invoke(app, ["index", "build", "--data", str(store.root), "--encoder",
                                 str(encoder), "--out", str(tmp_path / "idx"), "--no-whiten"])
    assert result.exit_code == 0, result.output
    manifest = Retriever.load(tmp_path / "idx").manifest
    assert manifest["config"]["whiten"] is False and manifest["plan"]["whiten"] is False
