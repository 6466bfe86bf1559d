"""Typed errors for bad ECG input. Every message names the file (or record) and the problem."""

from __future__ import annotations

from pathlib import Path


class ECGError(ValueError):
    """Base class: an ECG input that cannot be turned into the canonical array."""

    def __init__(self, source: str | Path, problem: str) -> None:
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class UnreadableRecordError(ECGError):
    """The file is missing, truncated, corrupt or its header cannot be parsed."""


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
