"""A strict reading of WFDB headers (`.hea`), done before wfdb is trusted with a record.

wfdb's own header grammar matches fields by optional regular-expression groups and fills what it
cannot match with defaults: a sampling rate of `-500`, `nan` or `abc` silently becomes 250 Hz,
`1e9` becomes 1 Hz, an ADC gain of 0 becomes 200/mV. Each would give a confidently wrong ECG.
Here every field qheart relies on is parsed token by token and refused when it is not exactly a
number of the right kind; wfdb then decodes the samples, and `readers` cross-checks that wfdb
understood the same rate, length and gains.

Grammar (WFDB "header" spec, single-segment records):
    record line:  NAME N_SIG FS[/COUNTER[(BASE)]] [SIG_LEN [BASE_TIME [BASE_DATE]]]
    signal lines: FILE FMT[xSPF][:SKEW][+OFFSET] GAIN[(BASELINE)][/UNITS] [ADC_RES [ADC_ZERO
                  [INIT_VALUE [CHECKSUM [BLOCK_SIZE [DESCRIPTION]]]]]]
Unlike the WFDB defaults, FS, SIG_LEN and GAIN are required (no guessed 250 Hz or uncalibrated
200/mV; wfdb cannot read a record without SIG_LEN anyway),
data files must be plain names in the header's folder, and the signal lines must number N_SIG.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from qheart.data.errors import SampleRateError, UnreadableRecordError
from qheart.data.input_files import MAX_HEADER_BYTES, check_regular_file, open_regular_file
from qheart.data.signal import check_sample_rate

BYTES_PER_SAMPLE: dict[str, float] = {
    "8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5, "310": 4 / 3,
    "311": 4 / 3,
}  # fmt: skip
"""Bytes per sample of the uncompressed WFDB storage formats (WFDB spec, "signal files")."""
FLAC_FORMATS = frozenset({"508", "516", "524"})
"""Compressed formats wfdb decodes: their size says nothing about their length."""

_NAME = re.compile(r"[-\w]+(?:\.\w+)?")
_FORMAT = re.compile(r"(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::(?P<skew>\d+))?(?:\+(?P<offset>\d+))?")
# The gain as wfdb's own pattern can read it (lower-case exponent only), then baseline and units.
_GAIN = re.compile(
    r"(?P<gain>-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)(?:\((?P<baseline>-?\d+)\))?(?:/(?P<units>\S+))?"
)


@dataclass(frozen=True)
class SignalSpec:
    """One signal line, with the fields the readers use."""

    file_name: str
    fmt: str
    samps_per_frame: int
    skew: int
    byte_offset: int
    gain: float
    units: str
    checksum: int | None
    name: str


@dataclass(frozen=True)
class WfdbHeader:
    """A single-segment header whose rate, length and gains are known to be sane."""

    path: Path
    n_sig: int
    fs: float
    sig_len: int
    signals: tuple[SignalSpec, ...]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.signals]


def _unreadable(hea: Path, problem: str) -> UnreadableRecordError:
    return UnreadableRecordError(hea, f"unreadable header: {problem}")


def _parse_record_line(line: str, hea: Path) -> tuple[int, float, int]:
    tokens = line.split()
    if "/" in tokens[0]:
        raise _unreadable(hea, "multi-segment WFDB records are not supported")
    if len(tokens) < 2 or not tokens[1].isdigit():
        raise _unreadable(hea, f"record line {line!r}: the signal count is not a whole number")
    n_sig = int(tokens[1])
    if n_sig < 1:
        raise _unreadable(hea, "the record has no signals")
    if len(tokens) < 3:
        # SampleRateError, not a guess: WFDB's default would be 250 Hz.
        check_sample_rate(None, hea)
    fs_text = tokens[2].split("/", 1)[0]  # FS[/COUNTER_FREQ[(BASE_COUNTER)]]
    fs = check_sample_rate(fs_text, hea)  # "-500", "nan", "abc", "1e9": SampleRateError
    if not re.fullmatch(r"\d+\.?\d*|\.\d+", fs_text):  # e.g. "1e3": wfdb would read 1 Hz
        raise SampleRateError(hea, f"sample rate {fs_text!r} is not written as WFDB headers "
                                   "write it (plain digits, e.g. 500 or 500.0)")
    if len(tokens) < 4:  # WFDB allows it; wfdb 4.3 then fails on any read, with a TypeError
        raise _unreadable(hea, "no signal length on the record line")
    if not tokens[3].isdigit():
        raise _unreadable(hea, f"signal length {tokens[3]!r} is not a whole number")
    return n_sig, fs, int(tokens[3])


def _parse_signal_line(line: str, number: int, hea: Path) -> SignalSpec:
    from wfdb.io.header import rx_signal  # wfdb's own split of the trailing fields and name

    where = f"signal {number}"
    tokens = line.split()
    if len(tokens) < 2:
        raise _unreadable(hea, f"{where}: no storage format in {line!r}")
    if not _NAME.fullmatch(tokens[0]):
        raise _unreadable(hea, f"{where}: data file {tokens[0]!r} is not a plain file name in the "
                               "header's folder")
    fmt = _FORMAT.fullmatch(tokens[1])
    if fmt is None or (fmt["fmt"] not in BYTES_PER_SAMPLE and fmt["fmt"] not in FLAC_FORMATS):
        raise _unreadable(hea, f"{where}: unsupported WFDB storage format {tokens[1]!r}")
    if len(tokens) < 3:
        raise _unreadable(hea, f"{where}: no ADC gain (an uncalibrated signal; WFDB would assume "
                               "200 units/mV)")
    gain = _GAIN.fullmatch(tokens[2])
    if gain is None:
        raise _unreadable(hea, f"{where}: ADC gain {tokens[2]!r} is not a number")
    value = float(gain["gain"])
    if value == 0 or not math.isfinite(value):
        raise _unreadable(hea, f"{where}: ADC gain {gain['gain']} (must be non-zero and finite)")
    fields = rx_signal.match(line)
    if fields is None or fields["file_name"] != tokens[0]:
        raise _unreadable(hea, f"{where}: line {line!r} not understood")
    checksum = fields["checksum"]
    return SignalSpec(
        file_name=tokens[0],
        fmt=fmt["fmt"],
        samps_per_frame=int(fmt["spf"] or 1),
        skew=int(fmt["skew"] or 0),
        byte_offset=int(fmt["offset"] or 0),
        gain=value,
        units=gain["units"] or "mV",  # WFDB's default unit
        checksum=int(checksum) if checksum not in (None, "") else None,
        name=fields["sig_name"] or "",
    )


def parse_header(text: str, hea: Path) -> WfdbHeader:
    """Header text → WfdbHeader, or the typed error naming the field that is wrong."""
    from wfdb.io.header import parse_header_content  # the same line/comment split as wfdb

    lines, _ = parse_header_content(text)
    if not lines:
        raise _unreadable(hea, "no record line (empty or only comments)")
    n_sig, fs, sig_len = _parse_record_line(lines[0], hea)
    if len(lines) - 1 != n_sig:
        raise _unreadable(hea, f"the record line announces {n_sig} signal(s) but "
                               f"{len(lines) - 1} signal line(s) follow")
    signals = tuple(_parse_signal_line(line, i + 1, hea) for i, line in enumerate(lines[1:]))
    return WfdbHeader(path=hea, n_sig=n_sig, fs=fs, sig_len=sig_len, signals=signals)


def read_header(hea: Path) -> WfdbHeader:
    """Check the file (regular, ≤ MAX_HEADER_BYTES), read it as wfdb does (ASCII, other bytes
    dropped) and parse it strictly."""
    with open_regular_file(hea, max_bytes=MAX_HEADER_BYTES, what="WFDB header") as fh:
        raw = fh.read(MAX_HEADER_BYTES + 1)
    if b"\x00" in raw:
        raise _unreadable(hea, "binary content (NUL bytes), not a text header")
    return parse_header(raw.decode("ascii", errors="ignore"), hea)


def _frame_bytes(header: WfdbHeader, channels: list[int]) -> float:
    return sum(BYTES_PER_SAMPLE[header.signals[i].fmt] * header.signals[i].samps_per_frame
               for i in channels)


def check_data_files(header: WfdbHeader, folder: Path) -> None:
    """Every data file present is a regular file of exactly the size the header describes.
    Absent files are left to `require_data_files`: a file holding only leads that are dropped
    (PTB's .xyz) may be absent.

    Checked before the leads are mapped: a truncated file or a header listing more or fewer
    signals than the file holds is the real fault, and is named as such (wfdb itself only says
    "Samples were not loaded correctly" or reads garbage).
    """
    by_file: dict[str, list[int]] = {}
    for i, spec in enumerate(header.signals):
        by_file.setdefault(spec.file_name, []).append(i)
    for file_name, channels in sorted(by_file.items()):
        path = folder / file_name
        if not path.exists() and not path.is_symlink():
            continue
        st = check_regular_file(path, what="WFDB data file")
        formats = {header.signals[c].fmt for c in channels}
        if not formats <= BYTES_PER_SAMPLE.keys():
            if len(formats) > 1:
                raise UnreadableRecordError(header.path, f"data file {file_name} mixes compressed "
                                                         "(FLAC) and other formats")
            continue  # compressed: the size says nothing; wfdb's decoder checks the stream
        offset = header.signals[channels[0]].byte_offset
        expected = offset + math.ceil(header.sig_len * _frame_bytes(header, channels))
        if st.st_size != expected:
            kind = "truncated" if st.st_size < expected else "longer than the header describes"
            raise UnreadableRecordError(
                path,
                f"{kind}: {st.st_size} bytes, but the header's {len(channels)} signal(s) × "
                f"{header.sig_len} samples need {expected} (truncated file or header/lead-count "
                "mismatch)",
            )


def require_data_files(header: WfdbHeader, folder: Path, channels: list[int]) -> None:
    """The files holding `channels` exist (their sizes were checked by `check_data_files`)."""
    for file_name in sorted({header.signals[c].file_name for c in channels}):
        path = folder / file_name
        if not path.exists() and not path.is_symlink():
            raise UnreadableRecordError(path, "data file missing")
