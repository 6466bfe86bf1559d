"""ECG readers: every supported file format → the canonical (12, 5000) float32 mV array at 500 Hz.

Every reader only gets the samples, the lead names, the rate and the unit out of its format, then
hands them to `to_canonical`, the one shared path that maps lead names, validates, resamples,
filters and crops/pads (policy in `qheart.data.signal`). Bad input raises a typed
`qheart.data.errors.ECGError` whose message names the file and the problem.

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
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qheart.data.errors import (
    ECGError,
    MissingLeadsError,
    SampleRateError,
    UnknownFormatError,
    UnreadableRecordError,
)
from qheart.data.leads import LEADS, N_SAMPLES, SAMPLE_RATE_HZ, canonical_lead_name
from qheart.data.signal import FilterConfig, apply_filters, crop_or_pad, resample, validate

MIN_SAMPLE_RATE_HZ = 50.0
"""Below this the QRS complex (10–40 Hz content) is not represented; PTB-XL's 100 Hz still is."""
MAX_SAMPLE_RATE_HZ = 20_000.0

CODE15_LEADS: tuple[str, ...] = (
    "DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6",
)  # fmt: skip
CODE15_SAMPLE_RATE_HZ = 400.0

Filters = FilterConfig | str | None

# Units a WFDB header may give, as the factor to millivolts. wfdb defaults a missing unit to "mV".
_TO_MV: dict[str, float] = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nv": 1e-6}

# Bytes per sample of the WFDB storage formats (WFDB spec, "signal files"). Hand-written so that a
# truncated file or a header listing more or fewer signals than the file holds is caught up front
# with a clear message; wfdb itself only says "Samples were not loaded correctly" or reads garbage.
_WFDB_BYTES_PER_SAMPLE: dict[str, float] = {
    "8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5, "310": 4 / 3,
    "311": 4 / 3,
}  # fmt: skip


def _filter_config(filters: Filters) -> FilterConfig:
    if filters is None:
        return FilterConfig()
    if isinstance(filters, str):
        return FilterConfig.from_name(filters)
    return filters


def _check_sample_rate(sample_rate: float | None, source: str | Path) -> float:
    if sample_rate is None:
        raise SampleRateError(source, "sample rate missing: pass sample_rate= (Hz)")
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError) as exc:
        raise SampleRateError(source, f"sample rate {sample_rate!r} is not a number") from exc
    if not math.isfinite(rate) or not MIN_SAMPLE_RATE_HZ <= rate <= MAX_SAMPLE_RATE_HZ:
        raise SampleRateError(
            source,
            f"sample rate {sample_rate!r} Hz outside the plausible range "
            f"{MIN_SAMPLE_RATE_HZ:g}–{MAX_SAMPLE_RATE_HZ:g} Hz",
        )
    return rate


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
        raise MissingLeadsError(
            source, f"missing lead(s) {', '.join(missing)} (has: {', '.join(map(str, names))})"
        )
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

    Steps: map lead names to canonical order (extra leads dropped), validate the record as given
    (non-finite, < 2 s, flat lead), resample to 500 Hz, optional filters, crop/pad to 10 s, then
    check again that no lead is flat within the kept 10 s.
    """
    rate = _check_sample_rate(sample_rate, source)
    x = np.asarray(signal)
    if x.ndim != 2 or x.shape[0] != len(leads):
        raise UnreadableRecordError(
            source, f"signal shape {x.shape} does not match {len(leads)} lead names"
        )
    x = x[lead_indices(leads, source)].astype(np.float64, copy=False)  # (12, n)
    validate(x, source, sample_rate=rate)
    x = resample(x, rate, SAMPLE_RATE_HZ)  # (12, n·500/rate)
    config = _filter_config(filters)
    if not config.is_identity:
        x = apply_filters(x, SAMPLE_RATE_HZ, config)
    out = crop_or_pad(x, N_SAMPLES).astype(np.float32)  # (12, 5000)
    validate(out, source, sample_rate=SAMPLE_RATE_HZ)
    return out


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


def _check_data_files(header, base: Path) -> None:
    """Compare each present data file's size with what the header says it holds."""
    for file_name in sorted(set(header.file_name)):
        in_file = [i for i, f in enumerate(header.file_name) if f == file_name]
        path = base.parent / file_name
        formats = {header.fmt[i] for i in in_file}
        if not path.is_file() or header.sig_len is None:
            continue  # missing files: `_require_data_files`; no length: wfdb infers it
        if not formats <= _WFDB_BYTES_PER_SAMPLE.keys():
            continue  # compressed (FLAC) formats: wfdb's own checks apply
        spf = header.samps_per_frame or [1] * header.n_sig
        frame_bytes = sum(_WFDB_BYTES_PER_SAMPLE[header.fmt[i]] * (spf[i] or 1) for i in in_file)
        offset = (header.byte_offset or [0] * header.n_sig)[in_file[0]] or 0
        expected = offset + math.ceil(header.sig_len * frame_bytes)
        actual = path.stat().st_size
        if actual != expected:
            kind = "truncated" if actual < expected else "longer than the header describes"
            raise UnreadableRecordError(
                path,
                f"{kind}: {actual} bytes, but the header's {len(in_file)} signal(s) × "
                f"{header.sig_len} samples need {expected} (truncated file or header/lead-count "
                "mismatch)",
            )


def _require_data_files(header, base: Path, channels: Sequence[int]) -> None:
    """The files holding the channels we read must exist (others, e.g. PTB's .xyz, may not)."""
    for file_name in sorted({header.file_name[c] for c in channels}):
        if not (base.parent / file_name).is_file():
            raise UnreadableRecordError(base.parent / file_name, "data file missing")


def _units_to_mv(units: Sequence[str | None], names: Sequence[str], source: Path) -> np.ndarray:
    factors = []
    for unit, name in zip(units, names, strict=True):
        key = (unit or "mV").strip().lower()
        if key not in _TO_MV:
            raise UnreadableRecordError(source, f"lead {name}: unknown unit {unit!r}")
        factors.append(_TO_MV[key])
    return np.asarray(factors)[:, None]  # (n_leads, 1)


def _check_header(header, hea: Path) -> list[str]:
    """Header fields every reading needs; returns the signal names."""
    import wfdb

    if isinstance(header, wfdb.MultiRecord):
        raise UnreadableRecordError(hea, "multi-segment WFDB records are not supported")
    names = list(header.sig_name or [])
    if not header.n_sig or len(names) != header.n_sig:
        raise UnreadableRecordError(hea, f"header lists {header.n_sig} signals but names {names}")
    _check_sample_rate(header.fs, hea)
    return names


def _read_wfdb_whole(base: Path, hea: Path) -> tuple[np.ndarray, list[str], list, float]:
    """Fast path: one rdrecord call (wfdb's header parsing is most of the cost of a read)."""
    import wfdb

    record = _call_wfdb(wfdb.rdrecord, base, "unreadable signal", str(base), m2s=False)
    names = _check_header(record, hea)
    _check_data_files(record, base)  # a file longer than its header: wfdb reads it silently
    channels = lead_indices(names, hea)
    signal = record.p_signal[:, channels].T  # (12, n) in header units
    return signal, [names[c] for c in channels], [record.units[c] for c in channels], record.fs


def _read_wfdb_carefully(base: Path, hea: Path) -> tuple[np.ndarray, list[str], list, float]:
    """Slow path after the fast one failed: check header and files one by one to name the fault,
    and read only the 12 leads (a record may lack the file of leads we drop, e.g. PTB's .xyz)."""
    import wfdb

    header = _call_wfdb(wfdb.rdheader, hea, "unreadable header", str(base))
    names = _check_header(header, hea)
    _check_data_files(header, base)  # before lead mapping: a miscounted header is the real fault
    channels = lead_indices(names, hea)  # canonical order; extra leads never read
    _require_data_files(header, base, channels)
    record = _call_wfdb(
        wfdb.rdrecord, base, "unreadable signal", str(base), channels=channels, m2s=False
    )
    if record.p_signal is None or record.p_signal.shape[1] != len(channels):
        raise UnreadableRecordError(base, "wfdb returned no signal for the requested leads")
    return record.p_signal.T, [names[c] for c in channels], list(record.units or []), record.fs


def read_wfdb(record_path: str | Path, *, filters: Filters = None) -> np.ndarray:
    """A WFDB record (path with or without `.hea`/`.dat`) → canonical float32 (12, 5000) mV."""
    base = _record_base(record_path)
    hea = base.with_name(base.name + ".hea")
    if not hea.is_file():
        raise UnreadableRecordError(hea, "header file not found")
    try:
        signal, leads, units, fs = _read_wfdb_whole(base, hea)
    except UnreadableRecordError:
        signal, leads, units, fs = _read_wfdb_carefully(base, hea)  # raises the precise error
    units = units or [None] * len(leads)
    signal = signal * _units_to_mv(units, leads, hea)  # (12, n) mV
    return to_canonical(signal, leads, fs, base, filters=filters)


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


def _open_tracings(h5_path: Path):
    import h5py  # local: keeps `import qheart.data.readers` light

    try:
        handle = h5py.File(h5_path, "r")
    except (OSError, FileNotFoundError) as exc:
        raise UnreadableRecordError(h5_path, f"cannot open HDF5 file: {exc}") from exc
    if "tracings" not in handle:
        handle.close()
        raise UnreadableRecordError(h5_path, "no 'tracings' dataset (CODE-15 layout expected)")
    tracings = handle["tracings"]
    if tracings.ndim != 3 or tracings.shape[2] != len(CODE15_LEADS):
        handle.close()
        raise UnreadableRecordError(
            h5_path, f"'tracings' has shape {tracings.shape}, expected (N, n_samples, 12)"
        )
    return handle, tracings


def read_code15(
    h5_path: str | Path, index: int, *, scale_to_mv: float = 1.0, filters: Filters = None
) -> np.ndarray:
    """Tracing `index` of a CODE-15-style HDF5 file → canonical float32 (12, 5000) mV."""
    path = Path(h5_path)
    handle, tracings = _open_tracings(path)
    with handle:
        n = tracings.shape[0]
        if not -n <= index < n:
            raise IndexError(f"{path}: index {index} out of range for {n} tracings")
        tracing = tracings[index]  # (4096, 12)
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
    """Stream tracings [start, stop) of a CODE-15 file, `block` rows per HDF5 read.

    A bad tracing is yielded with its error instead of stopping the stream, so a caller can skip
    it with the reason; only an unreadable file raises. `exam_id` comes from the file's `exam_id`
    dataset when present (CODE-15 stores one per row).
    """
    path = Path(h5_path)
    handle, tracings = _open_tracings(path)
    with handle:
        n = tracings.shape[0]
        stop = n if stop is None else min(stop, n)
        exam_ids = handle.get("exam_id")
        for lo in range(start, stop, block):
            hi = min(lo + block, stop)
            chunk = tracings[lo:hi]  # (b, 4096, 12)
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


def read_npy(path: str | Path, sample_rate: float | None, *, filters: Filters = None) -> np.ndarray:
    """A .npy array (12, N) or (N, 12), canonical lead order, mV → canonical (12, 5000)."""
    path = Path(path)
    rate = _check_sample_rate(sample_rate, path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UnreadableRecordError(path, f"cannot load .npy: {exc}") from exc
    if array.ndim != 2 or len(LEADS) not in array.shape:
        raise UnreadableRecordError(path, f"array shape {array.shape}: expected (12, N) or (N, 12)")
    if not np.issubdtype(array.dtype, np.number):
        raise UnreadableRecordError(path, f"array dtype {array.dtype} is not numeric")
    signal = array if array.shape[0] == len(LEADS) else array.T  # (12, N)
    return to_canonical(signal, LEADS, rate, path, filters=filters)


def read_csv(path: str | Path, sample_rate: float | None, *, filters: Filters = None) -> np.ndarray:
    """A CSV with one column per lead (named; any case/alias), mV → canonical (12, 5000)."""
    import pandas as pd  # local: keeps `import qheart.data.readers` light

    path = Path(path)
    rate = _check_sample_rate(sample_rate, path)
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise UnreadableRecordError(path, f"cannot parse CSV: {exc}") from exc
    names = [str(c) for c in frame.columns]
    columns = lead_indices(names, path)
    picked = frame.iloc[:, columns]
    try:
        signal = picked.to_numpy(dtype=np.float64).T  # (12, N)
    except (TypeError, ValueError) as exc:
        raise UnreadableRecordError(path, f"non-numeric values in lead columns: {exc}") from exc
    return to_canonical(signal, LEADS, rate, path, filters=filters)


# ------------------------------------------------------------------------------------ dispatch


def _is_wfdb(path: Path) -> bool:
    if path.suffix.lower() in {".hea", ".dat"}:
        return True
    return path.with_name(path.name + ".hea").is_file()


def read_ecg(
    path: str | Path,
    *,
    sample_rate: float | None = None,
    filters: Filters = None,
    index: int | None = None,
) -> np.ndarray:
    """Any supported ECG file → canonical float32 (12, 5000) mV, dispatching on the extension.

    `sample_rate` is required for .npy/.csv; for WFDB/HDF5 (which carry their rate) it is optional
    and, when given, must agree with the file. `index` picks the tracing of an HDF5 file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if _is_wfdb(path):
        kind = "wfdb"
    elif suffix in {".npy", ".csv", ".h5", ".hdf5"}:
        kind = suffix
    elif not path.exists():
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
        return read_wfdb(path, filters=filters)
    if sample_rate is not None:
        _check_rate_agrees(CODE15_SAMPLE_RATE_HZ, sample_rate, path)
    if index is None:
        handle, tracings = _open_tracings(path)
        with handle:
            n = tracings.shape[0]
        if n != 1:
            raise ValueError(f"{path}: holds {n} tracings; pass index= to pick one")
        index = 0
    return read_code15(path, index, filters=filters)


def _wfdb_rate(path: Path) -> float:
    import wfdb

    base = _record_base(path)
    hea = base.with_name(base.name + ".hea")
    return _call_wfdb(wfdb.rdheader, hea, "unreadable header", str(base)).fs


def _check_rate_agrees(file_rate: float, given: float, source: Path) -> None:
    if not math.isclose(float(file_rate), float(given)):
        raise SampleRateError(
            source, f"sample_rate={given} Hz given, but the file says {file_rate} Hz"
        )
