"""`qheart data prepare`: corpora in their published layouts → signal store.

Covers: SIGKILL midway + re-run gives the identical store; broken records are skipped one line
each; MIMIC-IV-ECG's streamed join; CODE-15; and the 100 real PTB-XL records against wfdb.
"""

from __future__ import annotations

import ast
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from qheart.cli import app
from qheart.data.corpora.mimic_iv_ecg import MeasurementJoin
from qheart.data.corpora.ptbxl import parse_scp_codes
from qheart.data.prepare import PrepareConfig, PrepareError, auto_chunk_size, prepare
from qheart.data.readers import read_code15, read_wfdb
from qheart.data.store import FLOAT16_ABSOLUTE_FLOOR, FLOAT16_RELATIVE_ERROR, SignalStore

from .corpus_fixtures import (
    BROKEN_KINDS,
    CODE15_LABELS,
    mimic_ids,
    ptbxl_record_path,
    write_code15,
    write_mimic,
    write_ptbxl,
)

runner = CliRunner()
N_KILL_RECORDS = 300
KILL_CHUNK = 8


def _assert_float16_close(stored: np.ndarray, reference: np.ndarray) -> None:
    """The store's documented promise: |stored − x| ≤ |x|·2⁻¹¹ (or the subnormal floor)."""
    reference = reference.astype(np.float64)
    bound = np.maximum(np.abs(reference) * FLOAT16_RELATIVE_ERROR, FLOAT16_ABSOLUTE_FLOOR)
    # float32 canonical values rounded once more to float16: allow float32 rounding on top.
    assert (np.abs(stored.astype(np.float64) - reference) <= bound * (1 + 1e-6)).all()


def _assert_same_store(a: Path, b: Path) -> None:
    """Identical as data: every shard's bytes, the metadata, the skips and store.json."""
    shards_a = sorted(p.name for p in (a / "shards").iterdir())
    assert shards_a == sorted(p.name for p in (b / "shards").iterdir())
    for name in shards_a:
        if name.endswith(".npy"):
            assert (a / "shards" / name).read_bytes() == (b / "shards" / name).read_bytes(), name
    pd.testing.assert_frame_equal(SignalStore(a).metadata, SignalStore(b).metadata)
    assert (a / "skipped.csv").read_text() == (b / "skipped.csv").read_text()
    assert json.loads((a / "store.json").read_text()) == json.loads((b / "store.json").read_text())


@pytest.fixture(scope="module")
def ptbxl_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ptbxl")
    write_ptbxl(root, N_KILL_RECORDS, broken={17: "flat", 123: "truncated"}, distinct=24)
    return root


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from qheart.cli import main; main()", *args]


def test_sigkill_midway_then_rerun_equals_uninterrupted_run(ptbxl_corpus: Path,
                                                            tmp_path: Path) -> None:
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    prepare(PrepareConfig("ptbxl", ptbxl_corpus, reference, workers=1, chunk_size=KILL_CHUNK),
            progress=False, on_skip=lambda s: None)
    n_chunks = -(-N_KILL_RECORDS // KILL_CHUNK)
    args = ["data", "prepare", "ptbxl", "--root", str(ptbxl_corpus), "--out", str(resumed),
            "--workers", "2", "--chunk-size", str(KILL_CHUNK)]
    proc = subprocess.Popen(_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(list((resumed / "shards").glob("*.parquet"))) < 3:
            assert proc.poll() is None, "prepare ended before it could be killed"
            assert time.monotonic() < deadline, "no chunk was written within 60 s"
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole run: parent and any workers
        proc.wait()
    finished = len(list((resumed / "shards").glob("*.parquet")))
    assert 0 < finished < n_chunks
    assert not (resumed / "store.json").exists()
    with pytest.raises(Exception, match="not finished"):
        SignalStore(resumed)

    args[args.index("--workers") + 1] = "1"  # resuming with other workers changes nothing
    rerun = subprocess.run(_cli(*args), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "finished chunk(s) from an earlier run kept" in rerun.stdout
    assert not list((resumed / "shards").glob("*.tmp-*"))
    _assert_same_store(reference, resumed)
    store = SignalStore(resumed)
    assert len(store) == N_KILL_RECORDS - 2 and 17 not in store and 123 not in store


def test_rerun_redoes_only_unfinished_chunks(ptbxl_corpus: Path, tmp_path: Path) -> None:
    config = PrepareConfig("ptbxl", ptbxl_corpus, tmp_path / "s", workers=1, chunk_size=64,
                           limit=150)
    first = prepare(config, progress=False, on_skip=lambda s: None)
    assert first.processed == 150 and first.resumed_chunks == 0
    (tmp_path / "s" / "shards" / "chunk-000001.parquet").unlink()  # as if killed mid-chunk 1
    (tmp_path / "s" / "store.json").unlink()
    second = prepare(config, progress=False, on_skip=lambda s: None)
    assert second.resumed_chunks == 2 and second.processed == 64
    pd.testing.assert_frame_equal(first.store.metadata, second.store.metadata)


def test_resume_with_other_chunk_boundaries_is_refused(ptbxl_corpus: Path, tmp_path: Path) -> None:
    prepare(PrepareConfig("ptbxl", ptbxl_corpus, tmp_path / "s", workers=1, chunk_size=64,
                          limit=10), progress=False)
    with pytest.raises(PrepareError, match="chunk_size"):
        prepare(PrepareConfig("ptbxl", ptbxl_corpus, tmp_path / "s", workers=1, chunk_size=32,
                              limit=10), progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(PrepareError, match="not a preparation folder"):
        prepare(PrepareConfig("ptbxl", ptbxl_corpus, tmp_path / "other", workers=1),
                progress=False)


def test_auto_chunk_size_gives_every_worker_chunks() -> None:
    sizes = [auto_chunk_size(n, w) for n, w in ((1, 2), (100, 2), (1000, 2), (21_799, 16),
                                                 (800_035, 16), (300, 16))]
    assert sizes == [8, 13, 125, 128, 128, 8]


def test_resume_keeps_the_recorded_chunk_size_whatever_the_workers(ptbxl_corpus: Path,
                                                                   tmp_path: Path) -> None:
    first = prepare(PrepareConfig("ptbxl", ptbxl_corpus, tmp_path / "s", workers=1, limit=40),
                    progress=False, on_skip=lambda s: None)
    assert first.store.info["prepare"]["chunk_size"] == 10
    second = prepare(PrepareConfig("ptbxl", ptbxl_corpus, tmp_path / "s", workers=2, limit=40),
                     progress=False)
    assert second.resumed_chunks == 4 and second.processed == 0


def test_broken_records_one_line_each_and_only_good_ones_stored(tmp_path: Path) -> None:
    broken = {2: "truncated", 3: "lead_count", 5: "nan", 7: "flat", 8: "short"}
    assert set(broken.values()) == set(BROKEN_KINDS)
    rows = write_ptbxl(tmp_path / "ptbxl", 10, broken=broken)
    # A database row whose scp_codes is code, not a literal: never evaluated, skipped.
    rows.loc[rows["ecg_id"] == 9, "scp_codes"] = "__import__('os').getcwd()"
    rows.to_csv(tmp_path / "ptbxl" / "ptbxl_database.csv", index=False)
    result = runner.invoke(app, ["data", "prepare", "ptbxl", "--root", str(tmp_path / "ptbxl"),
                                 "--out", str(tmp_path / "store"), "--workers", "1",
                                 "--chunk-size", "3"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("skipped ")]
    assert len(lines) == 6
    expected = {2: "truncated", 3: "header/lead-count mismatch", 5: "NaN", 7: "flat lead(s) V3",
                8: "only 1.00 s", 9: "not a dict literal"}
    for ecg_id, problem in expected.items():
        needle = ptbxl_record_path(ecg_id) if ecg_id != 9 else "ecg_id 9"
        assert sum(needle in line and problem in line for line in lines) == 1, (ecg_id, lines)
    store = SignalStore(tmp_path / "store")
    assert store.ids.tolist() == [1, 4, 6, 10]
    assert sorted(store.skipped["record"]) == sorted(ptbxl_record_path(i) for i in expected)
    assert "0x" not in " ".join(store.skipped["reason"])  # reasons are reproducible
    assert "wrote 4 records" in result.stdout and "skipped 6" in result.stdout
    assert "records/s" in result.stdout


def test_a_crashing_reader_costs_one_record_not_the_run(ptbxl_corpus: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import qheart.data.readers as readers

    real = readers.read_wfdb

    def flaky(path, **kwargs):
        if str(path).endswith("00004_hr"):
            raise RuntimeError("decoder exploded")
        return real(path, **kwargs)

    monkeypatch.setattr(readers, "read_wfdb", flaky)
    skipped = []
    result = prepare(PrepareConfig("ptbxl", ptbxl_corpus, tmp_path / "s", workers=1, limit=6),
                     progress=False, on_skip=skipped.append)
    assert result.store.ids.tolist() == [1, 2, 3, 5, 6]
    assert [s.kind for s in skipped] == ["RuntimeError"]
    assert skipped[0].reason.endswith("00004_hr: RuntimeError: decoder exploded")


def test_ptbxl_signals_and_metadata(ptbxl_corpus: Path, tmp_path: Path) -> None:
    store = prepare(PrepareConfig("ptbxl", ptbxl_corpus, tmp_path / "s", workers=1, limit=20),
                    progress=False, on_skip=lambda s: None).store
    database = pd.read_csv(ptbxl_corpus / "ptbxl_database.csv").head(20).set_index("ecg_id")
    assert 17 not in store and len(store) == 19
    for ecg_id in (1, 9, 20):
        row = store.row_of(ecg_id)
        _assert_float16_close(store.signal(row), read_wfdb(ptbxl_corpus / ptbxl_record_path(ecg_id)))
        meta = store.metadata.iloc[row]
        assert meta["patient_id"] == int(database.loc[ecg_id, "patient_id"])
        assert meta["strat_fold"] == database.loc[ecg_id, "strat_fold"]
        assert parse_scp_codes(meta["scp_codes"]) == ast.literal_eval(
            database.loc[ecg_id, "scp_codes"])
    noisy = store.metadata.set_index("ecg_id")
    assert noisy.loc[5, "static_noise"] == " , I-V1,  " and noisy.loc[7, "baseline_drift"] == ", I-AVR,"
    assert noisy.loc[1, "static_noise"] == ""


def test_mimic_streams_and_joins_reports(tmp_path: Path) -> None:
    mm = write_mimic(tmp_path / "mimic", 14, shuffle_measurements=True, missing_measurements=(4,))
    result = runner.invoke(app, ["data", "prepare", "mimic-iv-ecg", "--root",
                                 str(tmp_path / "mimic"), "--out", str(tmp_path / "s"),
                                 "--workers", "1", "--chunk-size", "4", "--limit", "12"])
    assert result.exit_code == 0, result.output
    store = SignalStore(tmp_path / "s")
    assert store.ids.tolist() == [mimic_ids(i)[1] for i in range(12)]  # record_list order
    meta = store.metadata.set_index("ecg_id")
    subject_1, study_1 = mimic_ids(1)
    assert meta.loc[study_1, "patient_id"] == subject_1
    assert meta.loc[study_1, "report"] == "Left axis deviation; Borderline ECG"  # gap, spaces
    assert meta.loc[mimic_ids(0)[1], "report"] == "Sinus rhythm; Abnormal ECG"  # report_17 too
    assert meta.loc[mimic_ids(4)[1], "report"] == ""  # no machine_measurements row
    assert np.isnan(meta.loc[mimic_ids(4)[1], "qrs_axis"])
    expected = mm.set_index("study_id").loc[study_1]
    assert meta.loc[study_1, ["rr_interval", "t_axis"]].tolist() == [
        expected["rr_interval"], expected["t_axis"]]


def test_mimic_join_buffer_stays_small_when_files_share_their_order(tmp_path: Path) -> None:
    """The release writes both CSVs in one order: the join then holds about one block."""
    n = 600
    ids = np.arange(n, dtype=np.int64) + 40_000_000
    table = pd.DataFrame({"study_id": ids, "report_0": "Sinus rhythm", "rr_interval": 800.0})
    table.to_csv(tmp_path / "mm.csv", index=False)
    join = MeasurementJoin(tmp_path / "mm.csv", block_rows=50)
    for start in range(0, n, 32):
        got = join.take(ids[start : start + 32])
        assert (got["report"] == "Sinus rhythm").all()
    assert join.peak_buffer_rows <= 50 + 32
    shuffled = MeasurementJoin(tmp_path / "mm.csv", block_rows=50)
    back = shuffled.take(ids[::-1][:5])  # out of order still joins
    assert (back["rr_interval"] == 800.0).all()


def test_code15_exams_and_signals(tmp_path: Path) -> None:
    exams = write_code15(tmp_path / "code15", per_file=(5, 4)).set_index("exam_id")
    store = prepare(PrepareConfig("code15", tmp_path / "code15", tmp_path / "s", workers=1,
                                  chunk_size=3), progress=False).store
    assert len(store) == 9 and 0 not in store  # the padding row is not an exam
    assert sorted(store.ids.tolist()) == sorted(exams.index.tolist())
    meta = store.metadata.set_index("ecg_id")
    for label in CODE15_LABELS:
        assert meta[label].astype(bool).tolist() == exams.loc[meta.index, label].tolist()
    assert (meta["patient_id"] == exams.loc[meta.index, "patient_id"]).all()
    row = store.row_of(int(store.ids[6]))  # second file
    item = store.metadata.iloc[row]
    _assert_float16_close(store.signal(row),
                          read_code15(tmp_path / "code15" / item["trace_file"], item["trace_index"]))


def test_real_ptbxl_records_match_wfdb_and_the_database(real_samples: Path, tmp_path: Path) -> None:
    import wfdb

    from qheart.data.leads import LEADS

    root = real_samples / "ptb-xl"
    result = runner.invoke(app, ["data", "prepare", "ptbxl", "--root", str(root),
                                 "--out", str(tmp_path / "s"), "--workers", "1",
                                 "--chunk-size", "32"])
    assert result.exit_code == 0, result.output
    store = SignalStore(tmp_path / "s")
    database = pd.read_csv(root / "ptbxl_database.csv").set_index("ecg_id")
    assert store.ids.tolist() == list(range(1, 101)) and store.info["n_skipped"] == 0
    for row, ecg_id in enumerate(store.ids):
        record = wfdb.rdrecord(str(root / database.loc[ecg_id, "filename_hr"]))
        names = [n.upper() for n in record.sig_name]
        own = record.p_signal[:, [names.index(lead.upper()) for lead in LEADS]].T  # (12, 5000)
        _assert_float16_close(store.signal(row), own)
    meta = store.metadata.set_index("ecg_id")
    text = ["report", "scp_codes", "heart_axis", "baseline_drift", "static_noise", "burst_noise",
            "electrodes_problems", "extra_beats", "pacemaker", "infarction_stadium1"]
    for column in text:
        published = database[column].astype(object)  # float columns of empty cells: NaN → ""
        assert meta[column].tolist() == published.where(published.notna(), "").astype(str).tolist(), \
            column
    for column in ("patient_id", "sex", "strat_fold"):
        assert meta[column].tolist() == database[column].astype(int).tolist(), column
    np.testing.assert_array_equal(meta["age"], database["age"])
    assert all(isinstance(parse_scp_codes(t), dict) for t in meta["scp_codes"])


@pytest.mark.parametrize(("corpus", "missing"), [("ptbxl", "ptbxl_database.csv"),
                                                 ("mimic-iv-ecg", "record_list.csv"),
                                                 ("code15", "exams.csv")])
def test_a_folder_without_the_published_layout_is_one_clear_error(corpus: str, missing: str,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["data", "prepare", corpus, "--root", str(tmp_path / "empty"),
                                 "--out", str(tmp_path / "s"), "--workers", "1"])
    assert result.exit_code == 1
    assert "error:" in result.stdout and missing in result.stdout and "not found" in result.stdout
    assert "Traceback" not in result.output


@pytest.mark.parametrize("corpus", ["ptbxl", "mimic-iv-ecg", "code15"])
def test_prepare_commands_have_help(corpus: str) -> None:
    result = runner.invoke(app, ["data", "prepare", corpus, "--help"])
    assert result.exit_code == 0 and "--chunk-size" in result.output and "--root" in result.output


# ------------------------------------------------------------------ malformed records, full disk


def _plant(root: Path, ecg_id: int, make) -> None:
    """Replace record `ecg_id` of a written corpus by what `make(folder, name)` writes."""
    base = root / ptbxl_record_path(ecg_id)
    for suffix in (".hea", ".dat"):
        base.with_suffix(suffix).unlink()
    make(base.parent, base.name)


def test_each_malformed_record_is_one_skip_line_and_the_rest_are_stored(tmp_path: Path) -> None:
    from .malformed import WFDB_MUST_FAIL

    n_good = 6
    bad = {n_good + 1 + k: case for k, case in enumerate(WFDB_MUST_FAIL)}
    root = tmp_path / "ptbxl"
    write_ptbxl(root, n_good + len(bad), distinct=n_good)
    for ecg_id, case in bad.items():
        _plant(root, ecg_id, case.record)
    start = time.monotonic()
    result = runner.invoke(app, ["data", "prepare", "ptbxl", "--root", str(root),
                                 "--out", str(tmp_path / "s"), "--workers", "1",
                                 "--chunk-size", "16"])
    elapsed = time.monotonic() - start
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("skipped ")]
    assert len(lines) == len(bad)
    store = SignalStore(tmp_path / "s")
    assert store.ids.tolist() == list(range(1, n_good + 1))
    skipped = store.skipped.set_index("record")
    assert len(skipped) == len(bad)
    for ecg_id, case in bad.items():
        row = skipped.loc[ptbxl_record_path(ecg_id)]
        assert row["kind"] == case.error.__name__, (case.id, row["reason"])
        assert ptbxl_record_path(ecg_id) in row["reason"] and case.needle in row["reason"], case.id
    for ecg_id in range(1, n_good + 1):
        _assert_float16_close(store.signal(store.row_of(ecg_id)),
                              read_wfdb(root / ptbxl_record_path(ecg_id)))
    assert elapsed < 5 * len(bad), f"{elapsed:.0f} s"  # no hang (FIFOs, 2 GiB files, loops)


def test_no_verify_checksums_stores_what_the_checksums_reject(tmp_path: Path) -> None:
    from .malformed import WFDB_MUST_FAIL

    corrupt = [case for case in WFDB_MUST_FAIL if "checksum" in case.needle]
    assert len(corrupt) == 3
    root = tmp_path / "ptbxl"
    write_ptbxl(root, 2 + len(corrupt))
    for k, case in enumerate(corrupt):
        _plant(root, 3 + k, case.record)
    checked = prepare(PrepareConfig("ptbxl", root, tmp_path / "checked", workers=1),
                      progress=False, on_skip=lambda s: None).store
    assert checked.ids.tolist() == [1, 2]
    assert set(checked.skipped["kind"]) == {"UnreadableRecordError"}
    trusting = prepare(PrepareConfig("ptbxl", root, tmp_path / "trusting", workers=1,
                                     verify_checksums=False), progress=False,
                       on_skip=lambda s: None).store
    # The 24-bit record's flipped bits make 4 V spikes: the amplitude bound still refuses it.
    assert trusting.ids.tolist() == [1, 2, 3, 4]
    assert trusting.skipped["kind"].tolist() == ["AmplitudeError"]
    with pytest.raises(PrepareError, match="verify_checksums"):  # one store never mixes both
        prepare(PrepareConfig("ptbxl", root, tmp_path / "trusting", workers=1), progress=False)
    result = runner.invoke(app, ["data", "prepare", "ptbxl", "--root", str(root), "--out",
                                 str(tmp_path / "cli"), "--workers", "1", "--no-verify-checksums"])
    assert result.exit_code == 0 and "wrote 4 records" in result.stdout, result.output


def _disk_full_after(monkeypatch: pytest.MonkeyPatch, n_chunks: int) -> None:
    """The .npy of every chunk after the first `n_chunks` meets a full disk half-way."""
    import errno

    from qheart.data import store as store_module

    real = store_module._write_npy
    written: list[Path] = []

    def write(path: Path, array: np.ndarray) -> None:
        if len(written) >= n_chunks:
            with open(path.with_name(path.name + ".tmp-1"), "wb") as fh:
                fh.write(b"\0" * 1000)  # a partial temporary, as a real failure leaves
            raise OSError(errno.ENOSPC, "No space left on device", str(path) + ".tmp-1")
        written.append(path)
        real(path, array)

    monkeypatch.setattr(store_module, "_write_npy", write)


def test_full_disk_is_one_line_and_a_rerun_completes_identically(
        ptbxl_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    from qheart.cli import main
    from qheart.data.store import StoreError

    reference, out = tmp_path / "reference", tmp_path / "s"
    prepare(PrepareConfig("ptbxl", ptbxl_corpus, reference, workers=1, chunk_size=8, limit=40),
            progress=False, on_skip=lambda s: None)
    args = ["data", "prepare", "ptbxl", "--root", str(ptbxl_corpus), "--out", str(out),
            "--workers", "1", "--chunk-size", "8", "--limit", "40"]
    _disk_full_after(monkeypatch, 2)
    with pytest.raises(SystemExit) as stopped:
        main(args)
    assert stopped.value.code == 1
    printed = capsys.readouterr()
    errors = [line for line in (printed.out + printed.err).splitlines() if "error:" in line]
    assert len(errors) == 1 and "disk full" in errors[0] and "re-run" in errors[0], errors
    assert "Traceback" not in printed.out + printed.err
    with pytest.raises(StoreError, match="not finished"):
        SignalStore(out)
    monkeypatch.undo()
    with pytest.raises(SystemExit) as finished:
        main(args)
    assert finished.value.code == 0
    assert not list((out / "shards").glob("*.tmp-*"))
    _assert_same_store(reference, out)


def _can_mount_tmpfs(where: Path) -> bool:
    import shutil

    if shutil.which("unshare") is None:
        return False
    where.mkdir()
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs "
                            f"{where}"], capture_output=True, timeout=30)
    return probe.returncode == 0


def test_real_full_disk_on_a_small_tmpfs(ptbxl_corpus: Path, tmp_path: Path) -> None:
    """A real ENOSPC: prepare into a 700 KiB tmpfs (fits one 480 KB chunk of 4 records), then
    the same command after the tmpfs is enlarged. Needs user namespaces (skipped without)."""
    mnt = tmp_path / "mnt"
    if not _can_mount_tmpfs(mnt):
        pytest.skip("cannot mount a tmpfs in a user namespace here")
    reference, logs = tmp_path / "reference", tmp_path / "logs"
    logs.mkdir()
    prepare(PrepareConfig("ptbxl", ptbxl_corpus, reference, workers=1, chunk_size=4, limit=12),
            progress=False, on_skip=lambda s: None)
    run = shlex.join(_cli("data", "prepare", "ptbxl", "--root", str(ptbxl_corpus), "--out",
                          f"{mnt}/s", "--workers", "1", "--chunk-size", "4", "--limit", "12"))
    script = (f"mount -t tmpfs -o size=700k tmpfs {mnt} && "
              f"{run} >{logs}/first.out 2>{logs}/first.err; echo $? >{logs}/first.rc; "
              f"cp -a {mnt}/s {tmp_path}/half; mount -o remount,size=64m {mnt} && "
              f"{run} >{logs}/second.out 2>{logs}/second.err; echo $? >{logs}/second.rc; "
              f"cp -a {mnt}/s {tmp_path}/full")
    subprocess.run(["unshare", "-rm", "sh", "-c", script], check=True, timeout=300)
    first = (logs / "first.out").read_text() + (logs / "first.err").read_text()
    assert (logs / "first.rc").read_text().strip() == "1", first
    errors = [line for line in first.splitlines() if "error:" in line]
    assert len(errors) == 1 and "disk full" in errors[0], first
    assert "Traceback" not in first
    from qheart.data.store import StoreError

    with pytest.raises(StoreError, match="not finished"):
        SignalStore(tmp_path / "half")
    second = (logs / "second.out").read_text() + (logs / "second.err").read_text()
    assert (logs / "second.rc").read_text().strip() == "0", second
    assert "kept" in second  # resumed, not restarted
    _assert_same_store(reference, tmp_path / "full")


def test_code15_bad_tracings_are_skipped_and_a_fifo_part_is_one_error(tmp_path: Path,
                                                                      capsys) -> None:
    import h5py

    from qheart.cli import main

    exams = write_code15(tmp_path / "code15", per_file=(5, 4))
    with h5py.File(tmp_path / "code15" / "exams_part0.hdf5", "r+") as f:
        tracings = f["tracings"]
        tracings[1, 100:110, 3] = np.nan
        tracings[3] = tracings[3] * 1000  # ADC counts: the gain not applied
    store = prepare(PrepareConfig("code15", tmp_path / "code15", tmp_path / "s", workers=1),
                    progress=False, on_skip=lambda s: None).store
    part0 = exams[exams["trace_file"] == "exams_part0.hdf5"]["exam_id"].tolist()
    assert sorted(store.ids.tolist()) == sorted(set(exams["exam_id"]) - {part0[1], part0[3]})
    skipped = store.skipped.set_index("record")
    assert skipped.loc["exams_part0.hdf5[1]", "kind"] == "NonFiniteSignalError"
    assert skipped.loc["exams_part0.hdf5[3]", "kind"] == "AmplitudeError"
    part1 = tmp_path / "code15" / "exams_part1.hdf5"
    part1.unlink()
    os.mkfifo(part1)
    with pytest.raises(SystemExit) as stopped:
        main(["data", "prepare", "code15", "--root", str(tmp_path / "code15"), "--out",
              str(tmp_path / "s2"), "--workers", "1"])
    printed = capsys.readouterr()
    assert stopped.value.code == 1
    errors = [line for line in (printed.out + printed.err).splitlines() if "error:" in line]
    assert errors == [f"error: {part1}: is a FIFO (named pipe), not a regular file; reading it "
                      "could block forever"]
