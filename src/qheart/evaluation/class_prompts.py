"""Zero-shot class prompts worded the way the pre-training reports word them (prompt ensembles).

A class name such as "conduction disturbance" never occurs in a machine report, and in MiniLM it
sits nearer "Sinus rhythm" than "Left bundle branch block". So each class is described by its
member statements as the report corpus (qheart.data.synth.reports) prints them: PTB-XL's
superclass CD by "left bundle branch block", "right bundle branch block", "1st degree a-v block",
…; the finding "myocardial infarction in inferior leads" by "inferior infarct - acute/recent/age
undetermined". `zero_shot.evaluate` embeds every member and combines them per class (CLIP-style
prompt ensembling). Texts are normalised like the pre-training report keys (lower case).

Lead-specific statements ("Q waves in lead(s) II, III, aVF") get one member per textbook lead
group (the infarct territories the generator aims at), since a report always names leads.
NORM is "normal ecg" alone: every report opens with a rhythm, so "sinus rhythm" says nothing about
normality.
"""

from __future__ import annotations

from qheart.data.synth import findings as F
from qheart.data.synth.reports import AXIS_TEXT, NOISE_TEXT, RHYTHM_TEXT, STAGE_TEXT

NORMAL_ECG = "Normal ECG"
AV_BLOCK = "1st degree A-V block"
LBBB = "Left bundle branch block"
RBBB = "Right bundle branch block"
IVCD = "Nonspecific intraventricular conduction delay"
IRBBB = "Incomplete right bundle branch block"
LAFB = "Left anterior fascicular block"
LPFB = "Left posterior fascicular block"
LVH = "Left ventricular hypertrophy"
LOW_VOLTAGE = "Low QRS voltages"
LONG_QT = "Prolonged QT interval"
VPC = "Ventricular premature complex(es)"
APC = "Atrial premature complex(es)"
LEAD_STATEMENT = {
    F.Q_WAVES: "Q waves in lead(s) {leads}",
    F.ST_ELEVATION: "ST elevation in lead(s) {leads}",
    F.ST_DEPRESSION: "ST depression in lead(s) {leads}",
    F.T_INVERSION: "T wave inversion in lead(s) {leads}",
}
"""The report's wording of the lead-specific form statements (see reports.report_lines)."""
TERRITORIES = tuple(F.MI_TERRITORY_LEADS)


def normalise(text: str) -> str:
    """Lower case, single spaces, no trailing full stop: the pre-training report keys' form."""
    return " ".join(str(text).lower().split()).strip(" .")


def in_leads(finding: str, territories: tuple[str, ...] = TERRITORIES) -> list[str]:
    """A lead-specific statement once per territory's lead group."""
    return [LEAD_STATEMENT[finding].format(leads=", ".join(F.MI_TERRITORY_LEADS[t]))
            for t in territories]


def infarct(territories: tuple[str, ...] = TERRITORIES,
            stages: tuple[str, ...] = tuple(STAGE_TEXT)) -> list[str]:
    """"Inferior infarct - acute" … for every territory × stage asked for."""
    return [f"{t.capitalize()} infarct - {STAGE_TEXT[s]}" for t in territories for s in stages]


def _noise(finding: str) -> list[str]:
    return [NOISE_TEXT[finding].format(leads=", ".join(F.MI_TERRITORY_LEADS[t]))
            for t in TERRITORIES]


# ----------------------------------------------------------------------------- synthetic findings

FINDING_STATEMENTS: dict[str, list[str]] = {
    **{rhythm: [text] for rhythm, text in RHYTHM_TEXT.items()},
    **{axis: [text] for axis, text in AXIS_TEXT.items()},
    F.FIRST_DEGREE_AVB: [AV_BLOCK],
    F.PROLONGED_PR: [AV_BLOCK],
    F.LBBB: [LBBB],
    F.RBBB: [RBBB],
    F.IVCD: [IVCD],
    F.IRBBB: [IRBBB],
    F.LAFB: [LAFB],
    F.LPFB: [LPFB],
    F.LVH: [LVH],
    F.LVH_VOLTAGE: [LVH],
    F.LOW_VOLTAGE: [LOW_VOLTAGE],
    F.LONG_QT: [LONG_QT],
    F.VPC: [VPC],
    F.VES: [VPC],
    F.APC: [APC],
    F.SVES: [APC],
    **{F.mi_statement(t): infarct((t,)) for t in TERRITORIES},
    **{stage_finding: infarct(stages=(stage,)) for stage, stage_finding in F.STAGES.items()},
    **{finding: in_leads(finding) for finding in LEAD_STATEMENT},
    **{noise: _noise(noise) for noise in NOISE_TEXT},
}
"""Synthetic (ECG-QA vocabulary) finding → the report statements that state it. Findings the
reports never state (e.g. "normal heart axis") are absent: they keep their own name as prompt."""

STATED_BY_OMISSION: dict[str, list[str]] = {F.AXIS_NORMAL: list(AXIS_TEXT.values())}
"""Findings a report states by printing none of their alternatives ("normal heart axis": no axis
deviation statement) → those alternatives. Zero-shot scores them as minus the alternatives'
ensemble: their bare name is text the reports never contain, and scored normal axes lowest
(AUC 0.013 on the demo's synthetic test split)."""

SYNTHETIC_NORMAL = "NORM"
"""Synthetic superclass label of an ECG whose report concludes "Normal ECG" (PTB-XL's NORM)."""
SYNTHETIC_SUPERCLASSES = {"conduction disturbance": "CD", "hypertrophy": "HYP",
                          "myocardial infarction": "MI", "st/t change": "STTC"}
"""ECG-QA superclass names (findings.SUPERCLASS) → PTB-XL's superclass codes."""


def synthetic_superclass_statements() -> dict[str, list[str]]:
    """Superclass code → the union of its member findings' report statements (NORM: normal ECG)."""
    out: dict[str, list[str]] = {SYNTHETIC_NORMAL: [NORMAL_ECG]}
    for finding, superclass in F.SUPERCLASS.items():
        members = out.setdefault(SYNTHETIC_SUPERCLASSES[superclass], [])
        members += [s for s in FINDING_STATEMENTS[finding] if s not in members]
    return out


# ----------------------------------------------------------------------------- PTB-XL statements

_ISCHEMIA_TERRITORY = {"ISCAL": "anterolateral", "ISCIN": "inferior", "ISCIL": "inferolateral",
                       "ISCAS": "anteroseptal", "ISCLA": "lateral", "ISCAN": "anterior"}
_MI_TERRITORY = {"IMI": "inferior", "ASMI": "anteroseptal", "ILMI": "inferolateral",
                 "AMI": "anterior", "ALMI": "anterolateral", "LMI": "lateral",
                 "IPLMI": "inferolateral", "IPMI": "inferior"}

SCP_STATEMENTS: dict[str, list[str]] = {
    "NORM": [NORMAL_ECG],
    "SR": [RHYTHM_TEXT[F.SINUS_RHYTHM]], "SBRAD": [RHYTHM_TEXT[F.SINUS_BRADYCARDIA]],
    "STACH": [RHYTHM_TEXT[F.SINUS_TACHYCARDIA]], "SARRH": [RHYTHM_TEXT[F.SINUS_ARRHYTHMIA]],
    "AFIB": [RHYTHM_TEXT[F.ATRIAL_FIBRILLATION]], "AFLT": [RHYTHM_TEXT[F.ATRIAL_FLUTTER]],
    "1AVB": [AV_BLOCK], "LPR": [AV_BLOCK],
    "CLBBB": [LBBB], "CRBBB": [RBBB], "IVCD": [IVCD],
    "IRBBB": [IRBBB], "LAFB": [LAFB], "LPFB": [LPFB],
    "LVH": [LVH], "VCLVH": [LVH], "LVOLT": [LOW_VOLTAGE], "LNGQT": [LONG_QT],
    "PVC": [VPC], "PAC": [APC],
    **{code: infarct((territory,)) for code, territory in _MI_TERRITORY.items()},
    "QWAVE": in_leads(F.Q_WAVES), "STE_": in_leads(F.ST_ELEVATION),
    "STD_": in_leads(F.ST_DEPRESSION), "INVT": in_leads(F.T_INVERSION),
    "NST_": in_leads(F.ST_DEPRESSION) + in_leads(F.ST_ELEVATION),
    "NDT": in_leads(F.T_INVERSION), "NT_": in_leads(F.T_INVERSION),
    "TAB_": in_leads(F.T_INVERSION),
    "ISC_": in_leads(F.ST_DEPRESSION) + in_leads(F.T_INVERSION),
    **{code: in_leads(F.ST_DEPRESSION, (t,)) + in_leads(F.T_INVERSION, (t,))
       for code, t in _ISCHEMIA_TERRITORY.items()},
}
"""PTB-XL SCP code → how the report corpus states it. Ischaemia codes are worded as the ST
depression / T inversion a machine reports in the territory's leads; codes the corpus never
states (atrial enlargement, injury, …) are absent."""

CODE_TEST_STATEMENTS = {"1dAVb": "1AVB", "RBBB": "CRBBB", "LBBB": "CLBBB", "SB": "SBRAD",
                        "AF": "AFIB", "ST": "STACH"}
"""CODE test-set label → the SCP code whose wording describes it."""


def ensemble_members(codes: list[str], fallback: list[str]) -> list[str]:
    """A class's member texts: the corpus wording of every member code that has one, or, when
    none has, `fallback` (the codes' own descriptions). Unworded members are left out rather than
    mixed in: text the head never saw during pre-training lands near chance (the single-prompt
    baseline shows it) and would only dilute the worded ones."""
    members: list[str] = []
    for code in codes:
        members += [s for s in SCP_STATEMENTS.get(code, []) if s not in members]
    return [normalise(s) for s in (members or fallback)]
