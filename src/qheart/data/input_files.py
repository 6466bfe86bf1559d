"""The checks every input file passes before a reader trusts it: a regular file, not empty, and
under the documented size limit for what will be read from it.

Why before opening: a FIFO named `.csv` blocks the reader forever, a device never ends, a
directory or a socket is not an ECG, a symlink loop fails deep inside a library with its own
exception type, and a sparse 2 GB file (made with `truncate`) costs nothing to create but a lot
to parse. `open_regular_file` opens with O_NONBLOCK and checks the opened descriptor (fstat), so
a file swapped for a FIFO between check and open cannot block either; paths handed to libraries
that open files themselves (wfdb, h5py) get the same checks by `stat`.

Size limits (st_size, so a sparse file counts at its full apparent size):
- `.hea` WFDB headers: MAX_HEADER_BYTES (1 MiB; real headers are under 2 KiB).
- `.csv`: MAX_CSV_BYTES (128 MiB; 10 s of 12 leads at 500 Hz is about 0.6 MB as text).
- `.npy`: MAX_NPY_BYTES (1 GiB; only the first 12 s are read, through a memory map).
- WFDB data files and HDF5 files have no file limit: only the window that is used is read
  (first 12 s of a record, one tracing of an HDF5 file, itself capped; see `readers`).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from qheart.data.errors import InputTooLargeError, UnreadableRecordError

MAX_HEADER_BYTES = 1 << 20
MAX_CSV_BYTES = 128 << 20
MAX_NPY_BYTES = 1 << 30

_OS_PROBLEMS: dict[int, str] = {
    errno.ENOENT: "no such file",
    errno.ELOOP: "symbolic link loop (or too many levels of links)",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a folder in the path is not a folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.ENXIO: "not a readable file (a socket or a device without a driver)",
    errno.EISDIR: "is a folder, not a file",
}


def human_bytes(n: int) -> str:
    """1536 → '1.5 KiB'; the exact count follows in parentheses where it matters."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def os_problem(path: str | Path, exc: OSError) -> UnreadableRecordError:
    """An OSError met while opening/stat-ing an input, as the typed error naming the file."""
    problem = _OS_PROBLEMS.get(exc.errno or -1, exc.strerror or str(exc))
    return UnreadableRecordError(path, problem)


def check_stat(path: str | Path, st: os.stat_result, *, max_bytes: int | None,
               what: str = "file") -> None:
    """Raise unless `st` describes a non-empty regular file of at most `max_bytes`."""
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise UnreadableRecordError(path, "is a folder, not a file")
    if stat.S_ISFIFO(mode):
        raise UnreadableRecordError(path, "is a FIFO (named pipe), not a regular file; reading "
                                          "it could block forever")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise UnreadableRecordError(path, "is a device, not a regular file")
    if stat.S_ISSOCK(mode):
        raise UnreadableRecordError(path, "is a socket, not a regular file")
    if not stat.S_ISREG(mode):
        raise UnreadableRecordError(path, "not a regular file")
    if st.st_size == 0:
        raise UnreadableRecordError(path, "empty file (0 bytes)")
    if max_bytes is not None and st.st_size > max_bytes:
        raise InputTooLargeError(
            path, f"{human_bytes(st.st_size)} ({st.st_size} bytes), over the "
                  f"{human_bytes(max_bytes)} limit for a {what}; refused before reading")


def check_regular_file(path: str | Path, *, max_bytes: int | None = None,
                       what: str = "file") -> os.stat_result:
    """stat (following links) and `check_stat`; for files a library will open by path."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise os_problem(path, exc) from None
    except ValueError:  # an embedded NUL byte
        raise UnreadableRecordError(repr(str(path)), "file name contains a NUL byte") from None
    check_stat(path, st, max_bytes=max_bytes, what=what)
    return st


def open_regular_file(path: str | Path, *, max_bytes: int | None,
                      what: str = "file") -> BinaryIO:
    """Open for binary reading, refusing (without blocking) anything `check_stat` refuses."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise os_problem(path, exc) from None
    except ValueError:  # an embedded NUL byte
        raise UnreadableRecordError(repr(str(path)), "file name contains a NUL byte") from None
    try:
        check_stat(path, os.fstat(fd), max_bytes=max_bytes, what=what)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
