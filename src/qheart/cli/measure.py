"""`qheart measure`: conventional measurements of one ECG file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def measure(
    ecg: Annotated[Path, typer.Option("--ecg", help="ECG file qheart can read (WFDB .hea, .npy, "
                                      ".csv, .h5).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the measurements as JSON.")] = False,
    sample_rate: Annotated[float | None, typer.Option(
        "--sample-rate", help="Sampling rate of a .npy/.csv file (Hz).")] = None,
) -> None:
    """Heart rate, intervals, QTc, axis, per-lead ST/T and signal quality; n/a with a reason
    where a value cannot be trusted."""
    import json
    import math

    from rich.console import Console
    from rich.table import Table

    from qheart.data.errors import ECGError
    from qheart.data.readers import read_ecg
    from qheart.measurements import measure_ecg, measurement_text

    try:
        signal = read_ecg(ecg, sample_rate=sample_rate)
    except (ECGError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    m = measure_ecg(signal)
    if as_json:
        typer.echo(json.dumps({"ecg": str(ecg), "text": measurement_text(m), **m.to_dict()}))
        return
    console = Console(soft_wrap=True)
    console.print(measurement_text(m), highlight=False)
    for name, reason in m.reasons.items():
        console.print(f"  {name}: n/a ({reason})", highlight=False)
    table = Table(title=f"per lead ({m.n_beats_used} of {m.n_beats} beats in the median beat)")
    for column in ("lead", "quality", "ST (mV)", "T (mV)", "T", "note"):
        table.add_column(column)

    def mv(v: float) -> str:
        return "n/a" if math.isnan(v) else f"{v:+.2f}"

    for lead in m.leads:
        table.add_row(lead.lead, f"{lead.quality_label} {lead.quality:.2f}", mv(lead.st_mv),
                      mv(lead.t_mv), lead.t_polarity, lead.reason)  # fmt: skip
    console.print(table)
