"""DeepFake ECGs (deepfake-ecg generator) → signal store: leads, units, seeding, resume, errors.

All but the last test replace the generator network with a fake one, so they need neither the
optional package nor its 42 MB checkpoint.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from qheart.data.corpora import deepfake
from qheart.data.corpora.deepfake import (
    DeepfakeConfig,
    DeepfakeError,
    generate_store,
    noise,
    to_twelve_leads,
)
from qheart.data.leads import LEADS
from qheart.data.store import SignalStore

F16_TOL = 6.0 * 2.0**-11  # float16 storage: |x| <= 6 mV → error <= 6 mV × 2**-11


def fake_network(z: torch.Tensor) -> torch.Tensor:
    """Stands in for the GAN: (B, 8, 5000) noise → (B, 8, 5000) in (-1, 1), each lead different."""
    scale = torch.linspace(0.05, 0.4, z.shape[1]).view(1, -1, 1)
    return torch.tanh(z) * scale


def _expected(seed: int, indices: range) -> np.ndarray:
    z = torch.from_numpy(np.stack([noise(seed, k) for k in indices]))
    return to_twelve_leads(fake_network(z).numpy())


def test_leads_derived_by_einthoven_and_goldberger_in_millivolts() -> None:
    eight = np.random.default_rng(0).uniform(-1, 1, (3, 8, 5000)).astype(np.float32)
    twelve = to_twelve_leads(eight)  # (3, 12, 5000)
    assert twelve.shape == (3, 12, 5000) and twelve.dtype == np.float32
    lead = {name: twelve[:, i] for i, name in enumerate(LEADS)}
    lead_i, lead_ii = 6.0 * eight[:, 0], 6.0 * eight[:, 1]  # tanh × 6000 µV = × 6 mV
    np.testing.assert_allclose(lead["I"], lead_i, rtol=1e-6)
    np.testing.assert_allclose(lead["II"], lead_ii, rtol=1e-6)
    np.testing.assert_allclose(lead["III"], lead_ii - lead_i, atol=1e-5)
    np.testing.assert_allclose(lead["aVR"], -(lead_i + lead_ii) / 2, atol=1e-5)
    np.testing.assert_allclose(lead["aVL"], lead_i - lead_ii / 2, atol=1e-5)
    np.testing.assert_allclose(lead["aVF"], lead_ii - lead_i / 2, atol=1e-5)
    for k, name in enumerate(("V1", "V2", "V3", "V4", "V5", "V6")):
        np.testing.assert_allclose(lead[name], 6.0 * eight[:, 2 + k], rtol=1e-6)
    # Kirchhoff: the augmented leads sum to zero, and I + III = II.
    np.testing.assert_allclose(lead["aVR"] + lead["aVL"] + lead["aVF"], 0.0, atol=1e-5)
    np.testing.assert_allclose(lead["I"] + lead["III"], lead["II"], atol=1e-5)
    with pytest.raises(DeepfakeError, match=r"\(n, 8, 5000\)"):
        to_twelve_leads(np.zeros((1, 12, 5000), np.float32))


def test_units_a_full_scale_output_is_six_millivolts() -> None:
    eight = np.zeros((1, 8, 5000), np.float32)
    eight[:, 1] = 1 / 6  # lead II at 1000 µV
    twelve = to_twelve_leads(eight)
    assert twelve[0, 1].max() == pytest.approx(1.0)  # mV
    assert twelve[0, 5].max() == pytest.approx(1.0)  # aVF = II − I/2
    assert twelve[0, 3].max() == pytest.approx(-0.5)  # aVR


def test_store_holds_the_generated_ecgs_in_canonical_form(tmp_path: Path) -> None:
    config = DeepfakeConfig(n=5, seed=3, batch_size=2, chunk_size=3)
    store = generate_store(tmp_path / "df", config, network=fake_network, progress=False)
    assert len(store) == 5 and store.ids.tolist() == [1, 2, 3, 4, 5]
    assert [s["n"] for s in store.info["shards"]] == [3, 2]
    assert store.info["units"] == "mV" and store.info["leads"] == list(LEADS)
    assert store.info["source"] == "deepfake-ecg"
    info = store.info["deepfake"]
    assert info["licence"] == "MIT" and info["seed"] == 3 and info["package"] == "deepfake-ecg==1.1.2"
    meta = store.metadata
    assert meta["report"].tolist() == [""] * 5 and meta["patient_id"].isna().all()
    signals = store.signals(range(5))  # (5, 12, 5000)
    np.testing.assert_allclose(signals, _expected(3, range(5)), atol=F16_TOL)
    np.testing.assert_allclose(signals[:, 2], signals[:, 1] - signals[:, 0], atol=2 * F16_TOL)


def test_an_ecg_depends_only_on_seed_and_index(tmp_path: Path) -> None:
    small = generate_store(tmp_path / "a", DeepfakeConfig(n=3, seed=7, batch_size=1, chunk_size=2),
                           network=fake_network, progress=False).signals(range(3))
    large = generate_store(tmp_path / "b", DeepfakeConfig(n=5, seed=7, batch_size=4, chunk_size=5),
                           network=fake_network, progress=False).signals(range(5))
    other = generate_store(tmp_path / "c", DeepfakeConfig(n=3, seed=8),
                           network=fake_network, progress=False).signals(range(3))
    np.testing.assert_array_equal(small, large[:3])
    assert not np.allclose(small, other)


def test_rerun_resumes_and_other_options_or_foreign_folders_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "df"
    config = DeepfakeConfig(n=4, seed=1, chunk_size=2)
    first = generate_store(out, config, network=fake_network, progress=False).signals(range(4))
    (out / "shards" / "chunk-000001.parquet").unlink()  # as if killed during the last chunk
    calls = []

    def counting(z: torch.Tensor) -> torch.Tensor:
        calls.append(len(z))
        return fake_network(z)

    again = generate_store(out, config, network=counting, progress=False).signals(range(4))
    assert calls == [2]  # only the unfinished chunk was generated
    np.testing.assert_array_equal(first, again)
    with pytest.raises(DeepfakeError, match="seed"):
        generate_store(out, DeepfakeConfig(n=4, seed=2, chunk_size=2), network=fake_network,
                       progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DeepfakeError, match="not empty"):
        generate_store(foreign, config, network=fake_network, progress=False)
    with pytest.raises(DeepfakeError):
        DeepfakeConfig(n=0)


def test_missing_package_is_one_line_naming_the_extra(tmp_path: Path, monkeypatch, capsys) -> None:
    from qheart.cli import main

    monkeypatch.setitem(sys.modules, deepfake.MODULE, None)  # find_spec → None: not installed
    with pytest.raises(DeepfakeError, match=r"pip install 'qheart\[deepfake\]'"):
        deepfake.checkpoint_path()
    out = tmp_path / "df"
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "deepfake", "--out", str(out), "--n", "2"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "qheart[deepfake]" in err and "\n" not in err
    assert not out.exists()  # nothing written before the package is found


def test_a_checkpoint_other_than_the_verified_one_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "g_stat.pt"
    torch.save({"stat_dict": {}}, bogus)
    with pytest.raises(DeepfakeError, match="sha256"):
        deepfake.load_generator(bogus)


def test_cli_writes_the_store(tmp_path: Path, monkeypatch) -> None:
    from qheart.cli import app

    monkeypatch.setattr(deepfake, "load_generator", lambda: fake_network)
    out = tmp_path / "df"
    result = CliRunner().invoke(app, ["data", "deepfake", "--out", str(out), "--n", "3",
                                      "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 ECGs" in result.output
    store = SignalStore(out)
    np.testing.assert_allclose(store.signals(range(3)), _expected(5, range(3)), atol=F16_TOL)
    assert json.loads((out / "deepfake.json").read_text())["seed"] == 5
    assert CliRunner().invoke(app, ["data", "deepfake", "--help"]).exit_code == 0


def test_released_weights_match_the_packages_network_and_are_in_microvolts() -> None:
    """Only where deepfake-ecg is installed: our network definition against the package's, on
    the released weights, and the amplitude scale (lead II R wave about 1 mV, as in PTB-XL)."""
    pytest.importorskip(deepfake.MODULE, reason="optional package deepfake-ecg not installed")
    from deepfakeecg.models import Generator  # the package's own class, for comparison only

    ours = deepfake.load_generator()
    weights = torch.load(deepfake.checkpoint_path(), map_location="cpu", weights_only=True)
    with pytest.warns(FutureWarning):  # its constructor calls the deprecated kaiming_normal
        theirs = Generator()
    theirs.load_state_dict(weights["stat_dict"])
    theirs.eval()
    z = torch.from_numpy(np.stack([noise(0, k) for k in range(4)]))  # (4, 8, 5000)
    with torch.inference_mode():
        a, b = ours(z), theirs(z)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    lead_ii = to_twelve_leads(a.numpy())[:, 1]  # (4, 5000) mV
    r_wave = np.median(np.percentile(lead_ii, 99.5, axis=1) - np.median(lead_ii, axis=1))
    assert 0.3 < r_wave < 3.0  # mV; in µV or 4.88 µV counts it would be off by 1000× or 5×
