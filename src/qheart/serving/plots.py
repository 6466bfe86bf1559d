"""Server-rendered 12-lead figures (paper grid) as PNG bytes for the page.

matplotlib's pyplot state is process-global, so figures are drawn one at a time under a lock;
the file `plot_ecg` writes lives only in a temporary folder.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import numpy as np

_LOCK = threading.Lock()
WEB_DPI = 100
"""About 1000 px wide: sharp enough to read the grid on a screen, quick to draw."""


def render_png(signal: np.ndarray, *, title: str = "", subtitle: str = "", dpi: int = WEB_DPI) -> bytes:
    """A canonical (12, 5000) mV ECG drawn by `qheart.data.plot.plot_ecg`, as PNG bytes."""
    from qheart.data.plot import plot_ecg, wrap

    with _LOCK, tempfile.TemporaryDirectory(prefix="qheart-plot-") as tmp:
        out = plot_ecg(signal, Path(tmp) / "ecg.png", title=wrap(title, 120),
                       subtitle=wrap(subtitle, 120), dpi=dpi)
        return out.read_bytes()
