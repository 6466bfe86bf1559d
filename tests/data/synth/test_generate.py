"""The benchmark on disk: layout, loader, options, splits, determinism, CLI and plot."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from qheart.data.ecgqa import SPLITS, VARIANTS, candidate_options, load_split, load_template_options
from qheart.data.options import options_cover
from qheart.data.store import SignalStore
from qheart.data.synth import generate_benchmark
from qheart.data.synth.generate import CORPUS_ID_OFFSET

N = 30


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate_benchmark(out, N, seed=5, corpus_ecgs=6, chunk_size=8)
    return out


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def test_layout_and_store_metadata(bench):
    store = SignalStore(bench / "store")
    assert len(store) == N and sorted(store.ids) == list(range(1, N + 1))
    meta = store.metadata
    for column in ("ecg_id", "patient_id", "report", "split", "findings", "axis",
                   "rr_interval_ms", "qt_corrected_ms", "lead_findings", "noise"):  # fmt: skip
        assert column in meta.columns
    assert set(meta["split"]) == set(SPLITS)
    assert all(isinstance(json.loads(f), list) and json.loads(f) for f in meta["findings"])
    assert all(r.endswith(".") and len(r) > 5 for r in meta["report"])
    assert store.signals([0, 1]).shape == (2, 12, 5000)
    corpus = SignalStore(bench / "corpus")
    assert set(corpus.metadata["split"]) == {"corpus"}
    assert min(corpus.ids) > CORPUS_ID_OFFSET and not set(corpus.ids) & set(store.ids)
    summary = json.loads((bench / "synth.json").read_text())
    assert summary["config"]["n_ecgs"] == N and summary["ecgs_per_split"]["train"] == 24


def test_questions_load_through_the_ecgqa_loader_with_gold_in_the_options(bench):
    dataset = bench / "ecgqa" / "synthetic"
    options = load_template_options(dataset)
    store = SignalStore(bench / "store")
    split_of = dict(zip(store.metadata["ecg_id"], store.metadata["split"], strict=True))
    seen_ecgs: dict[str, set[int]] = {}
    for variant in VARIANTS:
        for split in SPLITS:
            qa = load_split(dataset, variant, split)
            assert len(qa) > 0 and qa.skipped == {}
            for sample in qa.samples:
                assert options_cover(sample, candidate_options(sample, options)), sample
                assert sample.attribute
                assert split_of[sample.ecg_id] == split
            seen_ecgs.setdefault(split, set()).update(s.ecg_id for s in qa.samples)
    assert not (seen_ecgs["train"] & seen_ecgs["test"]) and not (seen_ecgs["train"] & seen_ecgs["valid"])
    template = load_split(dataset, "template", "train").samples
    paraphrased = load_split(dataset, "paraphrased", "train").samples
    assert [s.sample_id for s in template] == [s.sample_id for s in paraphrased]
    assert [s.answer for s in template] == [s.answer for s in paraphrased]
    assert sum(a.question != b.question for a, b in zip(template, paraphrased, strict=True)) > 0.4 * len(template)


def test_counts_balance_and_lead_share(bench):
    counts = json.loads((bench / "synth.json").read_text())["questions"]["all"]
    assert counts["n"] == 10 * N
    assert abs(counts["verify_yes"] - counts["verify_no"]) <= 3
    assert set(counts["per_type"]) == {"single-verify", "single-choose", "single-query"}
    assert counts["lead_share"] > 0.4


def test_same_seed_gives_identical_files_whatever_the_workers(bench, tmp_path):
    again = tmp_path / "again"
    generate_benchmark(again, N, seed=5, corpus_ecgs=6, chunk_size=8, workers=2)
    assert _digest(again) == _digest(bench)
    other = tmp_path / "other"
    generate_benchmark(other, N, seed=6, chunk_size=8)
    assert _digest(other)["store/shards/chunk-000000.npy"] != _digest(bench)["store/shards/chunk-000000.npy"]


def test_regenerating_into_the_same_folder_replaces_the_previous_run(tmp_path):
    generate_benchmark(tmp_path, 12, seed=1, chunk_size=4)
    generate_benchmark(tmp_path, 6, seed=1, chunk_size=4)
    assert len(SignalStore(tmp_path / "store")) == 6


def test_cli_synth_and_plot(tmp_path):
    from typer.testing import CliRunner

    from qheart.cli import app

    runner = CliRunner()
    out = tmp_path / "bench"
    result = runner.invoke(app, ["data", "synth", "--out", str(out), "--n-ecgs", "6", "--seed", "2",
                                 "--workers", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    for printed in ("verify", "choose", "query", "yes", "no", "lead share", "per template", "findings"):
        assert printed in result.output
    png = tmp_path / "ecg.png"
    result = runner.invoke(app, ["data", "plot", "--store", str(out / "store"), "--ecg-id", "1",
                                 "--out", str(png)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    missing = runner.invoke(app, ["data", "plot", "--store", str(out / "store"), "--ecg-id", "999",
                                  "--out", str(png)])  # fmt: skip
    assert missing.exit_code == 1 and "999" in missing.output


def test_cli_synth_picks_the_generator_version(tmp_path):
    import json

    from typer.testing import CliRunner

    from qheart.cli import app

    runner = CliRunner()
    out = tmp_path / "v2"
    result = runner.invoke(app, ["data", "synth", "--out", str(out), "--n-ecgs", "3",
                                 "--workers", "1", "--realism", "v2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((out / "synth.json").read_text())["config"]["realism"] == "v2"
    unknown = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "x"), "--n-ecgs", "3",
                                  "--realism", "v9"])  # fmt: skip
    assert unknown.exit_code != 0 and "v9" in unknown.output and "v3" in unknown.output
    assert not (tmp_path / "x").exists()


def test_plot_reads_an_ecg_file(tmp_path):
    import numpy as np
    from typer.testing import CliRunner

    from qheart.cli import app

    signal = np.zeros((12, 5000), dtype=np.float32)
    signal[:, ::500] = 1.0
    path = tmp_path / "ecg.npy"
    np.save(path, signal)
    png = tmp_path / "file.png"
    result = CliRunner().invoke(app, ["data", "plot", "--file", str(path), "--sample-rate", "500",
                                      "--out", str(png)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert png.is_file()
