"""The real-data yardstick (SPEC §6): PTB-XL's cardiologist labels as balanced yes/no questions.

A model trained on the synthetic benchmark has to carry over to real ECGs. Any folder in
PTB-XL's published layout (`ptbxl_database.csv` + `scp_statements.csv`, any number of rows)
becomes `single-verify` questions in ECG-QA's vocabulary and template wording, equal yes and no
per finding, each gold answer read from the labels through one table (`SCP_FINDINGS`,
`NOISE_FINDINGS`, `EXTRA_BEAT_FINDINGS`). `score_yardstick` reports accuracy per finding with
its count and an exact binomial 95% interval, against chance (0.5).

Real ECG-QA itself is evaluated where a user has it: `ecgqa_in_store` keeps the questions of an
ECG-QA folder whose ECG is in a prepared signal store.
"""

from __future__ import annotations

import math
import re
from collections.abc import Container, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qheart.data.corpora.ptbxl import DATABASE, NOISE_COLUMNS, parse_scp_codes
from qheart.data.ecgqa import QASample, QASplit, join_store, load_split
from qheart.data.leads import LEADS, canonical_lead_name
from qheart.data.options import answers_match
from qheart.data.synth.questions import TEMPLATES

__all__ = [
    "CHANCE",
    "EXTRA_BEAT_FINDINGS",
    "LIKELIHOOD_THRESHOLD",
    "NOISE_FINDINGS",
    "SCP_FINDINGS",
    "SCP_STATEMENTS",
    "ExtraBeatFinding",
    "FindingCount",
    "NoiseFinding",
    "ScpFinding",
    "Yardstick",
    "YardstickRow",
    "YardstickTable",
    "build_yardstick",
    "ecgqa_in_store",
    "finding_of",
    "parse_noise_leads",
    "score_yardstick",
]

SCP_STATEMENTS = "scp_statements.csv"
CHANCE = 0.5
LIKELIHOOD_THRESHOLD = 50.0
"""PTB-XL grades diagnostic statements 15/35/50/80/100 (% likelihood) and writes 0.0 where no
likelihood was given (always so for rhythm and form statements). A statement counts as present
("yes") at 0.0 or at >= this threshold; one graded below it (15, 35) is uncertain, and its
record is asked neither yes nor no about that finding."""
YES, NO = "yes", "no"
VERIFY = "single-verify"


# ------------------------------------------------------------------------------ the label table


@dataclass(frozen=True)
class ScpFinding:
    """A finding asked with ECG-QA template 1 ("Does this ECG show symptoms of {a}?")."""

    name: str
    """ECG-QA's spelling (answers.csv), the question's attribute."""
    codes: tuple[str, ...]
    """PTB-XL scp codes that mean "yes" (any of them, stated per LIKELIHOOD_THRESHOLD)."""
    ambiguous: tuple[str, ...] = ()
    """Codes that make a record neither yes nor no (clinically overlapping statements)."""
    needs_rhythm: bool = False
    """Only records with some rhythm statement may be a "no" (no statement says nothing)."""


# Rhythm statements: PTB-XL codes each rhythm once; a record with no rhythm code is left out.
# ECG-QA (and the synthetic benchmark) treat sinus brady/tachycardia and sinus arrhythmia as
# rhythms other than "sinus rhythm"; clinically they are sinus rhythms, so records stating them
# without SR are neither yes nor no for "sinus rhythm": its "no" means a non-sinus rhythm.
_RHYTHM: tuple[ScpFinding, ...] = (
    ScpFinding("sinus rhythm", ("SR",), ("SBRAD", "STACH", "SARRH"), needs_rhythm=True),
    ScpFinding("atrial fibrillation", ("AFIB",), needs_rhythm=True),
    ScpFinding("atrial flutter", ("AFLT",), needs_rhythm=True),
    ScpFinding("sinus bradycardia", ("SBRAD",), needs_rhythm=True),
    ScpFinding("sinus tachycardia", ("STACH",), needs_rhythm=True),
    ScpFinding("sinus arrhythmia", ("SARRH",), needs_rhythm=True),
)
# Diagnostic statements (graded by likelihood). The incomplete blocks / voltage-only criteria /
# a prolonged PR without the diagnosis are neither yes nor no for the complete diagnosis.
_DIAGNOSTIC: tuple[ScpFinding, ...] = (
    ScpFinding("first degree av block", ("1AVB",), ("LPR",)),
    ScpFinding("complete left bundle branch block", ("CLBBB",), ("ILBBB",)),
    ScpFinding("complete right bundle branch block", ("CRBBB",), ("IRBBB",)),
    ScpFinding("incomplete right bundle branch block", ("IRBBB",), ("CRBBB",)),
    ScpFinding("left anterior fascicular block", ("LAFB",)),
    ScpFinding("left posterior fascicular block", ("LPFB",)),
    ScpFinding("left ventricular hypertrophy", ("LVH",), ("VCLVH",)),
)
# Myocardial infarction by territory, ECG-QA's "myocardial infarction in <territory> leads".
# An infarct of an overlapping territory (e.g. inferolateral for "inferior") is neither yes nor
# no: ECG-QA's labels would say no, a reader of the ECG would see the shared wall.
_MI_CODES: dict[str, str] = {
    "inferior": "IMI", "anterior": "AMI", "anteroseptal": "ASMI", "lateral": "LMI",
    "anterolateral": "ALMI", "inferolateral": "ILMI", "inferoposterior": "IPMI",
    "inferoposterolateral": "IPLMI", "posterior": "PMI",
}  # fmt: skip
_MI_OVERLAP: dict[str, tuple[str, ...]] = {
    "inferior": ("ILMI", "IPMI", "IPLMI"),
    "anterior": ("ASMI", "ALMI"),
    "anteroseptal": ("AMI", "ALMI"),
    "lateral": ("ALMI", "ILMI", "IPLMI"),
    "anterolateral": ("AMI", "ASMI", "LMI"),
    "inferolateral": ("IMI", "LMI", "IPLMI"),
    "inferoposterior": ("IMI", "PMI", "IPLMI"),
    "inferoposterolateral": ("IMI", "ILMI", "IPMI", "LMI", "PMI"),
    "posterior": ("IPMI", "IPLMI"),
}
_MI: tuple[ScpFinding, ...] = tuple(
    ScpFinding(f"myocardial infarction in {territory} leads", (code,), _MI_OVERLAP[territory])
    for territory, code in _MI_CODES.items()
)
_ALL_MI = tuple(_MI_CODES.values())
# Form statements (never graded). PTB-XL writes Q waves as a form statement only sometimes;
# a record with an infarct statement but no QWAVE is not a trustworthy "no".
_FORM: tuple[ScpFinding, ...] = (
    ScpFinding("ventricular premature complex", ("PVC",), ("PRC(S)",)),
    ScpFinding("atrial premature complex", ("PAC",), ("PRC(S)",)),
    ScpFinding("low qrs voltages in the frontal and horizontal leads", ("LVOLT",)),
    ScpFinding("q waves present", ("QWAVE",), _ALL_MI),
)
SCP_FINDINGS: tuple[ScpFinding, ...] = (*_RHYTHM, *_DIAGNOSTIC, *_MI, *_FORM)


@dataclass(frozen=True)
class NoiseFinding:
    """A noise column asked per lead (template 26), for the whole ECG (27), or any noise (28)."""

    name: str
    """ECG-QA's spelling: baseline drift, static noise, burst noise, electrodes problems."""
    column: str
    """The ptbxl_database.csv column holding the affected leads as text (", I-AVR,")."""


NOISE_FINDINGS: tuple[NoiseFinding, ...] = (
    NoiseFinding("baseline drift", "baseline_drift"),
    NoiseFinding("static noise", "static_noise"),
    NoiseFinding("burst noise", "burst_noise"),
    NoiseFinding("electrodes problems", "electrodes_problems"),
)
ANY_NOISE = "any kind of noises"


@dataclass(frozen=True)
class ExtraBeatFinding:
    """Extrasystoles from the `extra_beats` column ("VES", "SVES", "1ES", ...), template 35."""

    name: str
    pattern: str
    """Regex over the column's text that means "yes"."""
    unknown_type: bool
    """Whether an extrasystole of unstated type ("ES", "1ES") makes the record ambiguous."""
    ambiguous_codes: tuple[str, ...]
    """scp codes of premature complexes: with an empty extra_beats column, not a clear "no"."""


EXTRA_BEAT_FINDINGS: tuple[ExtraBeatFinding, ...] = (
    ExtraBeatFinding("extrasystoles", r"ES", False, ("PVC", "PAC", "PRC(S)", "BIGU", "TRIGU")),
    ExtraBeatFinding("ventricular extrasystoles", r"(?<!S)VES", True, ("PVC", "PRC(S)")),
    ExtraBeatFinding("supraventricular extrasystoles", r"SVES", True, ("PAC", "PRC(S)")),
)

_TEMPLATE_SCP, _TEMPLATE_LEAD_NOISE, _TEMPLATE_ECG_NOISE, _TEMPLATE_ANY_NOISE = 1, 26, 27, 28
_TEMPLATE_EXTRA = 35


# ------------------------------------------------------------------------------ reading labels


class YardstickError(ValueError):
    """A PTB-XL folder the yardstick cannot read. Message: "<file>: <problem>"."""


_LEAD_INDEX = {name: i for i, name in enumerate(LEADS)}
_ALL_LEADS_WORDS = {"alles", "all"}  # PTB-XL is annotated in German: "alles" = all leads


def parse_noise_leads(text: Any) -> tuple[tuple[str, ...], bool]:
    """A noise column's text → (affected leads in canonical order, fully understood).

    PTB-XL writes comma-separated items: lead names ("V1"), ranges in the standard order
    ("I-AVR" = I, II, III, aVR), or "alles" (all leads); stray spaces and empty items are
    common (" , I-V1,  "). An empty field means no such noise. An item that is none of these
    sets `understood` False: the noise is present but its leads are not all known.
    """
    if text is None or pd.isna(text):
        return (), True
    leads: set[str] = set()
    understood = True
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        if item.lower() in _ALL_LEADS_WORDS:
            leads.update(LEADS)
            continue
        ends = [canonical_lead_name(part) for part in item.split("-")]
        if len(ends) == 1 and ends[0] is not None:
            leads.add(ends[0])
        elif len(ends) == 2 and None not in ends:
            lo, hi = sorted((_LEAD_INDEX[ends[0]], _LEAD_INDEX[ends[1]]))  # type: ignore[index]
            leads.update(LEADS[lo : hi + 1])
        else:
            understood = False
    return tuple(lead for lead in LEADS if lead in leads), understood


def _stated(codes: dict[str, float], threshold: float) -> tuple[set[str], set[str]]:
    """(stated codes, uncertain codes) per LIKELIHOOD_THRESHOLD's rule."""
    stated = {c for c, v in codes.items() if v == 0.0 or v >= threshold}
    return stated, set(codes) - stated


def _read_tables(root: Path) -> tuple[pd.DataFrame, set[str], set[str]]:
    """(database rows, all scp codes, rhythm codes) from a PTB-XL folder."""
    database, statements = root / DATABASE, root / SCP_STATEMENTS
    for path in (database, statements):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (PTB-XL's published layout)")
    rows = pd.read_csv(database, dtype={c: str for c in (*NOISE_COLUMNS, "extra_beats")})
    needed = ["ecg_id", "scp_codes", *NOISE_COLUMNS, "extra_beats"]
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        raise YardstickError(f"{database}: missing column(s) {', '.join(missing)}")
    table = pd.read_csv(statements, index_col=0)
    if "rhythm" not in table.columns:
        raise YardstickError(f"{statements}: no `rhythm` column")
    rhythm = {str(c) for c in table.index[table["rhythm"].fillna(0) == 1]}
    return rows.sort_values("ecg_id", kind="stable"), {str(c) for c in table.index}, rhythm


# ------------------------------------------------------------------------------ building questions


@dataclass(frozen=True)
class FindingCount:
    """How many units (records, or record × lead) a finding had, and how many were asked."""

    finding: str
    positives: int
    negatives: int
    ambiguous: int
    asked_per_side: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Yardstick:
    """Balanced yes/no questions, the counts behind them, and the findings skipped (why)."""

    samples: list[QASample]
    counts: list[FindingCount]
    skipped: dict[str, str] = field(default_factory=dict)
    likelihood_threshold: float = LIKELIHOOD_THRESHOLD


Unit = tuple[int, str | None]
"""(ecg_id, lead or None for a whole-record question)."""


@dataclass
class _Pool:
    template_id: int
    attribute_type: str
    attribute: str
    positives: list[Unit] = field(default_factory=list)
    negatives: list[Unit] = field(default_factory=list)
    ambiguous: int = 0


def _finding_name(template_id: int, attribute: str) -> str:
    if template_id == _TEMPLATE_LEAD_NOISE:
        return f"{attribute} (per lead)"
    if template_id == _TEMPLATE_ANY_NOISE:
        return f"{ANY_NOISE} (per lead)"
    if template_id == _TEMPLATE_ECG_NOISE:
        return f"{attribute} (whole ECG)"
    return attribute


def finding_of(sample: QASample) -> str:
    """The yardstick's finding a question belongs to (its row in the score table)."""
    return _finding_name(sample.template_id, sample.attribute[0] if sample.attribute else "")


def _scp_pools(rows: pd.DataFrame, all_codes: set[str], rhythm: set[str],
               threshold: float) -> list[_Pool]:
    unknown = sorted({c for f in SCP_FINDINGS for c in (*f.codes, *f.ambiguous)} - all_codes)
    if unknown:
        raise YardstickError(f"{SCP_STATEMENTS}: the label table names unknown codes {unknown}")
    pools = [_Pool(_TEMPLATE_SCP, "scp_code", f.name) for f in SCP_FINDINGS]
    for ecg_id, text in zip(rows["ecg_id"], rows["scp_codes"], strict=True):
        stated, uncertain = _stated(parse_scp_codes(text, f"{DATABASE} ecg_id {ecg_id}"), threshold)
        for finding, pool in zip(SCP_FINDINGS, pools, strict=True):
            unit = (int(ecg_id), None)
            if stated & set(finding.codes):
                pool.positives.append(unit)
            elif (uncertain & set(finding.codes) or stated & set(finding.ambiguous)
                  or (finding.needs_rhythm and not stated & rhythm)):  # fmt: skip
                pool.ambiguous += 1
            else:
                pool.negatives.append(unit)
    return pools


def _noise_pools(rows: pd.DataFrame) -> list[_Pool]:
    per_lead = [_Pool(_TEMPLATE_LEAD_NOISE, "noise", f.name) for f in NOISE_FINDINGS]
    whole = [_Pool(_TEMPLATE_ECG_NOISE, "noise", f.name) for f in NOISE_FINDINGS]
    any_noise = _Pool(_TEMPLATE_ANY_NOISE, "noise", ANY_NOISE)
    for _, row in rows.iterrows():
        ecg_id = int(row["ecg_id"])
        noisy: set[str] = set()
        all_understood = True
        for finding, lead_pool, ecg_pool in zip(NOISE_FINDINGS, per_lead, whole, strict=True):
            leads, understood = parse_noise_leads(row[finding.column])
            present = bool(leads) or not understood
            (ecg_pool.positives if present else ecg_pool.negatives).append((ecg_id, None))
            noisy.update(leads)
            all_understood &= understood
            if not understood:
                lead_pool.ambiguous += len(LEADS)
                continue
            for lead in LEADS:
                (lead_pool.positives if lead in leads else lead_pool.negatives).append((ecg_id, lead))
        for lead in LEADS:
            if lead in noisy:
                any_noise.positives.append((ecg_id, lead))
            elif all_understood:
                any_noise.negatives.append((ecg_id, lead))
            else:
                any_noise.ambiguous += 1
    return [*per_lead, *whole, any_noise]


def _extra_beat_pools(rows: pd.DataFrame, threshold: float) -> list[_Pool]:
    pools = [_Pool(_TEMPLATE_EXTRA, "extra_systole", f.name) for f in EXTRA_BEAT_FINDINGS]
    for ecg_id, text, codes in zip(rows["ecg_id"], rows["extra_beats"], rows["scp_codes"],
                                   strict=True):  # fmt: skip
        beats = "" if pd.isna(text) else str(text).upper()
        stated, _ = _stated(parse_scp_codes(codes, f"{DATABASE} ecg_id {ecg_id}"), threshold)
        for finding, pool in zip(EXTRA_BEAT_FINDINGS, pools, strict=True):
            unit = (int(ecg_id), None)
            if re.search(finding.pattern, beats):
                pool.positives.append(unit)
            elif (finding.unknown_type and "ES" in beats) or (
                not beats.strip() and stated & set(finding.ambiguous_codes)
            ):
                pool.ambiguous += 1
            else:
                pool.negatives.append(unit)
    return pools


def _question(pool: _Pool, unit: Unit, answer: str, sample_id: int, question_id: int,
              text: str) -> QASample:
    return QASample(
        sample_id=sample_id, question_id=question_id, template_id=pool.template_id,
        question_type=VERIFY, attribute_type=pool.attribute_type, question=text,
        answer=(answer,), ecg_id=unit[0], attribute=(pool.attribute,),
    )  # fmt: skip


def _wording(pool: _Pool, unit: Unit, rng: np.random.Generator, paraphrased: bool) -> str:
    """ECG-QA's template text (the synthetic benchmark's copy of it), or a seeded paraphrase."""
    paraphrases = TEMPLATES[pool.template_id].paraphrases
    text = paraphrases[int(rng.integers(len(paraphrases)))] if paraphrased else paraphrases[0]
    return text.format(a=pool.attribute, lead=unit[1])


def build_yardstick(
    ptbxl_dir: str | Path,
    *,
    seed: int = 0,
    likelihood_threshold: float = LIKELIHOOD_THRESHOLD,
    max_per_side: int | None = None,
    ecg_ids: Container[int] | None = None,
    wording: str = "template",
    first_sample_id: int = 0,
) -> Yardstick:
    """Balanced yes/no questions from a PTB-XL folder's labels.

    Per finding: the positive and negative units (records; record × lead for per-lead noise);
    the larger side is sampled down to the smaller one (seeded, per finding), optionally both to
    `max_per_side`. A finding with no positive (or no negative) unit is skipped and named in
    `.skipped`. `ecg_ids` keeps only those records (e.g. a prepared store: `ecg_id in store`).
    `wording`: "template" (ECG-QA's template text) or "paraphrased" (a seeded paraphrase).
    """
    if wording not in ("template", "paraphrased"):
        raise ValueError(f"wording must be 'template' or 'paraphrased', got {wording!r}")
    if max_per_side is not None and max_per_side < 1:
        raise ValueError(f"max_per_side must be >= 1, got {max_per_side}")
    rows, all_codes, rhythm = _read_tables(Path(ptbxl_dir))
    if ecg_ids is not None:
        rows = rows[[int(e) in ecg_ids for e in rows["ecg_id"]]]
    pools = [*_scp_pools(rows, all_codes, rhythm, likelihood_threshold),
             *_extra_beat_pools(rows, likelihood_threshold), *_noise_pools(rows)]  # fmt: skip
    samples: list[QASample] = []
    counts: list[FindingCount] = []
    skipped: dict[str, str] = {}
    for index, pool in enumerate(pools):
        name = _finding_name(pool.template_id, pool.attribute)
        k = min(len(pool.positives), len(pool.negatives), max_per_side or math.inf)
        counts.append(FindingCount(name, len(pool.positives), len(pool.negatives), pool.ambiguous,
                                   int(k)))  # fmt: skip
        if not pool.positives or not pool.negatives:
            side = "positive" if not pool.positives else "negative"
            skipped[name] = f"no {side} record ({len(rows)} records read)"
            continue
        rng = np.random.default_rng([seed, index])
        for answer, units in ((YES, pool.positives), (NO, pool.negatives)):
            chosen = sorted(rng.choice(len(units), size=int(k), replace=False))
            for i in chosen:
                unit = units[int(i)]
                text = _wording(pool, unit, rng, wording == "paraphrased")
                samples.append(_question(pool, unit, answer, first_sample_id + len(samples),
                                         index, text))  # fmt: skip
    return Yardstick(samples, counts, skipped, likelihood_threshold)


# ------------------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class YardstickRow:
    """Accuracy on one finding, its exact binomial 95% interval, and the one-sided p vs chance."""

    finding: str
    n: int
    n_yes: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    p_above_chance: float
    """P(at least this many correct | accuracy = 0.5): small means above chance."""
    auc: float | None = None
    """ROC AUC of the model's p(yes) against the gold answer (rank decoding only): whether it
    ranks the yes records above the no records, whatever its yes/no threshold. A model that says
    "no" to every question scores accuracy 0.5 here, and only this shows if the ECG moved it."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class YardstickTable:
    rows: list[YardstickRow]
    overall: YardstickRow
    chance: float = CHANCE

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [r.to_dict() for r in self.rows], "overall": self.overall.to_dict(),
            "chance": self.chance,
            "interval": "95% exact binomial (Clopper-Pearson), scipy.stats.binomtest",
        }  # fmt: skip


def _row(finding: str, correct: np.ndarray, yes: np.ndarray,
         yes_scores: np.ndarray | None = None) -> YardstickRow:
    from scipy.stats import binomtest

    from qheart.evaluation.zero_shot import roc_auc

    n, k = int(correct.size), int(correct.sum())
    test = binomtest(k, n, CHANCE, alternative="greater")
    ci = binomtest(k, n, CHANCE).proportion_ci(confidence_level=0.95)
    auc = None
    if yes_scores is not None:
        value = roc_auc(yes, yes_scores)
        auc = None if np.isnan(value) else value
    return YardstickRow(finding, n, int(yes.sum()), k, k / n, float(ci.low), float(ci.high),
                        float(test.pvalue), auc)  # fmt: skip


def score_yardstick(
    samples: Sequence[QASample], predicted_answers: Sequence[Iterable[str]],
    yes_scores: Sequence[float] | None = None,
) -> YardstickTable:
    """Accuracy per finding (table order: as the questions come) and over all questions; with
    `yes_scores` (the model's p(yes) per question, rank decoding) also the AUC of that score."""
    if len(samples) != len(predicted_answers):
        raise ValueError(f"{len(samples)} questions but {len(predicted_answers)} answers")
    if yes_scores is not None and len(yes_scores) != len(samples):
        raise ValueError(f"{len(samples)} questions but {len(yes_scores)} p(yes) scores")
    if not samples:
        raise ValueError("no yardstick questions to score")
    correct = np.array([answers_match(p, s.answer) for s, p in zip(samples, predicted_answers,
                                                                   strict=True)], bool)  # fmt: skip
    yes = np.array([s.answer == (YES,) for s in samples], bool)
    names = [finding_of(s) for s in samples]
    order = list(dict.fromkeys(names))
    keys = np.asarray(names, dtype=object)
    scores = None if yes_scores is None else np.asarray(yes_scores, dtype=float)
    rows = [_row(name, correct[keys == name], yes[keys == name],
                 None if scores is None else scores[keys == name]) for name in order]
    return YardstickTable(rows, _row("overall", correct, yes, scores))


# ------------------------------------------------------------------------------ real ECG-QA


def ecgqa_in_store(
    dataset_dir: str | Path,
    store: Container[int],
    *,
    variant: str = "paraphrased",
    split: str = "test",
) -> tuple[list[QASample], list[QASample], QASplit]:
    """The single-ECG questions of an ECG-QA split whose ECG is in `store` (a `SignalStore`).

    Returns (kept, missing, the loaded split): evaluate `kept`; `missing` and the split's
    `skipped` counts say what was left out (see `qheart.data.ecgqa.describe_missing`).
    """
    loaded = load_split(dataset_dir, variant, split)
    kept, missing = join_store(loaded.samples, store)
    return kept, missing, loaded
