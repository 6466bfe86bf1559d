"""A small PTB-XL-layout label folder (ptbxl_database.csv + scp_statements.csv), made in code.

Only the label tables: the yardstick reads labels, never signals. Each record's labels are
chosen to exercise one rule of the yardstick's label table; `TRUTH` says what each is.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qheart.evaluation.yardstick import EXTRA_BEAT_FINDINGS, SCP_FINDINGS

from ..data.corpus_fixtures import PTBXL_COLUMNS, ptbxl_row

RHYTHM_CODES = ("SR", "AFIB", "AFLT", "SBRAD", "STACH", "SARRH", "PACE")

SR = "'SR': 0.0"
# ecg_id → scp_codes dict body; records not listed are normal sinus rhythm.
SCP: dict[int, str] = {
    21: "'AFIB': 0.0", 22: "'AFIB': 0.0", 23: "'AFIB': 0.0", 24: "'AFIB': 0.0",
    25: "'AFLT': 0.0", 26: "'AFLT': 0.0",
    27: "'SBRAD': 0.0",  # sinus bradycardia without SR: neither yes nor no for sinus rhythm
    28: "'NORM': 100.0",  # no rhythm statement: left out of every rhythm question
    29: f"'IMI': 15.0, {SR}",  # graded below the threshold: uncertain inferior MI
    30: f"'IMI': 100.0, {SR}", 31: f"'IMI': 50.0, {SR}",
    32: f"'ILMI': 80.0, {SR}",  # inferolateral: overlaps "inferior", neither yes nor no
    33: f"'CRBBB': 100.0, {SR}", 34: f"'IRBBB': 100.0, {SR}",
    10: f"'PVC': 0.0, {SR}",  # premature complex coded, extra_beats empty
}  # fmt: skip
NOISE: dict[int, dict[str, str]] = {
    1: {"baseline_drift": ", I-AVR,"},
    2: {"static_noise": " , alles,  "},
    3: {"burst_noise": "V5"},
    4: {"electrodes_problems": "V1,V2"},
    5: {"static_noise": " , II-AVF,V5,V6"},
    6: {"static_noise": "stark verrauscht"},  # noise present, leads not stated
}
EXTRA_BEATS: dict[int, str] = {7: "VES", 8: "SVES", 9: "1ES"}
N_RECORDS = 40


def scp_statements() -> pd.DataFrame:
    """Every code the label table names (plus NORM), rhythm codes flagged as PTB-XL does."""
    codes = {"NORM", *RHYTHM_CODES}
    for finding in SCP_FINDINGS:
        codes.update((*finding.codes, *finding.ambiguous))
    for extra in EXTRA_BEAT_FINDINGS:
        codes.update(extra.ambiguous_codes)
    rows = [{"code": c, "description": c.lower(), "diagnostic": None, "form": None,
             "rhythm": 1.0 if c in RHYTHM_CODES else None} for c in sorted(codes)]  # fmt: skip
    return pd.DataFrame(rows).set_index("code").rename_axis(None)


def write_ptbxl_labels(root: str | Path, n_records: int = N_RECORDS) -> pd.DataFrame:
    """ptbxl_database.csv (PTB-XL's columns) and scp_statements.csv under `root`; the rows."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for ecg_id in range(1, n_records + 1):
        row = ptbxl_row(ecg_id)
        row["scp_codes"] = "{" + SCP.get(ecg_id, f"'NORM': 100.0, {SR}") + "}"
        for column in ("baseline_drift", "static_noise", "burst_noise", "electrodes_problems"):
            row[column] = NOISE.get(ecg_id, {}).get(column)
        row["extra_beats"] = EXTRA_BEATS.get(ecg_id)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(PTBXL_COLUMNS))
    frame.to_csv(root / "ptbxl_database.csv", index=False)
    scp_statements().to_csv(root / "scp_statements.csv")
    return frame
