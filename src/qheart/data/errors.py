"""Typed errors for bad ECG input. Every message names the file (or record) and the problem.

Every way an input can be wrong maps to one of these, so a caller (the CLI, `prepare`, the HTTP
service) can catch `ECGError` alone and show one line; an HTTP front end can map the type to a
status code (`InputTooLargeError` → 413, the others → 422).
"""

from __future__ import annotations

from pathlib import Path


class ECGError(ValueError):
    """Base class: an ECG input that cannot be turned into the canonical array."""

    def __init__(self, source: str | Path, problem: str) -> None:
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")

    def __reduce__(self):  # rebuild from (source, problem) when sent between processes
        return (type(self), (self.source, self.problem))


class UnreadableRecordError(ECGError):
    """The file is missing, not a regular file, truncated, corrupt (checksum mismatch), of the
    wrong kind (e.g. a .npz named .npy) or its header cannot be parsed or is inconsistent."""


class InputTooLargeError(UnreadableRecordError):
    """The file or array is over a documented size limit, so it is refused before it is read."""


class UnknownFormatError(ECGError):
    """The file extension or content matches none of the supported formats."""


class MissingLeadsError(ECGError):
    """One or more of the 12 standard leads is absent."""


class TooShortError(ECGError):
    """Less signal than the minimum duration (2 s)."""


class NonFiniteSignalError(ECGError):
    """The signal contains NaN or infinite samples."""


class FlatLeadError(ECGError):
    """A lead is constant over the whole record (disconnected electrode)."""


class SampleRateError(ECGError):
    """The sampling rate is missing, non-positive or implausible."""


class AmplitudeError(ECGError):
    """Amplitudes no ECG in millivolts has: raw ADC counts (gain not applied), microvolts or
    volts passed as millivolts."""


class RecordIndexError(ECGError, IndexError):
    """A file holding several tracings was read without `index=`, or with one out of range.
    Also an IndexError, the type an out-of-range index has always raised."""
