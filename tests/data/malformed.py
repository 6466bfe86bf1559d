"""A corpus of malformed ECG inputs, generated in code, each with the typed error it must raise.

`MUST_FAIL` lists cases by family (wfdb, npy, csv, hdf5, file, array); each case builds its
input in a folder and says which `qheart.data.errors` type reading it must raise (exactly that
type). `VALID` lists inputs that must still read, each with a reference reading to compare with.
WFDB cases are built as `folder/name` records so that `prepare` tests can drop the same damage
into a corpus layout. Huge inputs are sparse files made with `truncate` (no disk is used), FIFOs
with `mkfifo`; nothing here downloads or needs the real corpora.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from qheart.data.errors import (
    AmplitudeError,
    ECGError,
    FlatLeadError,
    InputTooLargeError,
    MissingLeadsError,
    NonFiniteSignalError,
    RecordIndexError,
    SampleRateError,
    TooShortError,
    UnknownFormatError,
    UnreadableRecordError,
)

from .ecg_fixtures import PTBXL_NAMES, synthetic_ecg, write_code15_hdf5, write_wfdb_record

HUGE_BYTES = 2 << 30
"""Apparent size of the sparse "huge" files: 2 GiB, as in the issue's examples."""
PICKLE_MARKER = "executed-by-unpickling"
"""A folder the pickled payloads create if anything ever unpickles them."""


@dataclass(frozen=True)
class Case:
    """One input: `build(folder)` writes it and returns (path or array, read_ecg kwargs)."""

    family: str
    name: str
    build: Callable[[Path], tuple[object, dict]]
    error: type[ECGError] | None = None
    """The exact error type reading must raise; None for a valid input."""
    needle: str = ""
    """A fragment the message must contain (beyond the file name)."""
    forbidden: tuple[str, ...] = field(default=())
    """Fragments the message must not contain (e.g. the "1 Hz" wfdb reads 1e9 as)."""
    record: Callable[[Path, str], Path] | None = None
    """WFDB cases: write the damaged record as folder/name (for corpus layouts); returns it."""

    @property
    def id(self) -> str:
        return f"{self.family}-{self.name}"


# ------------------------------------------------------------------------------------- helpers


def ecg(seconds: float = 10.0, fs: float = 500, seed: int = 0) -> np.ndarray:
    """(12, fs·seconds) mV. Beyond 20 s, 20 s of beats repeated (the generator's cost grows with
    length × beats; a reader cannot tell)."""
    if seconds <= 20:
        return synthetic_ecg(12, fs, seconds, seed, noise_mv=0.005)
    period = synthetic_ecg(12, fs, 20.0, seed, noise_mv=0.005)
    n = round(fs * seconds)
    return np.tile(period, (1, -(-n // period.shape[1])))[:, :n]


def good_record(folder: Path, name: str, **kwargs) -> Path:
    """A valid PTB-XL-like record (500 Hz, 16 bit, gain 1000/mV, checksums); path w/o suffix."""
    seconds = kwargs.pop("seconds", 10.0)
    fs = kwargs.pop("fs", 500)
    signal = kwargs.pop("signal", None)
    signal = ecg(seconds, fs, seed=len(name)) if signal is None else signal
    return write_wfdb_record(folder, name, signal, fs, PTBXL_NAMES, **kwargs)


def edit_header(record: Path, *, record_line: Callable[[list[str]], list[str]] | None = None,
                signal_line: Callable[[int, list[str]], list[str]] | None = None,
                keep: Callable[[int], bool] | None = None) -> None:
    """Rewrite a header token by token: the record line, each signal line, or drop lines."""
    hea = record.with_suffix(".hea")
    lines = hea.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        tokens = line.split()
        if i == 0 and record_line:
            tokens = record_line(tokens)
        elif i > 0 and signal_line:
            tokens = signal_line(i - 1, tokens)
        if keep is None or keep(i):
            out.append(" ".join(tokens))
    hea.write_text("\n".join(out) + "\n")


def set_token(position: int, value: str) -> Callable[[list[str]], list[str]]:
    def edit(tokens: list[str]) -> list[str]:
        tokens = list(tokens)
        tokens[position] = value
        return tokens
    return edit


def on_signal(lead: int | None, position: int, value: str) -> Callable[[int, list[str]], list[str]]:
    """Set token `position` of signal line `lead` (None: every signal line)."""
    def edit(i: int, tokens: list[str]) -> list[str]:
        if lead is None or i == lead:
            tokens = list(tokens)
            tokens[position] = value
        return tokens
    return edit


def wfdb_case(name: str, damage: Callable[[Path], object] | None, error: type[ECGError],
              needle: str = "", *, forbidden: tuple[str, ...] = (), **record) -> Case:
    """A record written good (with `record` options), then damaged in place."""
    def make(folder: Path, record_name: str) -> Path:
        base = good_record(folder, record_name, **record)
        if damage is not None:
            damage(base)
        return base

    return Case("wfdb", name, lambda folder: (make(folder, "rec"), {}), error, needle, forbidden,
                record=make)


def file_case(family: str, name: str, make: Callable[[Path], None], error: type[ECGError],
              needle: str = "", **read) -> Case:
    """`make(path)` writes folder/input.<family>; read with `read` (e.g. sample_rate=500)."""
    suffix = {"npy": ".npy", "csv": ".csv", "hdf5": ".h5"}[family]

    def build(folder: Path) -> tuple[object, dict]:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"input{suffix}"
        make(path)
        return path, dict(read)
    return Case(family, name, build, error, needle)


def array_case(name: str, make: Callable[[], object], error: type[ECGError], needle: str = "",
               rate: object = 500) -> Case:
    return Case("array", name, lambda folder: (make(), {"sample_rate": rate}), error, needle)


def sparse(path: Path, size: int = HUGE_BYTES, head: bytes = b"") -> None:
    """A file of apparent `size` bytes that uses no disk beyond `head`."""
    path.write_bytes(head)
    os.truncate(path, size)


def fifo(path: Path) -> None:
    os.mkfifo(path)


def folder_named(path: Path) -> None:
    path.mkdir()


def symlink_loop(path: Path) -> None:
    other = path.with_name(path.name + ".other")
    path.symlink_to(other.name)
    other.symlink_to(path.name)


def _flip_bytes(base: Path) -> None:
    """Corrupt samples without changing the size: only the checksums can tell."""
    dat = base.with_suffix(".dat")
    data = bytearray(dat.read_bytes())
    for i in range(1001, 1201, 2):
        data[i] ^= 0x40
    dat.write_bytes(bytes(data))


def _replace_dat(make: Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(base: Path) -> None:
        dat = base.with_suffix(".dat")
        dat.unlink()
        make(dat)
    return damage


def _replace_hea(make: Callable[[Path], None]) -> Callable[[Path], None]:
    def damage(base: Path) -> None:
        hea = base.with_suffix(".hea")
        hea.unlink()
        make(hea)
    return damage


class _Payload:
    """Unpickling this makes the marker folder: proof that something unpickled untrusted data."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _npy_with(array: np.ndarray) -> Callable[[Path], None]:
    return lambda path: np.save(path, array)


def _h5(**datasets) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        import h5py

        with h5py.File(path, "w") as f:
            for key, value in datasets.items():
                if key == "group":
                    f.create_group(value)
                elif callable(value):
                    value(f)
                else:
                    f.create_dataset(key, data=value)
    return make


def _code15_tracings(n: int, seed: int = 0) -> np.ndarray:
    return np.stack([ecg(10, 400, seed + i).T for i in range(n)]).astype(np.float32)  # (n, 4000, 12)


def _csv_of(signal: np.ndarray, names=PTBXL_NAMES) -> Callable[[Path], None]:
    return lambda path: pd.DataFrame(signal.T, columns=list(names)).to_csv(path, index=False)


# ------------------------------------------------------------------------------- WFDB: bad input

_WFDB: list[Case] = [
    wfdb_case("rate-negative", lambda b: edit_header(b, record_line=set_token(2, "-500")),
              SampleRateError, "'-500'"),
    wfdb_case("rate-nan", lambda b: edit_header(b, record_line=set_token(2, "nan")),
              SampleRateError, "'nan'"),
    wfdb_case("rate-text", lambda b: edit_header(b, record_line=set_token(2, "abc")),
              SampleRateError, "'abc' is not a number"),
    wfdb_case("rate-1e9", lambda b: edit_header(b, record_line=set_token(2, "1e9")),
              SampleRateError, "'1e9'", forbidden=("1 Hz", "'1' Hz")),
    wfdb_case("rate-zero", lambda b: edit_header(b, record_line=set_token(2, "0")),
              SampleRateError),
    wfdb_case("rate-10hz", lambda b: edit_header(b, record_line=set_token(2, "10")),
              SampleRateError, "50–10000 Hz"),
    wfdb_case("rate-inf", lambda b: edit_header(b, record_line=set_token(2, "inf")),
              SampleRateError),
    wfdb_case("rate-missing", lambda b: edit_header(b, record_line=lambda t: t[:2]),
              SampleRateError, "sample rate missing"),
    wfdb_case("rate-with-bad-counter", lambda b: edit_header(b, record_line=set_token(2, "x/500")),
              SampleRateError),
    wfdb_case("gain-zero", lambda b: edit_header(b, signal_line=on_signal(3, 2, "0(0)/mV")),
              UnreadableRecordError, "ADC gain 0"),
    wfdb_case("gain-nan", lambda b: edit_header(b, signal_line=on_signal(0, 2, "nan(0)/mV")),
              UnreadableRecordError, "ADC gain 'nan(0)/mV' is not a number"),
    wfdb_case("gain-text", lambda b: edit_header(b, signal_line=on_signal(5, 2, "abc")),
              UnreadableRecordError, "is not a number"),
    wfdb_case("gain-missing", lambda b: edit_header(b, signal_line=lambda i, t: t[:2]),
              UnreadableRecordError, "no ADC gain"),
    wfdb_case("gain-1000x-too-small", lambda b: edit_header(
        b, signal_line=on_signal(None, 2, "1(0)/mV")), AmplitudeError, "ADC gain"),
    wfdb_case("units-volts-on-mv-data", lambda b: edit_header(
        b, signal_line=on_signal(None, 2, "1000(0)/V")), AmplitudeError),
    wfdb_case("units-unknown", lambda b: edit_header(
        b, signal_line=on_signal(None, 2, "1000(0)/mmHg")), UnreadableRecordError,
        "unknown unit 'mmHg'"),
    wfdb_case("checksum-bytes-flipped", _flip_bytes, UnreadableRecordError, "checksum mismatch"),
    wfdb_case("checksum-header-edited", lambda b: edit_header(
        b, signal_line=on_signal(7, 6, "12345")), UnreadableRecordError, "checksum mismatch"),
    wfdb_case("dat-truncated", lambda b: os.truncate(b.with_suffix(".dat"), 50_000),
              UnreadableRecordError, "truncated"),
    wfdb_case("dat-longer", lambda b: b.with_suffix(".dat").open("ab").write(b"\0" * 24),
              UnreadableRecordError, "longer than the header"),
    wfdb_case("dat-zero-bytes", lambda b: os.truncate(b.with_suffix(".dat"), 0),
              UnreadableRecordError, "empty file"),
    wfdb_case("header-fewer-signal-lines", lambda b: edit_header(b, keep=lambda i: i != 12),
              UnreadableRecordError, "announces 12 signal(s) but 11"),
    wfdb_case("header-says-13-leads", lambda b: _add_signal(b, "16 1000(0)/mV 16 0 0 0 0 vx"),
              UnreadableRecordError, "lead-count mismatch"),
    wfdb_case("header-says-11-leads", lambda b: edit_header(
        b, record_line=set_token(1, "11"), keep=lambda i: i != 12),
        UnreadableRecordError, "longer than the header"),
    wfdb_case("sig-len-longer-than-data", lambda b: edit_header(b, record_line=set_token(3, "6000")),
              UnreadableRecordError, "truncated"),
    wfdb_case("sig-len-missing", lambda b: edit_header(b, record_line=lambda t: t[:3]),
              UnreadableRecordError, "no signal length"),
    wfdb_case("sig-len-zero", lambda b: (edit_header(b, record_line=set_token(3, "0")),
                                         b.with_suffix(".dat").unlink()),
              UnreadableRecordError, "data file missing"),
    wfdb_case("sig-len-text", lambda b: edit_header(b, record_line=set_token(3, "5000x")),
              UnreadableRecordError, "signal length '5000x'"),
    wfdb_case("n-sig-text", lambda b: edit_header(b, record_line=set_token(1, "twelve")),
              UnreadableRecordError, "signal count"),
    wfdb_case("n-sig-zero", lambda b: edit_header(b, record_line=set_token(1, "0"),
                                                  keep=lambda i: i == 0),
              UnreadableRecordError, "no signals"),
    wfdb_case("multi-segment", lambda b: edit_header(b, record_line=lambda t: [t[0] + "/2", *t[1:]]),
              UnreadableRecordError, "multi-segment"),
    wfdb_case("data-file-outside-folder", lambda b: edit_header(
        b, signal_line=on_signal(None, 0, "../rec.dat")), UnreadableRecordError,
        "not a plain file name"),
    wfdb_case("format-unsupported", lambda b: edit_header(b, signal_line=on_signal(None, 1, "999")),
              UnreadableRecordError, "unsupported WFDB storage format"),
    wfdb_case("format-16-read-as-212", lambda b: edit_header(
        b, signal_line=on_signal(None, 1, "212")), UnreadableRecordError, "longer than the header"),
    wfdb_case("header-garbage-text", lambda b: b.with_suffix(".hea").write_text(
        "this is not\na WFDB header\n"), UnreadableRecordError, "unreadable header"),
    wfdb_case("header-binary", lambda b: b.with_suffix(".hea").write_bytes(
        np.random.default_rng(0).bytes(3000)), UnreadableRecordError, "unreadable header"),
    wfdb_case("header-only-comments", lambda b: b.with_suffix(".hea").write_text("# nothing\n"),
              UnreadableRecordError, "no record line"),
    wfdb_case("header-zero-bytes", lambda b: os.truncate(b.with_suffix(".hea"), 0),
              UnreadableRecordError, "empty file"),
    wfdb_case("header-sparse-2gb", _replace_hea(lambda p: sparse(p, head=b"rec 12 500 5000\n")),
              InputTooLargeError, "limit"),
    wfdb_case("header-fifo", _replace_hea(fifo), UnreadableRecordError, "FIFO"),
    wfdb_case("header-is-a-folder", _replace_hea(folder_named), UnreadableRecordError, "folder"),
    wfdb_case("header-symlink-loop", _replace_hea(symlink_loop), UnreadableRecordError,
              "symbolic link loop"),
    wfdb_case("dat-missing", lambda b: b.with_suffix(".dat").unlink(), UnreadableRecordError,
              "data file missing"),
    wfdb_case("dat-fifo", _replace_dat(fifo), UnreadableRecordError, "FIFO"),
    wfdb_case("dat-is-a-folder", _replace_dat(folder_named), UnreadableRecordError, "folder"),
    wfdb_case("dat-symlink-loop", _replace_dat(symlink_loop), UnreadableRecordError,
              "symbolic link loop"),
    wfdb_case("dat-is-dev-zero", _replace_dat(lambda p: p.symlink_to("/dev/zero")),
              UnreadableRecordError, "device"),
    wfdb_case("dat-sparse-2gb-zeros", lambda b: _zeros_to(b, HUGE_BYTES), FlatLeadError,
              "flat lead"),
    wfdb_case("lead-missing", lambda b: edit_header(b, signal_line=on_signal(9, 8, "X4")),
              MissingLeadsError, "missing lead(s) V4"),
    wfdb_case("lead-twice", lambda b: edit_header(b, signal_line=on_signal(1, 8, "I")),
              UnreadableRecordError, "appears twice"),
    wfdb_case("nan-samples", lambda b: _rewrite_signal(b, nan_at=(5, 1000, 1100)),
              NonFiniteSignalError, "NaN"),
    wfdb_case("flat-lead", lambda b: _rewrite_signal(b, zero_lead=8), FlatLeadError, "V3"),
    wfdb_case("one-second", None, TooShortError, "only 1.00 s", seconds=1.0),
    wfdb_case("format-212-truncated", lambda b: os.truncate(b.with_suffix(".dat"), 10_000),
              UnreadableRecordError, "truncated", fmt="212", adc_gain=200.0),
    wfdb_case("format-24-bytes-flipped", _flip_bytes, UnreadableRecordError, "checksum mismatch",
              fmt="24"),
]


def _add_signal(base: Path, fields: str) -> None:
    """One more signal line than the data file holds, and a record line that counts it."""
    edit_header(base, record_line=set_token(1, "13"))
    hea = base.with_suffix(".hea")
    hea.write_text(hea.read_text() + f"{base.name}.dat {fields}\n")


def _zeros_to(base: Path, size: int) -> None:
    """A record of about `size` bytes of zero samples (sparse), its header consistent with that."""
    frames = size // 24
    edit_header(base, record_line=set_token(3, str(frames)),
                signal_line=lambda i, t: [*t[:6], "0", *t[7:]])  # checksum of zeros
    sparse(base.with_suffix(".dat"), frames * 24)


def _rewrite_signal(base: Path, *, nan_at: tuple[int, int, int] | None = None,
                    zero_lead: int | None = None) -> None:
    signal = ecg(seed=len(base.name))
    if nan_at is not None:
        lead, lo, hi = nan_at
        signal[lead, lo:hi] = np.nan
    if zero_lead is not None:
        signal[zero_lead] = 0.0
    write_wfdb_record(base.parent, base.name, signal, 500, PTBXL_NAMES)


# --------------------------------------------------------------------------------- npy: bad input


def _npz_renamed(path: Path) -> None:
    np.savez(path.with_suffix(".tmp"), signal=ecg())
    path.with_suffix(".tmp.npz").rename(path)


def _object_npy(path: Path) -> None:
    array = np.empty((12, 2), dtype=object)
    array[:] = _Payload(path.parent / PICKLE_MARKER)
    np.save(path, array, allow_pickle=True)


def _plain_pickle(path: Path) -> None:
    path.write_bytes(pickle.dumps(_Payload(path.parent / PICKLE_MARKER)))


def _bad_npy_header(path: Path) -> None:
    path.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': garbage}\n" + b"\0" * 64)


def _truncated_npy(path: Path) -> None:
    np.save(path, ecg().astype(np.float32))
    os.truncate(path, path.stat().st_size // 2)


def _npy_plus_garbage(path: Path) -> None:
    np.save(path, ecg().astype(np.float32))
    with path.open("ab") as fh:
        fh.write(b"trailing bytes")


def _npy_sparse_huge(path: Path) -> None:
    np.save(path, ecg().astype(np.float32))
    os.truncate(path, HUGE_BYTES)


def _npy_huge_header_claim(path: Path) -> None:
    """A valid header promising 10^9 samples per lead, data sparse: over the size limit."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (12, 10**9)}
    with path.open("wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
    os.truncate(path, path.stat().st_size + 12 * 10**9 * 4)


_NPY: list[Case] = [
    file_case("npy", "npz-renamed", _npz_renamed, UnreadableRecordError, ".npz", sample_rate=500),
    file_case("npy", "zero-bytes", lambda p: p.write_bytes(b""), UnreadableRecordError,
              "empty file", sample_rate=500),
    file_case("npy", "complex", _npy_with(ecg() + 1j * ecg()), UnreadableRecordError, "complex",
              sample_rate=500),
    file_case("npy", "object-pickle", _object_npy, UnreadableRecordError, "objects",
              sample_rate=500),
    file_case("npy", "plain-pickle", _plain_pickle, UnreadableRecordError, "pickle",
              sample_rate=500),
    file_case("npy", "bool", _npy_with(ecg() > 0), UnreadableRecordError, "boolean",
              sample_rate=500),
    file_case("npy", "text", _npy_with(ecg().astype(str)), UnreadableRecordError, "text",
              sample_rate=500),
    file_case("npy", "structured", _npy_with(np.zeros((12, 5000), dtype=[("a", "<f4")])),
              UnreadableRecordError, "structured", sample_rate=500),
    file_case("npy", "3d", _npy_with(ecg()[None]), UnreadableRecordError, "shape (1, 12, 5000)",
              sample_rate=500),
    file_case("npy", "1d", _npy_with(ecg()[0]), UnreadableRecordError, "shape (5000,)",
              sample_rate=500),
    file_case("npy", "8-leads", _npy_with(ecg()[:8]), UnreadableRecordError, "shape (8, 5000)",
              sample_rate=500),
    file_case("npy", "nan", _npy_with(np.where(np.arange(5000) == 7, np.nan, ecg())),
              NonFiniteSignalError, "NaN", sample_rate=500),
    file_case("npy", "inf", _npy_with(np.where(np.arange(5000) == 9, np.inf, ecg())),
              NonFiniteSignalError, "NaN/inf", sample_rate=500),
    file_case("npy", "flat", _npy_with(np.zeros((12, 5000))), FlatLeadError, "flat",
              sample_rate=500),
    file_case("npy", "one-flat-lead", _npy_with(np.vstack([ecg()[:11], np.full((1, 5000), 0.3)])),
              FlatLeadError, "V6", sample_rate=500),
    file_case("npy", "adc-counts-int16", _npy_with(np.round(ecg() * 1000).astype(np.int16)),
              AmplitudeError, "divide by the ADC gain", sample_rate=500),
    file_case("npy", "microvolts", _npy_with(ecg() * 1000), AmplitudeError, "microvolts",
              sample_rate=500),
    file_case("npy", "volts", _npy_with(ecg() / 1000), AmplitudeError, "volts", sample_rate=500),
    file_case("npy", "too-short", _npy_with(ecg(seconds=1.0)), TooShortError, "only 1.00 s",
              sample_rate=500),
    file_case("npy", "truncated", _truncated_npy, UnreadableRecordError, "truncated",
              sample_rate=500),
    file_case("npy", "trailing-bytes", _npy_plus_garbage, UnreadableRecordError,
              "longer than its header", sample_rate=500),
    file_case("npy", "bad-header", _bad_npy_header, UnreadableRecordError, "bad .npy header",
              sample_rate=500),
    file_case("npy", "text-file", lambda p: p.write_text("I,II\n1,2\n"), UnreadableRecordError,
              "not a .npy array file", sample_rate=500),
    file_case("npy", "sparse-2gb", _npy_sparse_huge, InputTooLargeError, "limit",
              sample_rate=500),
    file_case("npy", "header-claims-48gb", _npy_huge_header_claim, InputTooLargeError, "limit",
              sample_rate=500),
    file_case("npy", "fifo", fifo, UnreadableRecordError, "FIFO", sample_rate=500),
    file_case("npy", "folder", folder_named, UnreadableRecordError, "folder", sample_rate=500),
    file_case("npy", "symlink-loop", symlink_loop, UnreadableRecordError, "symbolic link loop",
              sample_rate=500),
    file_case("npy", "dev-zero", lambda p: p.symlink_to("/dev/zero"), UnreadableRecordError,
              "device", sample_rate=500),
    file_case("npy", "rate-missing", _npy_with(ecg()), SampleRateError, "sample rate missing"),
    file_case("npy", "rate-negative", _npy_with(ecg()), SampleRateError, sample_rate=-500),
    file_case("npy", "rate-nan", _npy_with(ecg()), SampleRateError, sample_rate=float("nan")),
    file_case("npy", "rate-text", _npy_with(ecg()), SampleRateError, "not a number",
              sample_rate="abc"),
    file_case("npy", "rate-1e9", _npy_with(ecg()), SampleRateError, sample_rate=1e9),
]

# --------------------------------------------------------------------------------- CSV: bad input

_CSV: list[Case] = [
    file_case("csv", "sparse-2gb", lambda p: sparse(p, head=b"I,II,III\n"), InputTooLargeError,
              "limit", sample_rate=500),
    file_case("csv", "fifo", fifo, UnreadableRecordError, "FIFO", sample_rate=500),
    file_case("csv", "folder", folder_named, UnreadableRecordError, "folder", sample_rate=500),
    file_case("csv", "symlink-loop", symlink_loop, UnreadableRecordError, "symbolic link loop",
              sample_rate=500),
    file_case("csv", "zero-bytes", lambda p: p.write_bytes(b""), UnreadableRecordError,
              "empty file", sample_rate=500),
    file_case("csv", "binary-garbage", lambda p: p.write_bytes(
        np.random.default_rng(1).bytes(20_000)), UnreadableRecordError, "cannot parse CSV",
        sample_rate=500),
    file_case("csv", "one-endless-line", lambda p: sparse(p, 100 << 20, head=b"I,II," * 1000),
              UnreadableRecordError, "line 1 is longer", sample_rate=500),
    file_case("csv", "5000-columns", lambda p: p.write_text(",".join(
        f"c{i}" for i in range(5000)) + "\n"), UnreadableRecordError, "5000 columns",
        sample_rate=500),
    file_case("csv", "one-endless-data-row", lambda p: p.write_bytes(
        (",".join(PTBXL_NAMES) + "\n").encode() + b"1," * (60 << 20)), UnreadableRecordError,
        "line 2 is longer", sample_rate=500),
    file_case("csv", "semicolons", lambda p: p.write_text(";".join(PTBXL_NAMES) + "\n0;1\n"),
              MissingLeadsError, "semicolons", sample_rate=500),
    file_case("csv", "no-lead-columns", lambda p: p.write_text("a,b\n1,2\n3,4\n"),
              MissingLeadsError, "missing lead(s) I", sample_rate=500),
    file_case("csv", "header-only", lambda p: p.write_text(",".join(PTBXL_NAMES) + "\n"),
              TooShortError, "only 0.00 s", sample_rate=500),
    file_case("csv", "non-numeric", lambda p: (_csv_of(ecg())(p), p.write_text(
        p.read_text().replace("\n", "\nnot,a,number,,,,,,,,,\n", 1))), UnreadableRecordError,
        "non-numeric", sample_rate=500),
    file_case("csv", "empty-cells", lambda p: (_csv_of(ecg())(p), p.write_text(
        p.read_text().replace("\n", "\n,,,,,,,,,,,\n", 1))), NonFiniteSignalError, "NaN",
        sample_rate=500),
    file_case("csv", "lead-twice", _csv_of(np.vstack([ecg(), ecg()[:1]]), [*PTBXL_NAMES, "II"]),
              UnreadableRecordError, "appears twice", sample_rate=500),
    file_case("csv", "adc-counts", _csv_of(np.round(ecg() * 200)), AmplitudeError, "ADC gain",
              sample_rate=500),
    file_case("csv", "rate-missing", _csv_of(ecg()), SampleRateError, "sample rate missing"),
    file_case("csv", "rate-huge", _csv_of(ecg()), SampleRateError, sample_rate=1e9),
]

# -------------------------------------------------------------------------------- HDF5: bad input


def _external_link(f) -> None:
    import h5py

    f["tracings"] = h5py.ExternalLink("/etc/passwd", "/tracings")


def _huge_declared(f) -> None:
    f.create_dataset("tracings", shape=(1, 1 << 24, 12), dtype="f4", chunks=(1, 4096, 12))


def _several(f) -> None:
    f.create_dataset("tracings", data=_code15_tracings(3))


_HDF5: list[Case] = [
    file_case("hdf5", "tracings-2d", _h5(tracings=np.zeros((4096, 12), np.float32)),
              UnreadableRecordError, "expected (N, n_samples, 12)", index=0),
    file_case("hdf5", "tracings-group", _h5(group="tracings"), UnreadableRecordError,
              "is a group", index=0),
    file_case("hdf5", "tracings-bytes", _h5(tracings=np.full((1, 4096, 12), b"x")),
              UnreadableRecordError, "bytes", index=0),
    file_case("hdf5", "tracings-complex", _h5(tracings=np.ones((1, 4096, 12), np.complex64)),
              UnreadableRecordError, "complex", index=0),
    file_case("hdf5", "tracings-8-leads", _h5(tracings=np.ones((1, 4096, 8), np.float32)),
              UnreadableRecordError, "expected (N, n_samples, 12)", index=0),
    file_case("hdf5", "several-without-index", _h5(t=_several), RecordIndexError,
              "pass index="),
    file_case("hdf5", "index-out-of-range", _h5(t=_several), RecordIndexError, "out of range",
              index=3),
    file_case("hdf5", "index-negative-out-of-range", _h5(t=_several), RecordIndexError,
              "out of range", index=-4),
    file_case("hdf5", "index-not-a-number", _h5(t=_several), RecordIndexError,
              "not a whole number", index="0"),
    file_case("hdf5", "no-tracings", _h5(signals=np.zeros((1, 10, 12))), UnreadableRecordError,
              "no 'tracings'", index=0),
    file_case("hdf5", "empty-file-of-datasets", _h5(), UnreadableRecordError, "no 'tracings'"),
    file_case("hdf5", "external-link", _h5(t=_external_link), UnreadableRecordError,
              "link to another file", index=0),
    file_case("hdf5", "declares-16m-samples", _h5(t=_huge_declared), InputTooLargeError,
              "limit", index=0),
    file_case("hdf5", "all-zero-tracing", _h5(tracings=np.zeros((1, 4096, 12), np.float32)),
              TooShortError, "only 0.00 s"),
    file_case("hdf5", "nan-tracing", _h5(tracings=np.where(
        np.arange(4000)[None, :, None] == 5, np.nan, _code15_tracings(1))),
        NonFiniteSignalError, "NaN"),
    file_case("hdf5", "not-hdf5", lambda p: p.write_text("hello"), UnreadableRecordError,
              "cannot open HDF5", index=0),
    file_case("hdf5", "zero-bytes", lambda p: p.write_bytes(b""), UnreadableRecordError,
              "empty file", index=0),
    file_case("hdf5", "sparse-2gb-not-hdf5", sparse, UnreadableRecordError, "cannot open HDF5",
              index=0),
    file_case("hdf5", "fifo", fifo, UnreadableRecordError, "FIFO", index=0),
    file_case("hdf5", "folder", folder_named, UnreadableRecordError, "folder", index=0),
    file_case("hdf5", "symlink-loop", symlink_loop, UnreadableRecordError, "symbolic link loop",
              index=0),
    file_case("hdf5", "rate-disagrees", _h5(t=_several), SampleRateError, "says 400",
              index=0, sample_rate=500),
]

# ----------------------------------------------------------------------------- other files/arrays


def _other(name: str, make: Callable[[Path], None], error: type[ECGError], needle: str,
           file_name: str) -> Case:
    def build(folder: Path) -> tuple[object, dict]:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / file_name
        make(path)
        return path, {}
    return Case("file", name, build, error, needle)


_FILES: list[Case] = [
    _other("unknown-extension", lambda p: p.write_text("x"), UnknownFormatError,
           "unknown ECG format", "ecg.xml"),
    _other("missing", lambda p: None, UnreadableRecordError, "no such file", "gone.edf"),
    _other("folder-without-extension", folder_named, UnknownFormatError, "unknown ECG format",
           "records"),
    _other("symlink-loop-unknown-extension", symlink_loop, UnknownFormatError,
           "unknown ECG format", "loop.xml"),
    _other("sparse-2gb-unknown-extension", sparse, UnknownFormatError, "unknown ECG format",
           "big.bin"),
]

_ARRAYS: list[Case] = [
    array_case("complex", lambda: ecg() + 1j, UnreadableRecordError, "complex"),
    array_case("object", lambda: np.array([[object()] * 5000] * 12), UnreadableRecordError,
               "objects"),
    array_case("ragged-list", lambda: [[1.0, 2.0], [3.0]], UnreadableRecordError,
               "not an array"),
    array_case("strings", lambda: ecg().astype(str), UnreadableRecordError, "text"),
    array_case("3d", lambda: ecg()[None], UnreadableRecordError, "shape"),
    array_case("wrong-leads", lambda: ecg()[:11], UnreadableRecordError, "shape (11, 5000)"),
    array_case("nan", lambda: np.where(np.arange(5000) == 3, np.nan, ecg()),
               NonFiniteSignalError, "NaN"),
    array_case("flat", lambda: np.ones((12, 5000)), FlatLeadError, "flat"),
    array_case("adc-counts", lambda: np.round(ecg() * 1000).astype(np.int16), AmplitudeError,
               "ADC gain"),
    array_case("rate-negative", ecg, SampleRateError, rate=-500),
    array_case("rate-nan", ecg, SampleRateError, rate=float("nan")),
    array_case("rate-text", ecg, SampleRateError, "not a number", rate="abc"),
    array_case("rate-bool", ecg, SampleRateError, "not a number", rate=True),
    array_case("rate-missing", ecg, SampleRateError, "missing", rate=None),
    array_case("too-short", lambda: ecg(seconds=1.5), TooShortError, "only 1.50 s"),
]

MUST_FAIL: list[Case] = [*_WFDB, *_NPY, *_CSV, *_HDF5, *_FILES, *_ARRAYS]
WFDB_MUST_FAIL: list[Case] = list(_WFDB)


# ------------------------------------------------------------------------------ valid, read right


@dataclass(frozen=True)
class Valid:
    """A valid input and what reading it must give: `reference(folder)` is the expected
    canonical array, computed without qheart's reader where possible (wfdb, numpy, scipy)."""

    name: str
    build: Callable[[Path], tuple[object, dict]]
    reference: Callable[[Path], np.ndarray]
    atol: float = 1e-6


def _wfdb_first_10s(base: Path) -> np.ndarray:
    import wfdb

    return wfdb.rdrecord(str(base), sampto=5000).p_signal.T.astype(np.float32)  # (12, 5000)


def _valid_wfdb(name: str, **record) -> Valid:
    return Valid(name, lambda folder: (good_record(folder, "rec", **record), {}),
                 lambda folder: _wfdb_first_10s(folder / "rec"))


def _huge_valid_record(folder: Path) -> tuple[object, dict]:
    """12 s of signal, then zeros to 2 GiB (sparse): the header describes the whole file."""
    base = good_record(folder, "rec", seconds=12.0)
    sig_len = HUGE_BYTES // 24
    edit_header(base, record_line=set_token(3, str(sig_len)))  # zeros keep the checksums valid
    os.truncate(base.with_suffix(".dat"), sig_len * 24)
    return base, {}


def _crlf_comments(folder: Path) -> tuple[object, dict]:
    base = good_record(folder, "rec")
    hea = base.with_suffix(".hea")
    lines = hea.read_text().splitlines()
    text = "# exported by a test\r\n" + "\r\n".join(lines[:3]) + "\r\n# a comment\r\n"
    hea.write_text(text + "\r\n".join(lines[3:]) + "\r\n# <age>: 50\r\n")
    return base, {}


def _npy_long(folder: Path) -> tuple[object, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "long.npy", ecg(600, 500, seed=5).T.astype(np.float32))  # (300000, 12)
    return folder / "long.npy", {"sample_rate": 500}


def _csv_long(folder: Path) -> tuple[object, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    _csv_of(ecg(120, 500, seed=6).astype(np.float32))(folder / "long.csv")
    return folder / "long.csv", {"sample_rate": 500}


VALID: list[Valid] = [
    _valid_wfdb("wfdb-10s-fmt16"),
    _valid_wfdb("wfdb-fmt212", fmt="212", adc_gain=200.0),
    _valid_wfdb("wfdb-fmt24", fmt="24"),
    _valid_wfdb("wfdb-fmt32", fmt="32"),
    _valid_wfdb("wfdb-fmt80", fmt="80", adc_gain=50.0),
    Valid("wfdb-microvolts", lambda folder: (good_record(folder, "rec", adc_gain=1.0, units="uV"),
                                             {}),
          lambda folder: _wfdb_first_10s(folder / "rec") / 1000),
    _valid_wfdb("wfdb-10min-500hz", seconds=600.0),
    Valid("wfdb-2gb-sparse-tail", _huge_valid_record,
          lambda folder: _wfdb_first_10s(folder / "rec")),
    Valid("wfdb-crlf-and-comments", _crlf_comments, lambda folder: _wfdb_first_10s(folder / "rec")),
    Valid("npy-10min-time-first", _npy_long,
          lambda folder: np.load(folder / "long.npy")[:5000].T.copy()),
    Valid("csv-2min", _csv_long,
          lambda folder: pd.read_csv(folder / "long.csv").to_numpy(np.float32)[:5000].T.copy()),
    Valid("hdf5-index-1", lambda folder: (write_code15_hdf5(
        _mkdir(folder) / "x.h5", [ecg(10, 400, 1), ecg(10, 400, 2)]), {"index": 1}),
        lambda folder: _code15_reference(ecg(10, 400, 2)), atol=1e-5),
]


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _code15_reference(signal_400hz: np.ndarray) -> np.ndarray:
    """scipy's own 400 → 500 Hz polyphase resampling of the float32-stored tracing."""
    from scipy import signal as sps

    x = signal_400hz.astype(np.float32).astype(np.float64)
    mean = x.mean(axis=1, keepdims=True)
    out = sps.resample_poly(x - mean, 5, 4, axis=1, padtype="line") + mean
    return out[:, :5000].astype(np.float32)


def measure() -> None:
    """`python -m tests.data.malformed`: read every case once; print per family how many raised
    exactly their typed error naming the file, and the slowest read."""
    import tempfile
    import time
    from collections import defaultdict

    from qheart.data.readers import read_array, read_ecg

    stats: dict[str, list] = defaultdict(lambda: [0, 0, 0.0, ""])  # n, ok, max s, slowest
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(MUST_FAIL):
            target, kwargs = case.build(Path(tmp) / str(i))
            start = time.perf_counter()
            try:
                if case.family == "array":
                    read_array(target, kwargs["sample_rate"], source="upload")
                else:
                    read_ecg(target, **kwargs)
                raised: BaseException | None = None
            except Exception as exc:
                raised = exc
            elapsed = time.perf_counter() - start
            name = "upload" if case.family == "array" else Path(str(target)).name
            ok = type(raised) is case.error and name in str(raised)
            row = stats[case.family]
            row[0] += 1
            row[1] += ok
            if elapsed > row[2]:
                row[2], row[3] = elapsed, case.name
            if not ok:
                print(f"NOT TYPED: {case.id}: {type(raised).__name__}: {raised}")
        for i, valid in enumerate(VALID):
            target, kwargs = valid.build(Path(tmp) / f"valid{i}")
            start = time.perf_counter()
            out = read_ecg(target, **kwargs)
            elapsed = time.perf_counter() - start
            good = np.allclose(out, valid.reference(Path(tmp) / f"valid{i}"), rtol=0,
                               atol=valid.atol)
            row = stats["valid"]
            row[0] += 1
            row[1] += good
            if elapsed > row[2]:
                row[2], row[3] = elapsed, valid.name
    print(f"{'family':8} {'cases':>5} {'typed':>5} {'max s':>6}  slowest")
    for family, (n, ok, worst, which) in stats.items():
        print(f"{family:8} {n:5d} {ok:5d} {worst:6.3f}  {which}")
    total = sum(v[0] for k, v in stats.items() if k != "valid")
    typed = sum(v[1] for k, v in stats.items() if k != "valid")
    print(f"must-fail cases: {total}, typed and naming the file: {typed}")


if __name__ == "__main__":
    measure()
