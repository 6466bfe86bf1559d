"""ECG readers: every format and layout to the canonical array, and a typed error per bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import wfdb
from scipy import signal as sps

from qheart.data import readers
from qheart.data.errors import (
    FlatLeadError,
    MissingLeadsError,
    NonFiniteSignalError,
    SampleRateError,
    TooShortError,
    UnknownFormatError,
    UnreadableRecordError,
)
from qheart.data.leads import LEADS
from qheart.data.readers import (
    iter_code15,
    read_code15,
    read_ecg,
    read_wfdb,
    strip_zero_padding,
    to_canonical,
)

from .ecg_fixtures import (
    ALL_LEADS,
    PTB_DIAGNOSTIC_NAMES,
    PTBXL_NAMES,
    synthetic_ecg,
    write_code15_hdf5,
    write_wfdb_record,
)

QUANTUM_MV = 1e-3  # 16-bit at gain 1000/mV stores 1 µV steps


def _truth(seed: int = 0, seconds: float = 10.0) -> np.ndarray:
    """The noise-free synthetic ECG at 500 Hz that resampled records are compared with, cut to
    the first 10 s (the same seed and duration give the same beats at any rate)."""
    return synthetic_ecg(12, fs=500, seconds=seconds, seed=seed, noise_mv=0.0)[:, :5000]


def _assert_canonical(x: np.ndarray) -> None:
    assert x.shape == (12, 5000)
    assert x.dtype == np.float32


# ------------------------------------------------------------------------------ WFDB: good input


def test_ptbxl_style_record_reads_exactly_as_wfdb(tmp_path: Path) -> None:
    signal = synthetic_ecg(seed=1)
    record = write_wfdb_record(tmp_path, "00001_hr", signal, 500, PTBXL_NAMES)
    out = read_wfdb(record)
    _assert_canonical(out)
    reference = wfdb.rdrecord(str(record)).p_signal.T.astype(np.float32)
    np.testing.assert_array_equal(out, reference)
    assert np.abs(out - signal).max() <= QUANTUM_MV / 2 + 1e-6


@pytest.mark.parametrize(("fs", "seconds"), [(250, 10.0), (1000, 12.0), (400, 10.0), (100, 10.0)])
def test_any_rate_resamples_to_500_hz_and_keeps_the_first_10_s(
    tmp_path: Path, fs: int, seconds: float
) -> None:
    signal = synthetic_ecg(fs=fs, seconds=seconds, seed=2, noise_mv=0.0)
    record = write_wfdb_record(tmp_path, f"r{fs}", signal, fs, PTBXL_NAMES)
    out = read_wfdb(record)
    _assert_canonical(out)
    tolerance = 0.05 if fs == 100 else 0.01  # 100 Hz barely holds the 12 ms-wide R wave
    assert np.abs(out - _truth(seed=2, seconds=seconds)).max() < tolerance


def test_ptb_diagnostic_layout_lowercase_15_leads(tmp_path: Path) -> None:
    signal = synthetic_ecg(15, fs=1000, seconds=12.0, seed=3, noise_mv=0.0)
    signal[ALL_LEADS.index("vz")] = np.nan  # an extra lead's problems are not ours: it is dropped
    record = write_wfdb_record(
        tmp_path, "s0001_re", signal, 1000, PTB_DIAGNOSTIC_NAMES, adc_gain=2000
    )
    out = read_wfdb(record)
    _assert_canonical(out)
    truth = _truth(seed=3, seconds=12.0)
    assert np.abs(out - truth).max() < 0.01


def test_mimic_iv_ecg_layout(tmp_path: Path) -> None:
    """MIMIC-IV-ECG: gain 200/mV, limb leads stored as I II III aVR aVF aVL."""
    names = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]
    signal = synthetic_ecg(seed=40)
    order = [LEADS.index(name) for name in names]
    record = write_wfdb_record(
        tmp_path / "s40689238", "40689238", signal[order], 500, names, adc_gain=200.0
    )
    assert " 200.0(0)/mV " in record.with_suffix(".hea").read_text()
    out = read_wfdb(record)
    assert np.abs(out - signal).max() <= 0.5 / 200 + 1e-6  # half a 5 µV step
    assert np.abs(out[LEADS.index("aVF")] - signal[LEADS.index("aVF")]).max() < 0.01


def test_leads_are_reordered_and_renamed_to_canonical(tmp_path: Path) -> None:
    signal = synthetic_ecg(seed=4)
    order = np.random.default_rng(0).permutation(12)
    names = ["DI", "DII", "DIII", "avr", "AVL", "aVF", "v1", "V2", "V3", "V4", "v5", "V6"]
    record = write_wfdb_record(tmp_path, "shuffled", signal[order], 500, [names[i] for i in order])
    out = read_wfdb(record)
    assert np.abs(out - signal).max() <= QUANTUM_MV / 2 + 1e-6


def test_microvolt_units_are_converted_to_millivolts(tmp_path: Path) -> None:
    signal = synthetic_ecg(seed=5)
    record = write_wfdb_record(tmp_path, "uv", signal, 500, PTBXL_NAMES, adc_gain=1.0, units="uV")
    assert "/uV" in record.with_suffix(".hea").read_text()
    out = read_wfdb(record)
    assert np.abs(out - signal).max() <= QUANTUM_MV / 2 + 1e-6


def test_record_path_with_or_without_extension(tmp_path: Path) -> None:
    record = write_wfdb_record(tmp_path, "rec", synthetic_ecg(seed=6), 500, PTBXL_NAMES)
    plain = read_ecg(record)
    np.testing.assert_array_equal(read_ecg(record.with_suffix(".hea")), plain)
    np.testing.assert_array_equal(read_ecg(record.with_suffix(".dat")), plain)
    np.testing.assert_array_equal(read_ecg(str(record), sample_rate=500), plain)
    with pytest.raises(SampleRateError, match="says 500"):
        read_ecg(record, sample_rate=250)


def test_filters_are_applied_when_asked(tmp_path: Path) -> None:
    signal = synthetic_ecg(seed=7, baseline_mv=0.0) + 1.5  # a 1.5 mV baseline offset
    record = write_wfdb_record(tmp_path, "offset", signal, 500, PTBXL_NAMES)
    raw = read_ecg(record)
    filtered = read_ecg(record, filters="baseline")
    assert np.abs(raw.mean(axis=1) - 1.5).max() < 0.2
    assert np.abs(filtered.mean(axis=1)).max() < 0.05


# ------------------------------------------------------------------------------- WFDB: bad input


def test_missing_lead_is_named(tmp_path: Path) -> None:
    keep = [i for i, name in enumerate(PTBXL_NAMES) if name != "V4"]
    record = write_wfdb_record(
        tmp_path, "no_v4", synthetic_ecg(seed=8)[keep], 500, [PTBXL_NAMES[i] for i in keep]
    )
    with pytest.raises(MissingLeadsError, match=r"no_v4\.hea: missing lead\(s\) V4 "):
        read_wfdb(record)


def test_truncated_dat_names_the_file(tmp_path: Path) -> None:
    record = write_wfdb_record(tmp_path, "trunc", synthetic_ecg(seed=9), 500, PTBXL_NAMES)
    dat = record.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:50_000])
    with pytest.raises(UnreadableRecordError, match=r"trunc\.dat: truncated: 50000 bytes"):
        read_wfdb(record)


def test_header_claiming_more_leads_than_the_data(tmp_path: Path) -> None:
    record = write_wfdb_record(tmp_path, "more", synthetic_ecg(13, seed=10)[:12], 500, PTBXL_NAMES)
    hea = record.with_suffix(".hea")
    lines = hea.read_text().splitlines()
    lines[0] = lines[0].replace("more 12 ", "more 13 ")
    lines.insert(13, lines[12].replace(" V6", " vx"))
    hea.write_text("\n".join(lines) + "\n")
    with pytest.raises(UnreadableRecordError, match=r"more\.dat: truncated: .*lead-count"):
        read_wfdb(record)


def test_header_claiming_fewer_leads_than_the_data(tmp_path: Path) -> None:
    record = write_wfdb_record(
        tmp_path, "fewer", synthetic_ecg(13, seed=11), 500, [*PTBXL_NAMES, "vx"]
    )
    hea = record.with_suffix(".hea")
    lines = hea.read_text().splitlines()
    lines[0] = lines[0].replace("fewer 13 ", "fewer 12 ")
    hea.write_text("\n".join(lines[:13]) + "\n")
    with pytest.raises(UnreadableRecordError, match=r"fewer\.dat: longer than the header"):
        read_wfdb(record)


def test_unreadable_and_missing_header(tmp_path: Path) -> None:
    (tmp_path / "garbage.hea").write_text("this is not\na WFDB header\n")
    with pytest.raises(UnreadableRecordError, match=r"garbage\.hea: unreadable header"):
        read_wfdb(tmp_path / "garbage")
    with pytest.raises(UnreadableRecordError, match=r"absent\.hea: header file not found"):
        read_wfdb(tmp_path / "absent")


def test_missing_data_file(tmp_path: Path) -> None:
    record = write_wfdb_record(tmp_path, "nodat", synthetic_ecg(seed=12), 500, PTBXL_NAMES)
    record.with_suffix(".dat").unlink()
    with pytest.raises(UnreadableRecordError, match=r"nodat\.dat: data file missing"):
        read_wfdb(record)


def test_unknown_unit_is_rejected(tmp_path: Path) -> None:
    record = write_wfdb_record(tmp_path, "mmhg", synthetic_ecg(seed=13), 500, PTBXL_NAMES)
    hea = record.with_suffix(".hea")
    hea.write_text(hea.read_text().replace("/mV", "/mmHg"))
    with pytest.raises(UnreadableRecordError, match="unknown unit 'mmHg'"):
        read_wfdb(record)


def test_nan_samples(tmp_path: Path) -> None:
    signal = synthetic_ecg(seed=14)
    signal[LEADS.index("aVF"), 1000:1010] = np.nan  # written as WFDB's missing-value code
    record = write_wfdb_record(tmp_path, "nan", signal, 500, PTBXL_NAMES)
    with pytest.raises(NonFiniteSignalError, match=r"nan: 10 NaN/inf samples in lead\(s\) aVF"):
        read_wfdb(record)


def test_flat_lead(tmp_path: Path) -> None:
    signal = synthetic_ecg(seed=15)
    signal[LEADS.index("V2")] = 0.0
    record = write_wfdb_record(tmp_path, "flat", signal, 500, PTBXL_NAMES)
    with pytest.raises(FlatLeadError, match=r"flat: flat lead\(s\) V2 "):
        read_wfdb(record)


def test_flat_within_the_kept_ten_seconds(tmp_path: Path) -> None:
    signal = synthetic_ecg(seed=16, seconds=20.0)
    signal[LEADS.index("III"), :6000] = 0.0  # electrode connected only after 12 s
    record = write_wfdb_record(tmp_path, "late", signal, 500, PTBXL_NAMES)
    with pytest.raises(FlatLeadError, match=r"III"):
        read_wfdb(record)


def test_one_second_record(tmp_path: Path) -> None:
    record = write_wfdb_record(tmp_path, "short", synthetic_ecg(seconds=1.0), 500, PTBXL_NAMES)
    with pytest.raises(TooShortError, match=r"short: only 1\.00 s of signal"):
        read_wfdb(record)


def test_short_record_is_edge_padded(tmp_path: Path) -> None:
    signal = synthetic_ecg(seconds=4.0, seed=17)
    out = read_wfdb(write_wfdb_record(tmp_path, "four", signal, 500, PTBXL_NAMES))
    _assert_canonical(out)
    assert np.abs(out[:, :2000] - signal).max() <= QUANTUM_MV / 2 + 1e-6
    np.testing.assert_array_equal(out[:, 2000:], np.repeat(out[:, 1999:2000], 3000, axis=1))


def test_a_wfdb_warning_is_not_success(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = write_wfdb_record(tmp_path, "warned", synthetic_ecg(seed=18), 500, PTBXL_NAMES)
    real = wfdb.rdrecord

    def warning_rdrecord(*args, **kwargs):
        warnings.warn("checksum mismatch", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(wfdb, "rdrecord", warning_rdrecord)
    with pytest.raises(UnreadableRecordError, match="wfdb warned: checksum mismatch"):
        read_wfdb(record)


# ---------------------------------------------------------------------------------- to_canonical


def test_to_canonical_checks_rate_shape_and_duplicates() -> None:
    signal = synthetic_ecg(seed=19)
    for rate in (None, 0, -500, 10, 1e6, float("nan"), "fast"):
        with pytest.raises(SampleRateError, match=r"^src: "):
            to_canonical(signal, LEADS, rate, "src")
    with pytest.raises(UnreadableRecordError, match="does not match 11 lead names"):
        to_canonical(signal, LEADS[:11], 500, "src")
    with pytest.raises(UnreadableRecordError, match="lead II appears twice"):
        to_canonical(signal, [*LEADS[:2], "ii", *LEADS[3:]], 500, "src")
    out = to_canonical(np.vstack([signal, signal[:1] * 9]), [*LEADS, "vx"], 500, "src")
    assert np.abs(out - signal).max() < 1e-6  # the extra lead is dropped


# ---------------------------------------------------------------------------------- npy and CSV


def test_npy_both_orientations(tmp_path: Path) -> None:
    signal = synthetic_ecg(fs=250, seed=20, noise_mv=0.0).astype(np.float32)
    np.save(tmp_path / "leads_first.npy", signal)
    np.save(tmp_path / "time_first.npy", signal.T)
    a = read_ecg(tmp_path / "leads_first.npy", sample_rate=250)
    b = read_ecg(tmp_path / "time_first.npy", sample_rate=250)
    _assert_canonical(a)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - _truth(seed=20)).max() < 0.01


def test_npy_requires_a_rate_and_twelve_leads(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", synthetic_ecg(seed=21))
    with pytest.raises(SampleRateError, match=r"x\.npy: sample rate missing"):
        read_ecg(tmp_path / "x.npy")
    np.save(tmp_path / "three.npy", synthetic_ecg(3, seed=21))
    with pytest.raises(UnreadableRecordError, match=r"three\.npy: array shape \(3, 5000\)"):
        read_ecg(tmp_path / "three.npy", sample_rate=500)


def test_csv_with_lead_named_columns(tmp_path: Path) -> None:
    signal = synthetic_ecg(fs=1000, seed=22, noise_mv=0.0)
    frame = pd.DataFrame(signal.T, columns=[n.lower() for n in PTBXL_NAMES])
    frame.insert(0, "time_s", np.arange(signal.shape[1]) / 1000)
    frame = frame[
        ["time_s", "v6", "i", "avr", *[c for c in frame.columns[1:] if c not in {"v6", "i", "avr"}]]
    ]
    frame.to_csv(tmp_path / "ecg.csv", index=False)
    out = read_ecg(tmp_path / "ecg.csv", sample_rate=1000)
    _assert_canonical(out)
    assert np.abs(out - _truth(seed=22)).max() < 0.01
    with pytest.raises(SampleRateError):
        read_ecg(tmp_path / "ecg.csv")
    frame.drop(columns=["avl"]).to_csv(tmp_path / "no_avl.csv", index=False)
    with pytest.raises(MissingLeadsError, match=r"no_avl\.csv: missing lead\(s\) aVL"):
        read_ecg(tmp_path / "no_avl.csv", sample_rate=1000)


def test_missing_file(tmp_path: Path) -> None:
    for name in ("gone", "gone.npy", "gone.csv", "gone.h5", "gone.xml", "gone.hea"):
        rate = 500 if name.endswith((".npy", ".csv")) else None
        with pytest.raises(UnreadableRecordError, match=rf"{name}"):
            read_ecg(tmp_path / name, sample_rate=rate, index=0)


@pytest.mark.parametrize("name", ["ecg.xml", "ecg.txt", "ecg.edf", "noext"])
def test_unknown_format(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("x")
    with pytest.raises(UnknownFormatError, match=rf"{name}: unknown ECG format"):
        read_ecg(tmp_path / name)


# ------------------------------------------------------------------------------------- CODE-15


@pytest.fixture
def code15_file(tmp_path: Path) -> Path:
    """Four tracings as CODE-15 stores them: 10 s, 7 s, an empty (all-zero) exam, and 10 s."""
    signals = [
        synthetic_ecg(fs=400, seconds=10.0, seed=30, noise_mv=0.0),
        synthetic_ecg(fs=400, seconds=7.0, seed=31, noise_mv=0.0),
        np.zeros((12, 4000)),
        synthetic_ecg(fs=400, seconds=10.0, seed=33, noise_mv=0.0),
    ]
    return write_code15_hdf5(tmp_path / "exams_part0.hdf5", signals, exam_ids=[101, 102, 103, 104])


def test_code15_ten_second_tracing(code15_file: Path) -> None:
    out = read_code15(code15_file, 0)
    _assert_canonical(out)
    assert np.abs(out - _truth(seed=30)).max() < 0.01  # zero padding stripped, not resampled in


def test_code15_seven_second_tracing_is_padded_by_policy(code15_file: Path) -> None:
    out = read_code15(code15_file, 1)
    _assert_canonical(out)
    assert np.abs(out[:, :3500] - _truth(seed=31, seconds=7.0)).max() < 0.01
    np.testing.assert_array_equal(out[:, 3500:], np.repeat(out[:, 3499:3500], 1500, axis=1))


def test_code15_empty_tracing_is_rejected(code15_file: Path) -> None:
    with pytest.raises(TooShortError, match=r"exams_part0\.hdf5\[2\]: only 0\.00 s"):
        read_code15(code15_file, 2)
    with pytest.raises(IndexError):
        read_code15(code15_file, 4)


def test_iter_code15_streams_blocks_and_reports_bad_tracings(code15_file: Path) -> None:
    items = list(iter_code15(code15_file, block=3))
    assert [item.index for item in items] == [0, 1, 2, 3]
    assert [item.exam_id for item in items] == [101, 102, 103, 104]
    assert items[2].signal is None and isinstance(items[2].error, TooShortError)
    for item in (items[0], items[1], items[3]):
        assert item.error is None
        np.testing.assert_array_equal(item.signal, read_code15(code15_file, item.index))
    assert [item.index for item in iter_code15(code15_file, start=1, stop=3)] == [1, 2]


def test_code15_via_read_ecg_and_bad_layout(code15_file: Path, tmp_path: Path) -> None:
    np.testing.assert_array_equal(read_ecg(code15_file, index=3), read_code15(code15_file, 3))
    with pytest.raises(ValueError, match="pass index="):
        read_ecg(code15_file)
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("signals", data=np.zeros((1, 10, 12)))
    with pytest.raises(UnreadableRecordError, match="no 'tracings' dataset"):
        read_ecg(tmp_path / "other.h5", index=0)


def test_strip_zero_padding_keeps_interior_zeros() -> None:
    tracing = np.zeros((10, 12))
    tracing[3] = 1.0
    tracing[6] = 2.0  # rows 4 and 5 are all-zero but inside the signal
    assert strip_zero_padding(tracing).shape == (4, 12)


# ------------------------------------------------------------------- conformance on real files


def test_real_ptb_diagnostic_record(real_samples: Path) -> None:
    """The real 15-lead PTB record: 1000 Hz, lowercase names, Frank leads in a second file."""
    record = real_samples / "ptb-diagnostic" / "s0010_re"
    out = read_ecg(record)
    _assert_canonical(out)
    ref = wfdb.rdrecord(str(record))
    assert ref.fs == 1000 and ref.sig_name[12:] == ["vx", "vy", "vz"]
    first = ref.p_signal[:10_000].T  # (15, 10000): the 10 s we keep, at 1000 Hz
    for lead in LEADS:
        channel = ref.sig_name.index(lead.lower())
        expected = sps.resample_poly(first[channel], 1, 2)  # scipy on wfdb's own channel
        assert np.abs(out[LEADS.index(lead)] - expected)[50:-50].max() < 1e-3, lead
    # Each of our leads matches its own wfdb channel far better than any other channel.
    corr = np.corrcoef(np.vstack([out, first[:, ::2]]))[:12, 12:]  # (12 ours, 15 wfdb)
    assert list(np.argmax(corr, axis=1)) == list(range(12))


def test_real_ptb_record_without_its_frank_lead_file(real_samples: Path, tmp_path: Path) -> None:
    """The .xyz file holds only leads we drop: a copy without it still reads, identically."""
    source = real_samples / "ptb-diagnostic" / "s0010_re"
    for suffix in (".hea", ".dat"):
        (tmp_path / f"s0010_re{suffix}").write_bytes(source.with_suffix(suffix).read_bytes())
    np.testing.assert_array_equal(read_wfdb(tmp_path / "s0010_re"), read_wfdb(source))


def test_real_ptbxl_records_match_wfdb(real_samples: Path) -> None:
    folder = real_samples / "ptb-xl" / "records500" / "00000"
    records = sorted(p.with_suffix("") for p in folder.glob("*_hr.hea"))
    assert len(records) == 100
    for record in records[:10]:
        out = read_ecg(record)
        _assert_canonical(out)
        reference = wfdb.rdrecord(str(record)).p_signal.T.astype(np.float32)
        np.testing.assert_allclose(out, reference, rtol=0, atol=1e-6, err_msg=str(record))
    for record in records[10:]:
        _assert_canonical(read_ecg(record))  # all 100 published records read


def test_module_imports_stay_light() -> None:
    """readers is imported by the CLI for --help: wfdb/h5py/pandas load only when reading."""
    source = Path(readers.__file__).read_text()
    top = source[: source.index("\ndef ")]
    assert "import wfdb" not in top and "import h5py" not in top
