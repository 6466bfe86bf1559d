"""A 12-lead ECG drawn the way it is printed on paper, so a person can look at it.

Standard layout: 3 rows × 4 columns of 2.5 s (I II III | aVR aVL aVF | V1 V2 V3 | V4 V5 V6),
then a 10 s rhythm strip of lead II; 25 mm/s and 10 mm/mV on a pink millimetre grid (5 mm bold),
a 1 mV calibration pulse at the start of each row, lead labels, and a title (e.g. the findings).
Everything is drawn in millimetres of paper, so the grid is the measuring scale.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from qheart.data.leads import LEADS, N_SAMPLES, SAMPLE_RATE_HZ

SPEED_MM_S = 25.0
GAIN_MM_MV = 10.0
ROW_MM = 32.0
"""Vertical distance between row baselines."""
LAYOUT: tuple[tuple[str, ...], ...] = (
    ("I", "aVR", "V1", "V4"),
    ("II", "aVL", "V2", "V5"),
    ("III", "aVF", "V3", "V6"),
)
RHYTHM_LEAD = "II"
CAL_MM = 5.0
"""Width of the calibration pulse (0.2 s), drawn before each row."""


def _grid(ax, width_mm: float, height_mm: float) -> None:
    minor = np.arange(0.0, width_mm + 0.01, 1.0)
    ax.vlines(minor, 0, height_mm, colors="#f6c6cf", linewidth=0.25, zorder=0)
    ax.hlines(np.arange(0.0, height_mm + 0.01, 1.0), 0, width_mm, colors="#f6c6cf",
              linewidth=0.25, zorder=0)  # fmt: skip
    ax.vlines(np.arange(0.0, width_mm + 0.01, 5.0), 0, height_mm, colors="#e8899b",
              linewidth=0.6, zorder=0)  # fmt: skip
    ax.hlines(np.arange(0.0, height_mm + 0.01, 5.0), 0, width_mm, colors="#e8899b",
              linewidth=0.6, zorder=0)  # fmt: skip


def _calibration(ax, x0: float, baseline: float) -> None:
    h = GAIN_MM_MV  # 1 mV
    xs = [x0, x0 + 1, x0 + 1, x0 + 4, x0 + 4, x0 + CAL_MM]
    ys = [baseline, baseline, baseline + h, baseline + h, baseline, baseline]
    ax.plot(xs, ys, color="black", linewidth=0.8)


def plot_ecg(
    signal: np.ndarray,
    out: str | Path,
    *,
    title: str = "",
    subtitle: str = "",
    sample_rate: float = SAMPLE_RATE_HZ,
    dpi: int = 150,
) -> Path:
    """Draw a canonical (12, 5000) mV ECG to `out` (PNG/PDF/SVG by extension)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    signal = np.asarray(signal, dtype=float)
    if signal.shape != (len(LEADS), N_SAMPLES):
        raise ValueError(f"expected a canonical ({len(LEADS)}, {N_SAMPLES}) ECG, got {signal.shape}")
    index = {name: i for i, name in enumerate(LEADS)}
    duration_s = signal.shape[1] / sample_rate
    col_s = duration_s / 4
    width = CAL_MM + duration_s * SPEED_MM_S + 2.0
    n_rows = len(LAYOUT) + 1
    height = ROW_MM * n_rows + 6.0
    header_in = 0.35 + 0.18 * (title.count("\n") + 1) + (0.16 * (subtitle.count("\n") + 1) if subtitle else 0)
    fig = plt.figure(figsize=(width / 25.4, height / 25.4 + header_in), dpi=dpi)
    ax = fig.add_axes((0.0, 0.0, 1.0, (height / 25.4) / (height / 25.4 + header_in)))
    _grid(ax, width, height)
    t_mm = np.arange(signal.shape[1]) / sample_rate * SPEED_MM_S
    per_col = round(col_s * sample_rate)
    for row, names in enumerate(LAYOUT):
        baseline = height - ROW_MM * (row + 0.6)
        _calibration(ax, 0.5, baseline)
        for col, name in enumerate(names):
            part = slice(col * per_col, (col + 1) * per_col)
            y = baseline + GAIN_MM_MV * signal[index[name], part]
            x = CAL_MM + 1.0 + t_mm[part]
            ax.plot(x, y, color="black", linewidth=0.6)
            ax.text(x[0] + 1.0, baseline + 7.0, name, fontsize=7, fontweight="bold")
            if col:
                ax.vlines(x[0], baseline - 3, baseline + 3, colors="black", linewidth=0.6)
    baseline = height - ROW_MM * (len(LAYOUT) + 0.6)
    _calibration(ax, 0.5, baseline)
    ax.plot(CAL_MM + 1.0 + t_mm, baseline + GAIN_MM_MV * signal[index[RHYTHM_LEAD]],
            color="black", linewidth=0.6)  # fmt: skip
    ax.text(CAL_MM + 2.0, baseline + 7.0, RHYTHM_LEAD, fontsize=7, fontweight="bold")
    ax.text(width - 2, 1.5, f"{SPEED_MM_S:g} mm/s   {GAIN_MM_MV:g} mm/mV", fontsize=6, ha="right")
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    header = title + (("\n" + subtitle) if subtitle else "")
    if header:
        fig.text(0.01, 1.0 - 0.1 / (height / 25.4 + header_in), header, fontsize=8, va="top",
                 family="monospace")  # fmt: skip
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def wrap(text: str, width: int = 150) -> str:
    """Wrap a long title to lines of `width` characters."""
    return "\n".join(textwrap.wrap(text, width)) if text else ""
