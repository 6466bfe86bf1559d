"""ECG readers: every supported file format → the canonical (12, 5000) float32 mV array at 500 Hz.

Every reader only gets the samples, the lead names, the rate and the unit out of its format, then
hands them to `to_canonical`, the one shared path that maps lead names, validates, resamples,
filters, crops/pads and checks amplitudes (policy in `qheart.data.signal`). In-memory arrays
(the HTTP service, notebooks) enter through `read_array`, with the same checks. Bad input raises
a typed `qheart.data.errors.ECGError` whose message names the file and the problem; no other
exception type leaves a reader for bad input, and no reader hangs on one.

The input boundary (what is checked before anything is trusted):
- Files: a regular, non-empty file under a size limit (`qheart.data.input_files`), checked
  before opening: no FIFO, device, folder or symlink loop ever reaches a parser.
- Only what is used is read: the first `READ_SECONDS` (10 s + 2 s margin) of a long WFDB record
  (wfdb `sampto`), of a .npy (memory map) and of a CSV (`nrows`); one capped tracing of HDF5.
- WFDB: the header is parsed strictly (`qheart.data.wfdb_header`: sampling rate finite and in
  50–10,000 Hz, gains non-zero and finite, data file sizes matching the header's lead count and
  length), wfdb's own reading is cross-checked against it, and the header's checksums are
  verified (`verify_checksums=False` skips that, for files known to carry wrong checksums).
- Arrays: real numbers only (no complex, object, string, bool or structured dtypes; a .npy is
  never unpickled), 2-D with 12 leads, finite, no flat lead, amplitudes of an ECG in mV
  (`qheart.data.signal.check_amplitude`: raw ADC counts are refused with a hint to apply the
  gain).

Formats:
- WFDB (`.hea` + data files; PTB-XL, MIMIC-IV-ECG, PTB Diagnostic, any rate/length/lead naming):
  units from the header (mV/uV/V). Extra leads (e.g. PTB's Frank leads vx vy vz) are dropped;
  a record missing the file that holds only such leads (PTB's .xyz) still reads.
- CODE-15 / CODE HDF5: dataset `tracings` (N, 4096, 12), 400 Hz, leads DI DII DIII AVR AVL AVF
  V1–V6, zero-padded symmetrically to 4096 samples. The all-zero samples at both ends (every lead
  exactly 0) are stripped before resampling, so the pad is neither stretched into the signal by
  the resampling filter nor kept as fake flat signal; what remains (about 7 or 10 s) follows the
  common crop/pad policy. Amplitude unit is documented ambiguously: the authors' README says
  "scale 1e-4V" and, in the same sentence, that a signal in V is multiplied by 1000 for their
  network (i.e. millivolts). We read stored values as mV (`scale_to_mv=1.0`); callers can rescale.
- `.npy`: (12, N) or (N, 12) in canonical lead order, mV; the sample rate must be given.
- `.csv`: one column per lead, named (any case: `I`, `ii`, `AVR`, `DIII`…), mV; other columns are
  ignored; the sample rate must be given.
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qheart.data.errors import (
    ECGError,
    InputTooLargeError,
    MissingLeadsError,
    RecordIndexError,
    SampleRateError,
    TooShortError,
    UnknownFormatError,
    UnreadableRecordError,
)
from qheart.data.input_files import (
    MAX_CSV_BYTES,
    MAX_NPY_BYTES,
    check_regular_file,
    human_bytes,
    open_regular_file,
)
from qheart.data.leads import (
    LEADS,
    MIN_DURATION_S,
    N_LEADS,
    N_SAMPLES,
    SAMPLE_RATE_HZ,
    canonical_lead_name,
)
from qheart.data.signal import (
    MAX_SAMPLE_RATE_HZ,
    MIN_SAMPLE_RATE_HZ,
    READ_SECONDS,
    FilterConfig,
    apply_filters,
    check_amplitude,
    check_sample_rate,
    crop_or_pad,
    read_window,
    resample,
    validate,
)

__all__ = [
    "CHECKSUM_MAX_BYTES",
    "CODE15_LEADS",
    "CODE15_SAMPLE_RATE_HZ",
    "MAX_SAMPLE_RATE_HZ",
    "MAX_TRACING_SAMPLES",
    "MIN_SAMPLE_RATE_HZ",
    "READ_SECONDS",
    "Code15Tracing",
    "iter_code15",
    "lead_indices",
    "read_array",
    "read_code15",
    "read_csv",
    "read_ecg",
    "read_npy",
    "read_wfdb",
    "strip_zero_padding",
    "to_canonical",
]  # fmt: skip

CODE15_LEADS: tuple[str, ...] = (
    "DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6",
)  # fmt: skip
CODE15_SAMPLE_RATE_HZ = 400.0

CHECKSUM_MAX_BYTES = 256 << 20
"""A record whose used data files exceed this (≈ 3 h of 12 leads at 1 kHz, 16 bit) is read
without checksum verification: the checksum covers every sample, and reading a multi-GB record
whole to verify it would cost what `sampto` saves. Shorter records are verified in full."""
MAX_TRACING_SAMPLES = 1 << 20
"""Samples per HDF5 tracing (CODE-15: 4096); a larger declared shape is refused unread."""
MAX_HDF5_CHUNK_BYTES = 64 << 20
"""An HDF5 storage chunk is decompressed whole to read any tracing in it: bound that cost."""
_HDF5_BLOCK_BYTES = 64 << 20

Filters = FilterConfig | str | None

# Units a WFDB header may give, as the factor to millivolts. wfdb defaults a missing unit to "mV".
_TO_MV: dict[str, float] = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nv": 1e-6}
_REAL_KINDS = frozenset("iuf")  # signed/unsigned integers and floats; not b, c, O, U, S, V, M, m


def _filter_config(filters: Filters) -> FilterConfig:
    if filters is None:
        return FilterConfig()
    if isinstance(filters, str):
        return FilterConfig.from_name(filters)
    return filters


def _check_real_dtype(dtype: np.dtype, source: str | Path) -> None:
    """Only real numbers are samples; complex would be silently cut to its real part."""
    if dtype.hasobject:
        raise UnreadableRecordError(source, f"array dtype {dtype} holds Python objects, not "
                                            "numbers (never unpickled)")
    if dtype.kind not in _REAL_KINDS:
        kind = {"c": "complex", "b": "boolean", "U": "text", "S": "bytes", "V": "structured",
                "M": "datetime", "m": "timedelta"}.get(dtype.kind, "non-numeric")
        raise UnreadableRecordError(source, f"array dtype {dtype} is {kind}, not real numbers")


def lead_indices(names: Sequence[str], source: str | Path) -> list[int]:
    """Index in `names` of each canonical lead, in canonical order; raises on missing/duplicates."""
    found: dict[str, int] = {}
    for i, name in enumerate(names):
        canonical = canonical_lead_name(str(name))
        if canonical is None:
            continue  # a non-standard lead (Frank vx/vy/vz, rhythm strips…): not ours to keep
        if canonical in found:
            raise UnreadableRecordError(
                source, f"lead {canonical} appears twice ({names[found[canonical]]!r}, {name!r})"
            )
        found[canonical] = i
    missing = [lead for lead in LEADS if lead not in found]
    if missing:
        shown = ", ".join(map(str, names[:40])) + (", …" if len(names) > 40 else "")
        raise MissingLeadsError(source, f"missing lead(s) {', '.join(missing)} (has: {shown})")
    return [found[lead] for lead in LEADS]


def to_canonical(
    signal: np.ndarray,
    leads: Sequence[str],
    sample_rate: float | None,
    source: str | Path,
    *,
    filters: Filters = None,
) -> np.ndarray:
    """(n_leads, n_samples) mV with named rows at any rate → canonical float32 (12, 5000).

    Steps: keep the first READ_SECONDS, map lead names to canonical order (extra leads dropped),
    validate (non-finite, < 2 s, flat lead), resample to 500 Hz, optional filters, crop/pad to
    10 s, check again that no lead is flat within the kept 10 s, and check the amplitudes.
    """
    rate = check_sample_rate(sample_rate, source)
    x = np.asarray(signal)
    _check_real_dtype(x.dtype, source)
    if x.ndim != 2 or x.shape[0] != len(leads):
        raise UnreadableRecordError(
            source, f"signal shape {x.shape} does not match {len(leads)} lead names"
        )
    x = x[:, : read_window(rate)]  # (n_leads, ≤ 12 s): only what is used
    x = x[lead_indices(leads, source)].astype(np.float64, copy=False)  # (12, n)
    validate(x, source, sample_rate=rate)
    x = resample(x, rate, SAMPLE_RATE_HZ)  # (12, n·500/rate)
    config = _filter_config(filters)
    if not config.is_identity:
        x = apply_filters(x, SAMPLE_RATE_HZ, config)
    out = crop_or_pad(x, N_SAMPLES).astype(np.float32)  # (12, 5000)
    validate(out, source, sample_rate=SAMPLE_RATE_HZ)
    check_amplitude(out, source)
    return out


def read_array(
    array: object, sample_rate: float, *, source: str = "array", filters: Filters = None
) -> np.ndarray:
    """An in-memory ECG, (12, N) or (N, 12) in canonical lead order, mV → canonical (12, 5000).

    The entry point for arrays that come from anywhere (the HTTP service, notebooks, .npy
    files): the same checks as every file reader (real-number dtype, 12 leads, sample rate in
    range, finite, at least 2 s, no flat lead, amplitudes of an ECG in mV), each a typed
    ECGError whose message starts with `source`.
    """
    rate = check_sample_rate(sample_rate, source)
    try:
        x = np.asarray(array)
    except Exception as exc:  # ragged lists, objects whose __array__ fails…
        raise UnreadableRecordError(source, f"not an array of samples: {exc}") from None
    _check_real_dtype(x.dtype, source)
    if x.ndim != 2 or N_LEADS not in x.shape:
        raise UnreadableRecordError(source, f"array shape {x.shape}: expected (12, N) or (N, 12)")
    signal = x if x.shape[0] == N_LEADS else x.T  # (12, N)
    return to_canonical(signal, LEADS, rate, source, filters=filters)


# --------------------------------------------------------------------------------------- WFDB


def _record_base(record_path: str | Path) -> Path:
    """The record path without extension, as wfdb wants it (`x/00001_hr` for `x/00001_hr.hea`)."""
    path = Path(record_path)
    return path.with_suffix("") if path.suffix.lower() in {".hea", ".dat"} else path


def _call_wfdb(func, source: Path, what: str, *args, **kwargs):
    """Run a wfdb call; its exceptions and its warnings both become UnreadableRecordError."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = func(*args, **kwargs)
        except Exception as exc:  # wfdb raises many types (ValueError, IndexError, KeyError…)
            raise UnreadableRecordError(source, f"{what}: {exc}") from exc
    for warning in caught:
        if issubclass(warning.category, (UserWarning, RuntimeWarning)):
            raise UnreadableRecordError(source, f"{what}: wfdb warned: {warning.message}")
    return result


def _units_to_mv(units: Sequence[str], names: Sequence[str], source: Path) -> np.ndarray:
    factors = []
    for unit, name in zip(units, names, strict=True):
        key = (unit or "mV").strip().lower()
        if key not in _TO_MV:
            raise UnreadableRecordError(source, f"lead {name}: unknown unit {unit!r}")
        factors.append(_TO_MV[key])
    return np.asarray(factors)[:, None]  # (n_leads, 1)


def _cross_check(record, header, channels: list[int], n_read: int, hea: Path) -> None:
    """wfdb must have understood the header as the strict parse did (rate, gains, samples)."""
    gains = [header.signals[c].gain for c in channels]
    if not math.isclose(float(record.fs), header.fs, rel_tol=1e-9):
        raise UnreadableRecordError(hea, f"wfdb reads the sampling rate as {record.fs} Hz, the "
                                         f"header says {header.fs:g} Hz")
    if not np.allclose(np.asarray(record.adc_gain, dtype=np.float64), gains, rtol=1e-9):
        raise UnreadableRecordError(hea, f"wfdb reads the ADC gains as {record.adc_gain}, the "
                                         f"header says {gains}")
    shape = getattr(record.d_signal, "shape", None)
    if shape != (n_read, len(channels)):
        raise UnreadableRecordError(hea, f"wfdb returned samples of shape {shape}, expected "
                                         f"({n_read}, {len(channels)})")


def _checksum_mismatches(sums: np.ndarray, header, channels: list[int]) -> list[str]:
    """Leads whose 16-bit sample sum differs from the header's checksum."""
    bad = []
    for total, c in zip(sums, channels, strict=True):
        expected = header.signals[c].checksum
        if expected is not None and (int(total) - expected) % 65536:
            bad.append(f"{header.signals[c].name} (header {expected}, data {int(total) % 65536})")
    return bad


def _can_verify(header, channels: list[int]) -> bool:
    """Checksums are comparable when present and one sample per frame without skew (the
    smoothed or shifted samples wfdb returns otherwise are not what was summed)."""
    specs = [header.signals[c] for c in channels]
    return any(s.checksum is not None for s in specs) and all(
        s.samps_per_frame == 1 and s.skew == 0 for s in specs)


def _stream_sums(base: Path, header, channels: list[int], start: int, stop: int) -> np.ndarray:
    """Per-channel int64 sums of samples [start, stop), read in blocks (flat memory)."""
    import wfdb

    block = max(1, (8 << 20) // (8 * len(channels)))
    sums = np.zeros(len(channels), dtype=np.int64)
    for lo in range(start, stop, block):
        part = _call_wfdb(wfdb.rdrecord, base, "unreadable signal", str(base), sampfrom=lo,
                          sampto=min(lo + block, stop), channels=channels, physical=False,
                          m2s=False, return_res=64)
        sums += part.d_signal.sum(axis=0, dtype=np.int64)
    return sums


def _verify_checksums(record, base: Path, header, channels: list[int], n_read: int,
                      sig_len: int) -> None:
    """Compare the header's checksums with the samples (all of them: a checksum covers the
    whole signal). Records over CHECKSUM_MAX_BYTES are left unverified (see there)."""
    if not _can_verify(header, channels):
        return
    sums = record.d_signal.sum(axis=0, dtype=np.int64)  # (n_channels,) of the read window
    if n_read < sig_len:
        data_bytes = sum((base.parent / f).stat().st_size
                         for f in {header.signals[c].file_name for c in channels})
        if data_bytes > CHECKSUM_MAX_BYTES:
            return
        sums = sums + _stream_sums(base, header, channels, n_read, sig_len)
    bad = _checksum_mismatches(sums, header, channels)
    if bad:
        raise UnreadableRecordError(
            base, f"checksum mismatch in lead(s) {', '.join(bad)}: the data file is corrupt or "
                  "does not belong to this header (verify_checksums=False / "
                  "--no-verify-checksums reads it anyway)")


def read_wfdb(
    record_path: str | Path, *, filters: Filters = None, verify_checksums: bool = True
) -> np.ndarray:
    """A WFDB record (path with or without `.hea`/`.dat`) → canonical float32 (12, 5000) mV.

    Order: strict header parse; data files checked (regular, sizes match the header); lead
    mapping; one wfdb read of the 12 leads' first READ_SECONDS; cross-check with the header;
    checksums (unless `verify_checksums=False`); physical units; `to_canonical`.
    """
    import wfdb

    from qheart.data.wfdb_header import check_data_files, read_header, require_data_files

    base = _record_base(record_path)
    hea = base.with_name(base.name + ".hea")
    if not _present(hea):
        raise UnreadableRecordError(hea, "header file not found")
    header = read_header(hea)
    check_data_files(header, base.parent)
    channels = lead_indices(header.names, hea)  # canonical order; extra leads never read
    units = [header.signals[c].units for c in channels]
    to_mv = _units_to_mv(units, [header.names[c] for c in channels], hea)  # (12, 1)
    require_data_files(header, base.parent, channels)
    if header.sig_len == 0:
        raise TooShortError(base, f"only 0.00 s of signal, at least {MIN_DURATION_S:g} s needed")
    n_read = min(header.sig_len, read_window(header.fs))
    record = _call_wfdb(wfdb.rdrecord, base, "unreadable signal", str(base), sampto=n_read,
                        channels=channels, physical=False, m2s=False, return_res=64)
    _cross_check(record, header, channels, n_read, hea)
    if verify_checksums:
        _verify_checksums(record, base, header, channels, n_read, header.sig_len)
    physical = _call_wfdb(record.dac, base, "cannot convert to physical units", expanded=False,
                          return_res=64, inplace=False)  # (n_read, 12), NaN where invalid
    signal = np.asarray(physical, dtype=np.float64).T * to_mv  # (12, n) mV
    leads = [header.names[c] for c in channels]
    return to_canonical(signal, leads, header.fs, base, filters=filters)


# ------------------------------------------------------------------------------------- CODE-15


def strip_zero_padding(tracing: np.ndarray) -> np.ndarray:
    """Drop the samples at both ends where every lead is exactly 0 (CODE-15's padding).

    tracing: (n_samples, n_leads) as stored. Returns a view; all-zero input gives an empty array.
    """
    nonzero = np.flatnonzero(np.any(tracing != 0, axis=1))
    if nonzero.size == 0:
        return tracing[:0]
    return tracing[nonzero[0] : nonzero[-1] + 1]


def _code15_to_canonical(
    tracing: np.ndarray, source: str, scale_to_mv: float, filters: Filters
) -> np.ndarray:
    x = strip_zero_padding(np.asarray(tracing, dtype=np.float64)).T * scale_to_mv  # (12, n)
    return to_canonical(x, CODE15_LEADS, CODE15_SAMPLE_RATE_HZ, source, filters=filters)


def _check_tracings(tracings, h5_path: Path) -> None:
    """The `tracings` dataset must be plain, numeric, (N, n_samples, 12) and of bounded cost."""
    if tracings.ndim != 3 or tracings.shape[2] != len(CODE15_LEADS):
        raise UnreadableRecordError(
            h5_path, f"'tracings' has shape {tracings.shape}, expected (N, n_samples, 12)"
        )
    _check_real_dtype(tracings.dtype, f"{h5_path} 'tracings'")
    if tracings.external or tracings.is_virtual:
        raise UnreadableRecordError(h5_path, "'tracings' stores its data in other files "
                                             "(external or virtual dataset): not followed")
    if tracings.shape[1] > MAX_TRACING_SAMPLES:
        raise InputTooLargeError(h5_path, f"tracings of {tracings.shape[1]} samples, over the "
                                          f"{MAX_TRACING_SAMPLES} limit")
    if tracings.chunks is not None:
        chunk_bytes = int(np.prod(tracings.chunks)) * tracings.dtype.itemsize
        if chunk_bytes > MAX_HDF5_CHUNK_BYTES:
            raise InputTooLargeError(
                h5_path, f"HDF5 chunks of {human_bytes(chunk_bytes)}, over the "
                         f"{human_bytes(MAX_HDF5_CHUNK_BYTES)} limit (each is decompressed whole)")


def _open_tracings(h5_path: Path):
    """(open h5py.File, its checked `tracings` dataset); the caller closes the file."""
    import h5py  # local: keeps `import qheart.data.readers` light

    check_regular_file(h5_path, what="HDF5 file")
    try:
        handle = h5py.File(h5_path, "r")
    except Exception as exc:  # h5py raises OSError, but also others on corrupt superblocks
        raise UnreadableRecordError(h5_path, f"cannot open HDF5 file: {exc}") from exc
    try:
        link = handle.get("tracings", getlink=True)
        if link is None:
            raise UnreadableRecordError(h5_path, "no 'tracings' dataset (CODE-15 layout expected)")
        if isinstance(link, h5py.ExternalLink):
            raise UnreadableRecordError(h5_path, "'tracings' is a link to another file: not "
                                                 "followed")
        try:
            tracings = handle["tracings"]
        except Exception as exc:  # a dangling soft link
            raise UnreadableRecordError(h5_path, f"'tracings' cannot be opened: {exc}") from exc
        if not isinstance(tracings, h5py.Dataset):
            raise UnreadableRecordError(h5_path, "'tracings' is a group, not a dataset")
        _check_tracings(tracings, h5_path)
    except BaseException:
        handle.close()
        raise
    return handle, tracings


def _read_rows(tracings, rows: slice | int, h5_path: Path) -> np.ndarray:
    try:
        return np.asarray(tracings[rows])
    except Exception as exc:  # corrupt chunks, missing filters…
        raise UnreadableRecordError(h5_path, f"cannot read 'tracings': {exc}") from exc


def _check_index(index: object, n: int, path: Path) -> int:
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise RecordIndexError(path, f"index {index!r} is not a whole number")
    if not -n <= int(index) < n:
        raise RecordIndexError(path, f"index {index} out of range: the file holds {n} "
                                     f"tracing(s) (0…{n - 1})")
    return int(index) % n


def read_code15(
    h5_path: str | Path, index: int, *, scale_to_mv: float = 1.0, filters: Filters = None
) -> np.ndarray:
    """Tracing `index` of a CODE-15-style HDF5 file → canonical float32 (12, 5000) mV."""
    path = Path(h5_path)
    handle, tracings = _open_tracings(path)
    with handle:
        index = _check_index(index, tracings.shape[0], path)
        tracing = _read_rows(tracings, index, path)  # (4096, 12)
    return _code15_to_canonical(tracing, f"{path}[{index}]", scale_to_mv, filters)


@dataclass(frozen=True)
class Code15Tracing:
    """One tracing from `iter_code15`: the canonical signal, or the error that rejected it."""

    index: int
    exam_id: int | None
    signal: np.ndarray | None
    error: ECGError | None


def iter_code15(
    h5_path: str | Path,
    start: int = 0,
    stop: int | None = None,
    *,
    block: int = 256,
    scale_to_mv: float = 1.0,
    filters: Filters = None,
) -> Iterator[Code15Tracing]:
    """Stream tracings [start, stop) of a CODE-15 file, `block` rows per HDF5 read (fewer when
    tracings are long, so a read stays under 64 MiB).

    A bad tracing is yielded with its error instead of stopping the stream, so a caller can skip
    it with the reason; only an unreadable file raises. `exam_id` comes from the file's `exam_id`
    dataset when present (CODE-15 stores one per row).
    """
    path = Path(h5_path)
    handle, tracings = _open_tracings(path)
    with handle:
        n = tracings.shape[0]
        stop = n if stop is None else min(stop, n)
        row_bytes = max(1, tracings.shape[1] * tracings.shape[2] * tracings.dtype.itemsize)
        block = max(1, min(block, _HDF5_BLOCK_BYTES // row_bytes))
        exam_ids = handle.get("exam_id")
        for lo in range(start, stop, block):
            hi = min(lo + block, stop)
            chunk = _read_rows(tracings, slice(lo, hi), path)  # (b, 4096, 12)
            ids = exam_ids[lo:hi] if exam_ids is not None else [None] * (hi - lo)
            for offset, (tracing, exam_id) in enumerate(zip(chunk, ids, strict=True)):
                i = lo + offset
                exam = None if exam_id is None else int(exam_id)
                try:
                    out = _code15_to_canonical(tracing, f"{path}[{i}]", scale_to_mv, filters)
                except ECGError as exc:
                    yield Code15Tracing(i, exam, None, exc)
                else:
                    yield Code15Tracing(i, exam, out, None)


# ----------------------------------------------------------------------------------- npy / CSV

_NPY_MAGIC = b"\x93NUMPY"


def _npy_window(fh, path: Path, rate: float) -> np.ndarray:
    """The first READ_SECONDS of a .npy, read through a memory map after checking its header:
    magic, dtype (no objects: never unpickled), shape, and that the file holds what it promises."""
    start = fh.read(len(_NPY_MAGIC))
    if start != _NPY_MAGIC:
        what = ("a zip archive (a .npz renamed .npy?)" if start.startswith(b"PK")
                else "a pickle (never loaded)" if start[:1] == b"\x80"
                else "not NumPy's .npy header")
        raise UnreadableRecordError(path, f"not a .npy array file: it starts like {what}")
    fh.seek(0)
    try:
        version = np.lib.format.read_magic(fh)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(fh)
    except Exception as exc:  # ValueError, SyntaxError from the header dict, EOFError…
        raise UnreadableRecordError(path, f"bad .npy header: {exc}") from None
    _check_real_dtype(dtype, path)
    if len(shape) != 2 or N_LEADS not in shape:
        raise UnreadableRecordError(path, f"array shape {shape}: expected (12, N) or (N, 12)")
    offset = fh.tell()
    expected = offset + math.prod(shape) * dtype.itemsize
    size = fh.seek(0, 2)
    if size != expected:
        kind = "truncated" if size < expected else "longer than its header describes"
        raise UnreadableRecordError(path, f"{kind}: {size} bytes, the header's {dtype} array "
                                          f"of shape {shape} needs {expected}")
    leads_first = shape[0] == N_LEADS
    keep = read_window(rate)
    if math.prod(shape) == 0:
        return np.zeros(shape, dtype=dtype)
    mapped = np.memmap(fh, dtype=dtype, mode="r", offset=offset, shape=shape,
                       order="F" if fortran else "C")
    window = mapped[:, :keep] if leads_first else mapped[:keep]
    return np.array(window)  # a copy of ≤ 12 s: the map closes with the file


def read_npy(
    path: str | Path, sample_rate: float | None, *, filters: Filters = None
) -> np.ndarray:
    """A .npy array (12, N) or (N, 12), canonical lead order, mV → canonical (12, 5000)."""
    path = Path(path)
    rate = check_sample_rate(sample_rate, path)
    with open_regular_file(path, max_bytes=MAX_NPY_BYTES, what=".npy") as fh:
        try:
            array = _npy_window(fh, path, rate)
        except OSError as exc:
            raise UnreadableRecordError(path, f"cannot read .npy: {exc}") from None
    return read_array(array, rate, source=str(path), filters=filters)


_MANGLED = re.compile(r"^(?P<base>.+)\.(?P<n>\d+)$")  # pandas renames a repeated "II" to "II.1"
MAX_CSV_LINE_BYTES = 64 << 10
"""A CSV line longer than this is not an ECG table (12 leads take about 100 bytes a row)."""
MAX_CSV_COLUMNS = 64
"""Columns a CSV may have: the 12 leads plus time and a few others, not a transposed table."""


def _csv_head(fh, path: Path, n_rows: int) -> bytes:
    """The header line and the first `n_rows` lines, each at most MAX_CSV_LINE_BYTES: all the
    parser ever sees, so a file of one endless line or millions of columns costs nothing."""
    lines = []
    for number in range(1, n_rows + 2):
        line = fh.readline(MAX_CSV_LINE_BYTES + 1)
        if not line:
            break
        if len(line) > MAX_CSV_LINE_BYTES:
            raise UnreadableRecordError(path, f"line {number} is longer than "
                                              f"{human_bytes(MAX_CSV_LINE_BYTES)}: not an ECG table")
        lines.append(line)
    if lines and lines[0].count(b",") + 1 > MAX_CSV_COLUMNS:
        raise UnreadableRecordError(path, f"{lines[0].count(b',') + 1} columns, more than "
                                          f"{MAX_CSV_COLUMNS}: not an ECG table with one column "
                                          "per lead")
    return b"".join(lines)


def read_csv(
    path: str | Path, sample_rate: float | None, *, filters: Filters = None
) -> np.ndarray:
    """A CSV with one column per lead (named; any case/alias), mV → canonical (12, 5000).

    Only the header and the first READ_SECONDS of rows are read and parsed, from a file of at
    most MAX_CSV_BYTES, with lines of at most MAX_CSV_LINE_BYTES and MAX_CSV_COLUMNS columns.
    """
    import io

    import pandas as pd  # local: keeps `import qheart.data.readers` light

    path = Path(path)
    rate = check_sample_rate(sample_rate, path)
    with open_regular_file(path, max_bytes=MAX_CSV_BYTES, what="CSV") as fh:
        head = _csv_head(fh, path, read_window(rate))
    try:
        frame = pd.read_csv(io.BytesIO(head), encoding="utf-8-sig")  # a BOM is not a name
    except Exception as exc:  # ParserError, UnicodeDecodeError, EmptyDataError, csv.Error…
        problem = " ".join(str(exc).split())[:300]
        raise UnreadableRecordError(path, f"cannot parse CSV: {problem}") from None
    names = [str(c) for c in frame.columns]
    if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
        raise MissingLeadsError(path, f"one column {names[0][:80]!r}: separated by "
                                      f"{'semicolons' if ';' in names[0] else 'tabs'}? qheart "
                                      "reads comma-separated values")
    for name in names:
        mangled = _MANGLED.match(name)
        if mangled and canonical_lead_name(mangled["base"]) and mangled["base"] in names:
            raise UnreadableRecordError(path, f"lead {mangled['base']} appears twice")
    columns = lead_indices(names, path)
    picked = frame.iloc[:, columns]
    try:
        signal = picked.to_numpy(dtype=np.float64).T  # (12, N)
    except (TypeError, ValueError) as exc:
        problem = " ".join(str(exc).split())[:200]
        raise UnreadableRecordError(path, f"non-numeric values in lead columns: {problem}") from None
    return to_canonical(signal, LEADS, rate, path, filters=filters)


# ------------------------------------------------------------------------------------ dispatch


def _present(path: Path) -> bool:
    """Something is there, even a dangling link or a link loop (which `exists()` calls absent).
    When the OS cannot tell (no permission, name too long), True: the reader's own check of
    the file then names the problem."""
    try:
        return path.exists() or path.is_symlink()
    except OSError:
        return True


def _is_wfdb(path: Path) -> bool:
    if path.suffix.lower() in {".hea", ".dat"}:
        return True
    return _present(path.with_name(path.name + ".hea"))


def read_ecg(
    path: str | Path,
    *,
    sample_rate: float | None = None,
    filters: Filters = None,
    index: int | None = None,
    verify_checksums: bool = True,
) -> np.ndarray:
    """Any supported ECG file → canonical float32 (12, 5000) mV, dispatching on the extension.

    `sample_rate` is required for .npy/.csv; for WFDB/HDF5 (which carry their rate) it is optional
    and, when given, must agree with the file. `index` picks the tracing of an HDF5 file.
    `verify_checksums=False` reads a WFDB record whose header checksums do not match its data.
    """
    path = Path(path)
    if "\x00" in str(path):
        raise UnreadableRecordError(repr(str(path)), "file name contains a NUL byte")
    suffix = path.suffix.lower()
    if _is_wfdb(path):
        kind = "wfdb"
    elif suffix in {".npy", ".csv", ".h5", ".hdf5"}:
        kind = suffix
    elif not _present(path):
        raise UnreadableRecordError(path, "no such file (nor a WFDB record with a .hea beside it)")
    else:
        raise UnknownFormatError(
            path, "unknown ECG format (supported: WFDB .hea/.dat, .npy, .csv, .h5/.hdf5)"
        )
    if kind in {".npy", ".csv"}:
        reader = read_npy if kind == ".npy" else read_csv
        return reader(path, sample_rate, filters=filters)
    if kind == "wfdb":
        if sample_rate is not None:
            _check_rate_agrees(_wfdb_rate(path), sample_rate, path)
        return read_wfdb(path, filters=filters, verify_checksums=verify_checksums)
    if sample_rate is not None:
        _check_rate_agrees(CODE15_SAMPLE_RATE_HZ, sample_rate, path)
    if index is None:
        handle, tracings = _open_tracings(path)
        with handle:
            n = tracings.shape[0]
        if n != 1:
            raise RecordIndexError(path, f"holds {n} tracings; pass index= to pick one"
                                   if n else "holds no tracings")
        index = 0
    return read_code15(path, index, filters=filters)


def _wfdb_rate(path: Path) -> float:
    from qheart.data.wfdb_header import read_header

    base = _record_base(path)
    return read_header(base.with_name(base.name + ".hea")).fs


def _check_rate_agrees(file_rate: float, given: float, source: Path) -> None:
    rate = check_sample_rate(given, source)
    if not math.isclose(float(file_rate), rate):
        raise SampleRateError(
            source, f"sample_rate={given} Hz given, but the file says {file_rate:g} Hz"
        )

