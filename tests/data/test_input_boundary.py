"""The input boundary: every malformed input in `malformed.MUST_FAIL` raises exactly its typed
error, naming the file, within a time bound; every input in `malformed.VALID` reads correctly."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qheart.data.errors import UnreadableRecordError
from qheart.data.readers import read_array, read_ecg, read_wfdb

from .malformed import MUST_FAIL, PICKLE_MARKER, VALID, Case, good_record

TIME_BOUND_S = 5.0
"""Per read, on a loaded 2-core machine; a hang or a whole-file read of 2 GB would blow it."""


def _read(case: Case, folder: Path):
    target, kwargs = case.build(folder)
    if case.family == "array":
        return target, lambda: read_array(target, kwargs["sample_rate"], source="upload.npy")
    return target, lambda: read_ecg(target, **kwargs)


@pytest.mark.parametrize("case", MUST_FAIL, ids=[c.id for c in MUST_FAIL])
def test_malformed_input_raises_its_typed_error_naming_the_file(case: Case, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    target, read = _read(case, folder)
    start = time.perf_counter()
    with pytest.raises(case.error) as caught:
        read()
    elapsed = time.perf_counter() - start
    assert type(caught.value) is case.error, f"{type(caught.value).__name__}: {caught.value}"
    message = str(caught.value)
    name = "upload.npy" if case.family == "array" else Path(target).name
    assert name in message, message
    assert str(folder) in message or case.family == "array", message
    assert case.needle in message, message
    for bad in case.forbidden:
        assert bad not in message, message
    assert "\n" not in message
    assert elapsed < TIME_BOUND_S, f"{elapsed:.2f} s"
    assert not (folder / PICKLE_MARKER).exists(), "an untrusted pickle was executed"


def test_every_family_is_covered() -> None:
    families = {case.family for case in MUST_FAIL}
    assert families == {"wfdb", "npy", "csv", "hdf5", "file", "array"}
    assert len(MUST_FAIL) >= 100
    assert len({case.id for case in MUST_FAIL}) == len(MUST_FAIL)


@pytest.mark.parametrize("valid", VALID, ids=[v.name for v in VALID])
def test_valid_input_still_reads_correctly(valid, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    target, kwargs = valid.build(folder)
    start = time.perf_counter()
    out = read_ecg(target, **kwargs)
    elapsed = time.perf_counter() - start
    assert out.shape == (12, 5000) and out.dtype == np.float32
    np.testing.assert_allclose(out, valid.reference(folder), rtol=0, atol=valid.atol)
    assert elapsed < TIME_BOUND_S, f"{elapsed:.2f} s"


def test_a_long_record_is_read_only_as_far_as_needed(tmp_path: Path) -> None:
    """10 min at 1 kHz: the first 12 s read with sampto give what the whole record gives."""
    import wfdb

    from qheart.data.readers import to_canonical

    from .ecg_fixtures import PTBXL_NAMES

    base = good_record(tmp_path, "long", seconds=600.0, fs=1000)
    whole = wfdb.rdrecord(str(base)).p_signal.T  # (12, 600000)
    expected = to_canonical(np.hstack([whole, whole[:, :1]]), PTBXL_NAMES, 1000, "whole")
    out = read_wfdb(base)
    assert np.abs(out - expected).max() < 1e-3  # ≤ 1 µV: only the mean removed differs


def test_checksum_mismatch_can_be_opted_out(tmp_path: Path) -> None:
    base = good_record(tmp_path, "rec")
    dat = base.with_suffix(".dat")
    data = bytearray(dat.read_bytes())
    data[2001] ^= 0x01  # high byte of sample 1000 = lead 1000 % 12 (aVL): 256 units, 0.256 mV
    dat.write_bytes(bytes(data))
    with pytest.raises(UnreadableRecordError, match=r"rec: checksum mismatch in lead\(s\) AVL "):
        read_ecg(base)
    out = read_ecg(base, verify_checksums=False)
    assert out.shape == (12, 5000)


def test_read_array_is_the_public_entry_for_arrays() -> None:
    from .malformed import ecg

    signal = ecg()
    a = read_array(signal, 500)
    b = read_array(signal.T.tolist(), 500.0, source="x")  # (N, 12) lists work too
    np.testing.assert_allclose(a, signal, atol=1e-6)
    np.testing.assert_array_equal(a, b)
    assert read_array(ecg(fs=250), 250).shape == (12, 5000)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_does_not_block_even_with_a_writer_waiting(tmp_path: Path) -> None:
    """Opening a FIFO that has a writer would succeed; it is still refused, unread."""
    import subprocess

    path = tmp_path / "stream.csv"
    os.mkfifo(path)
    writer = subprocess.Popen([sys.executable, "-c", f"open({str(path)!r}, 'w').write('I\\n1\\n')"])
    try:
        start = time.perf_counter()
        with pytest.raises(UnreadableRecordError, match="FIFO"):
            read_ecg(path, sample_rate=500)
        assert time.perf_counter() - start < TIME_BOUND_S
    finally:
        writer.kill()
        writer.wait()


# --------------------------------------------------------------------------------------- CLI


def _main(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    from qheart.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(argv)
    printed = capsys.readouterr()
    return stopped.value.code, printed.out, printed.err


def test_cli_prints_the_real_error_in_one_line_not_aborted(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    code, out, err = _main(["data", "plot", "--file", str(empty), "--sample-rate", "500",
                            "--out", str(tmp_path / "x.png")], capsys)
    assert code == 1
    assert err.splitlines() == [f"error: {empty}: empty file (0 bytes)"]
    assert "Aborted" not in out + err and "Traceback" not in out + err


@pytest.mark.parametrize("case", [c for c in MUST_FAIL if c.family in {"wfdb", "npy", "csv"}
                                  and c.name in {"rate-negative", "rate-1e9", "fifo",
                                                 "checksum-bytes-flipped", "npz-renamed",
                                                 "adc-counts-int16", "sparse-2gb"}],
                         ids=lambda c: c.id)
def test_cli_one_line_per_bad_file(case: Case, tmp_path: Path,
                                   capsys: pytest.CaptureFixture) -> None:
    target, kwargs = case.build(tmp_path / "in")
    rate = ["--sample-rate", str(kwargs["sample_rate"])] if "sample_rate" in kwargs else []
    code, _, err = _main(["data", "plot", "--file", str(target), *rate,
                            "--out", str(tmp_path / "x.png")], capsys)
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {target}") and case.needle in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_debug_shows_the_traceback_and_bugs_keep_theirs(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    from qheart.cli import main

    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    argv = ["data", "plot", "--file", str(empty), "--sample-rate", "500", "--out", "x.png"]
    with pytest.raises(UnreadableRecordError):
        main(["--debug", *argv])  # re-raised: the console script prints its traceback
    from qheart.data import readers

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(readers, "read_ecg", broken)
    with pytest.raises(ZeroDivisionError):
        main(argv)  # not a known error: never hidden behind one line


def test_cli_one_line_in_a_real_process(tmp_path: Path) -> None:
    import subprocess

    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    cli = [sys.executable, "-c", "from qheart.cli import main; main()", "data", "plot", "--file",
           str(empty), "--sample-rate", "500", "--out", str(tmp_path / "x.png")]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [f"error: {empty}: empty file (0 bytes)"]
    debug = subprocess.run([*cli[:3], "--debug", *cli[3:]], capture_output=True, text=True,
                           timeout=120)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert "UnreadableRecordError" in debug.stderr
