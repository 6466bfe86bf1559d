"""The canonical ECG form every stage of qheart consumes, and lead-name matching.

Canonical: float32 array (12, 5000), millivolts, 500 Hz, 10 s, leads in the order below.
"""

from __future__ import annotations

import re

LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)  # fmt: skip
N_LEADS = len(LEADS)
SAMPLE_RATE_HZ = 500
DURATION_S = 10.0
N_SAMPLES = int(SAMPLE_RATE_HZ * DURATION_S)
MIN_DURATION_S = 2.0
"""Records shorter than this carry too few beats to answer anything; readers reject them."""

# Spellings seen in the published corpora, all mapped to the canonical names.
# CODE-15 uses DI/DII/DIII; PTB-XL upper-cases the augmented leads; PTB Diagnostic lower-cases all.
_ALIASES: dict[str, str] = {"di": "I", "dii": "II", "diii": "III"}
_BY_KEY: dict[str, str] = {name.lower(): name for name in LEADS} | _ALIASES


def canonical_lead_name(name: str) -> str | None:
    """Map a lead name as written in a file to its canonical spelling, or None if not a standard lead."""
    return _BY_KEY.get(name.strip().lower())


_LEAD_WORD = re.compile(r"\bleads?\b", re.IGNORECASE)


def is_lead_specific(question: str) -> bool:
    """True for a question about one lead or about which leads ("… in lead V1?", "What leads
    …?"): the questions the lead-positional skip exists for (paper §3, Table 4)."""
    return _LEAD_WORD.search(question) is not None
