"""Machine-style ECG reports, one statement per line as in MIMIC-IV-ECG's report_0 … report_17.

Statements are worded like the interpretive statements of the machines behind MIMIC-IV-ECG
("Sinus rhythm", "Left axis deviation", "Inferior infarct - age undetermined", "Borderline ECG"),
so the report corpus plays the role MIMIC-IV-ECG plays for pre-training and retrieval. The joined
report keeps one statement per sentence.
"""

from __future__ import annotations

from qheart.data.synth import findings as F

RHYTHM_TEXT = {
    F.SINUS_RHYTHM: "Sinus rhythm",
    F.SINUS_BRADYCARDIA: "Sinus bradycardia",
    F.SINUS_TACHYCARDIA: "Sinus tachycardia",
    F.SINUS_ARRHYTHMIA: "Sinus arrhythmia",
    F.ATRIAL_FIBRILLATION: "Atrial fibrillation",
    F.ATRIAL_FLUTTER: "Atrial flutter",
}
AXIS_TEXT = {
    F.AXIS_LEFT: "Left axis deviation",
    F.AXIS_RIGHT: "Right axis deviation",
    F.AXIS_EXTREME: "Right superior axis deviation",
}
STAGE_TEXT = {"early": "acute", "middle": "recent", "old": "age undetermined"}
NOISE_TEXT = {
    F.BASELINE_DRIFT: "Baseline wander in lead(s) {leads}",
    F.STATIC_NOISE: "Muscle tremor artifact in lead(s) {leads}",
    F.BURST_NOISE: "Artifact in lead(s) {leads}",
    F.ELECTRODES: "Lead(s) unsuitable for analysis: {leads}",
}
_MINOR = {F.SINUS_BRADYCARDIA, F.SINUS_TACHYCARDIA, F.SINUS_ARRHYTHMIA, F.AXIS_LEFT, F.AXIS_RIGHT,
          F.IRBBB}
"""Statements that make a report "Borderline ECG" rather than "Abnormal ECG" (incomplete RBBB is
often a normal variant)."""


def _leads(names: tuple[str, ...]) -> str:
    return ", ".join(names)


def report_lines(truth) -> list[str]:  # truth: qheart.data.synth.ecg.Truth
    """The report's statements in the order a machine prints them."""
    plan, labels = truth.plan, truth.labels
    scp = set(truth.scp)
    lines = [RHYTHM_TEXT[plan.rhythm]]
    if F.VPC in scp:
        lines.append("Ventricular premature complex(es)")
    if F.APC in scp:
        lines.append("Atrial premature complex(es)")
    if F.FIRST_DEGREE_AVB in scp:
        lines.append("1st degree A-V block")
    if truth.feature_ranges.get("pr interval") == "below the normal range":
        lines.append("Short PR interval")
    if labels.axis in AXIS_TEXT:
        lines.append(AXIS_TEXT[labels.axis])
    conduction = {
        F.LBBB: "Left bundle branch block",
        F.RBBB: "Right bundle branch block",
        F.IVCD: "Nonspecific intraventricular conduction delay",
        F.IRBBB: "Incomplete right bundle branch block",
        F.LAFB: "Left anterior fascicular block",
        F.LPFB: "Left posterior fascicular block",
    }
    for block in (plan.conduction, plan.fascicular):
        if block:
            lines.append(conduction[block])
    if F.LOW_VOLTAGE in scp:
        lines.append("Low QRS voltages")
    if F.LVH in scp:
        lines.append("Left ventricular hypertrophy")
    if plan.mi_territory:
        lines.append(f"{plan.mi_territory.capitalize()} infarct - {STAGE_TEXT[plan.mi_stage or 'old']}")
    found = labels.lead_findings
    if F.Q_WAVES in found:
        lines.append(f"Q waves in lead(s) {_leads(found[F.Q_WAVES])}")
    if F.ST_ELEVATION in found:
        lines.append(f"ST elevation in lead(s) {_leads(found[F.ST_ELEVATION])}")
    if F.ST_DEPRESSION in found:
        lines.append(f"ST depression in lead(s) {_leads(found[F.ST_DEPRESSION])}")
    if F.T_INVERSION in found:
        lines.append(f"T wave inversion in lead(s) {_leads(found[F.T_INVERSION])}")
    if F.LONG_QT in scp:
        lines.append("Prolonged QT interval")
    for noise in F.NOISES:
        if noise in plan.noise:
            lines.append(NOISE_TEXT[noise].format(leads=_leads(plan.noise[noise])))
    abnormal = [s for s in truth.scp if s != F.SINUS_RHYTHM and s not in _MINOR]
    if labels.axis == F.AXIS_EXTREME:
        abnormal.append(labels.axis)
    minor = [s for s in (*truth.scp, labels.axis) if s in _MINOR]
    lines.append("Abnormal ECG" if abnormal else "Borderline ECG" if minor else "Normal ECG")
    return lines


def report_text(truth) -> str:
    """The statements joined as sentences."""
    return ". ".join(report_lines(truth)) + "."
