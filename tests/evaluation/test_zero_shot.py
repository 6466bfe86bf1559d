"""Zero-shot and linear-probe AUC: metric, probe, label sets (synthetic, PTB-XL, CODE), end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from qheart.data.store import StoreWriter
from qheart.evaluation.zero_shot import (
    build_label_set,
    cross_val_scores,
    evaluate,
    fit_logistic,
    load_checkpoint,
    per_class_auc,
    roc_auc,
)
from qheart.models.encoder import ECGEncoder, EncoderConfig
from qheart.models.text_encoder import TextHead

TINY = EncoderConfig(conv_layers=((8, 4, 4), (16, 2, 2), (16, 2, 2)), conv_groups=4, d_model=16,
                     n_layers=1, n_heads=2, ffn_dim=32, pos_conv_kernel=8, pos_conv_groups=4,
                     dropout=0.0, embed_dim=12)


def write_store(root, rows: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)
    writer = StoreWriter(root, source="test")
    writer.write_chunk(0, rng.normal(size=(len(rows), 12, 5000)).astype(np.float32), rows)
    writer.finalize()


def test_roc_auc_known_values() -> None:
    y = np.array([0, 0, 1, 1], dtype=bool)
    assert roc_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(y, np.zeros(4)) == 0.5
    assert roc_auc(y, np.array([0.1, 0.35, 0.4, 0.8])) == 1.0
    assert roc_auc(y, np.array([0.1, 0.5, 0.4, 0.8])) == 0.75  # one of four pairs misordered
    assert np.isnan(roc_auc(np.ones(3, dtype=bool), np.arange(3.0)))
    aucs = per_class_auc(np.stack([y, ~y], 1), np.stack([np.arange(4.0)] * 2, 1))
    np.testing.assert_allclose(aucs, [1.0, 0.0])


def test_probe_separates_separable_data_and_cv_is_out_of_fold() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6))
    y = np.stack([x[:, 0] > 0, x[:, 1] + x[:, 2] > 0], 1)
    scores = fit_logistic(x[:80], y[:80])(x[80:])
    assert per_class_auc(y[80:], scores).min() > 0.95
    assert per_class_auc(y, cross_val_scores(x, y)).min() > 0.95
    noise = rng.normal(size=(120, 6))  # labels unrelated to features: out-of-fold AUC near chance
    assert abs(per_class_auc(y, cross_val_scores(noise, y)).mean() - 0.5) < 0.15


def test_synthetic_label_set_scores_test_and_probes_on_train(tmp_path) -> None:
    findings = [["sinus rhythm"], ["atrial fibrillation", "left axis deviation"], [], ["sinus rhythm"]]
    rows = pd.DataFrame({"ecg_id": range(4), "patient_id": range(4), "report": "r",
                         "findings": [json.dumps(f) for f in findings],
                         "split": ["train", "test", "train", "test"]})
    write_store(tmp_path / "s", rows)
    from qheart.data.store import SignalStore

    labels = build_label_set("synthetic", SignalStore(tmp_path / "s"))
    assert labels.classes == ["atrial fibrillation", "left axis deviation", "sinus rhythm"]
    assert labels.prompts == labels.classes
    assert labels.rows.tolist() == [1, 3] and labels.probe_rows.tolist() == [0, 2]
    assert labels.labels.tolist() == [[True, True, False], [False, False, True]]


def test_ptbxl_label_sets_from_scp_codes(tmp_path, real_samples) -> None:
    from qheart.data.store import SignalStore

    scp = real_samples / "ptb-xl" / "scp_statements.csv"
    codes = ["{'NORM': 100.0, 'SR': 0.0}", "{'IMI': 35.0, 'ABQRS': 0.0, 'AFIB': 0.0}",
             "{'1AVB': 100.0, 'SR': 0.0}", "{'LVH': 50.0, 'SR': 0.0}"]
    rows = pd.DataFrame({"ecg_id": range(4), "patient_id": range(4), "report": "",
                         "scp_codes": codes, "strat_fold": [1, 10, 10, 3]})
    write_store(tmp_path / "p", rows)
    store = SignalStore(tmp_path / "p")
    sup = build_label_set("ptbxl-super", store, scp_statements=scp)
    assert sup.classes == ["CD", "HYP", "MI", "NORM"]
    assert sup.rows.tolist() == [1, 2] and sup.probe_rows.tolist() == [0, 3]
    assert sup.labels.tolist() == [[False, False, True, False], [True, False, False, False]]
    assert "myocardial infarction" in sup.prompts
    sub = build_label_set("ptbxl-sub", store, scp_statements=scp, all_rows=True)
    assert {"IMI", "_AVB", "LVH", "NORM"} == set(sub.classes) and sub.probe_rows is None
    assert sub.prompts[sub.classes.index("_AVB")] == "av block"
    rhythm = build_label_set("ptbxl-rhythm", store, scp_statements=scp, all_rows=True)
    assert rhythm.classes == ["AFIB", "SR"] and rhythm.prompts == ["atrial fibrillation", "sinus rhythm"]
    form = build_label_set("ptbxl-form", store, scp_statements=scp, all_rows=True)
    assert form.classes == ["ABQRS"]
    with pytest.raises(ValueError, match="scp_statements"):
        build_label_set("ptbxl-super", store)


def test_code_label_set_reads_the_label_columns(tmp_path) -> None:
    from qheart.data.store import SignalStore

    rows = pd.DataFrame({"ecg_id": range(3), "patient_id": range(3), "report": "",
                         "1dAVb": [1, 0, 0], "AF": [0, 1, 0], "ST": [0, 0, 1]})
    write_store(tmp_path / "c", rows)
    labels = build_label_set("code", SignalStore(tmp_path / "c"))
    assert labels.classes == ["1dAVb", "AF", "ST"]
    assert labels.prompts == ["first degree av block", "atrial fibrillation", "sinus tachycardia"]
    assert labels.labels.sum(0).tolist() == [1, 1, 1]


def test_evaluate_end_to_end_with_a_saved_checkpoint(tmp_path) -> None:
    """A tiny encoder + head saved as `qheart pretrain` does, scored on a 40-ECG store."""
    from qheart.data.store import SignalStore

    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    findings = [["sinus rhythm"] if rng.random() < 0.5 else ["atrial fibrillation"] for _ in range(40)]
    rows = pd.DataFrame({"ecg_id": range(40), "patient_id": range(40), "report": "r",
                         "findings": [json.dumps(f) for f in findings]})
    write_store(tmp_path / "s", rows)
    ECGEncoder(TINY).save_pretrained(tmp_path / "run" / "encoder")
    TextHead(24, 12).save(tmp_path / "run" / "text_head.safetensors", text_encoder="fake")
    encoder, head, text_encoder = load_checkpoint(tmp_path / "run")
    assert text_encoder == "fake" and head.proj.in_features == 24

    def text_encode(texts: list[str]) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.randn(len(texts), 24), dim=-1)

    store = SignalStore(tmp_path / "s")
    result = evaluate(encoder, head, text_encode, store, build_label_set("synthetic", store),
                      min_positives=3)
    assert result.n_ecgs == 40 and result.classes == ["atrial fibrillation", "sinus rhythm"]
    assert sum(result.n_positive) == 40
    assert all(0.0 <= a <= 1.0 for a in result.zero_shot_auc)
    assert 0.0 <= result.probe_macro_auc <= 1.0 and "cross-validation" in result.probe
    # Without a text head: probe only, said so.
    probe_only = evaluate(encoder, None, None, store, build_label_set("synthetic", store))
    assert np.isnan(probe_only.zero_shot_macro_auc) and probe_only.notes
    # Rare classes are left out of the macro average, and the note names them.
    strict = evaluate(encoder, head, text_encode, store, build_label_set("synthetic", store),
                      min_positives=40)
    assert np.isnan(strict.zero_shot_macro_auc) and "sinus rhythm" in strict.notes[0]


# ----------------------------------------------------------------------------- prompt ensembles

SCP_TABLE = pd.DataFrame(
    {"description": ["normal ECG", "complete left bundle branch block",
                     "complete right bundle branch block", "left anterior fascicular block",
                     "inferior myocardial infarction", "right ventricular hypertrophy",
                     "sinus rhythm"],
     "diagnostic": [1, 1, 1, 1, 1, 1, None], "form": [None] * 7,
     "rhythm": [None] * 6 + [1],
     "diagnostic_class": ["NORM", "CD", "CD", "CD", "MI", "HYP", None],
     "diagnostic_subclass": ["NORM", "CLBBB", "CRBBB", "LAFB/LPFB", "IMI", "RVH", None]},
    index=pd.Index(["NORM", "CLBBB", "CRBBB", "LAFB", "IMI", "RVH", "SR"]))


def test_ptbxl_super_ensemble_is_the_members_report_statements(tmp_path) -> None:
    from qheart.data.store import SignalStore

    SCP_TABLE.to_csv(tmp_path / "scp.csv")
    codes = ["{'NORM': 100.0, 'SR': 0.0}", "{'CLBBB': 100.0, 'SR': 0.0}",
             "{'IMI': 100.0, 'RVH': 50.0}", "{'LAFB': 100.0, 'SR': 0.0}"]
    rows = pd.DataFrame({"ecg_id": range(4), "patient_id": range(4), "report": "",
                         "scp_codes": codes, "strat_fold": [10] * 4})
    write_store(tmp_path / "p", rows)
    labels = build_label_set("ptbxl-super", SignalStore(tmp_path / "p"),
                             scp_statements=tmp_path / "scp.csv", all_rows=True)
    ensemble = dict(zip(labels.classes, labels.ensemble(), strict=True))
    # CD: its statements as reports word them (the fascicular block since generator v3), not the
    # class name.
    assert ensemble["CD"] == ["left bundle branch block", "right bundle branch block",
                              "left anterior fascicular block"]
    assert "inferior infarct - acute" in ensemble["MI"] and len(ensemble["MI"]) == 3
    # NORM is "normal ecg" alone: sinus rhythm is stated by abnormal reports too.
    assert ensemble["NORM"] == ["normal ecg"]
    # No member worded by the reports: the codes' own descriptions.
    assert ensemble["HYP"] == ["right ventricular hypertrophy"]
    # The single prompts of before stay available.
    assert labels.prompts[labels.classes.index("CD")] == "conduction disturbance"


def test_synthetic_superclasses_from_findings_and_report(tmp_path) -> None:
    from qheart.data.store import SignalStore

    findings = [["sinus rhythm"], ["sinus rhythm", "complete left bundle branch block"],
                ["atrial fibrillation", "myocardial infarction in inferior leads"]]
    reports = ["Sinus rhythm. Normal ECG.", "Sinus rhythm. Left bundle branch block. Abnormal ECG.",
               "Atrial fibrillation. Inferior infarct - acute. Abnormal ECG."]
    rows = pd.DataFrame({"ecg_id": range(3), "patient_id": range(3), "report": reports,
                         "findings": [json.dumps(f) for f in findings],
                         "split": ["valid", "valid", "test"]})
    write_store(tmp_path / "s", rows)
    labels = build_label_set("synthetic-super", SignalStore(tmp_path / "s"), split="valid")
    assert labels.classes == ["CD", "MI", "NORM"] and labels.rows.tolist() == [0, 1]
    assert labels.labels.tolist() == [[False, False, True], [True, False, False]]
    ensemble = dict(zip(labels.classes, labels.ensemble(), strict=True))
    assert "left bundle branch block" in ensemble["CD"] and "1st degree a-v block" in ensemble["CD"]
    assert ensemble["NORM"] == ["normal ecg"]
    findings_set = build_label_set("synthetic", SignalStore(tmp_path / "s"), all_rows=True)
    members = dict(zip(findings_set.classes, findings_set.ensemble(), strict=True))
    assert members["complete left bundle branch block"] == ["left bundle branch block"]


def test_finding_wordings_are_what_the_reports_print() -> None:
    """The ensembles quote reports.report_lines: a wording drifting from it fails here."""
    from types import SimpleNamespace

    from qheart.data.synth import findings as F
    from qheart.data.synth.reports import report_lines
    from qheart.evaluation.class_prompts import FINDING_STATEMENTS, normalise

    inferior = F.MI_TERRITORY_LEADS["inferior"]
    plan = F.Plan(rhythm=F.SINUS_BRADYCARDIA, conduction=F.RBBB, mi_territory="inferior",
                  mi_stage="old", noise={F.BASELINE_DRIFT: inferior})
    scp = [F.SINUS_BRADYCARDIA, F.FIRST_DEGREE_AVB, F.RBBB, F.LVH, F.LOW_VOLTAGE, F.LONG_QT,
           F.VPC, F.APC, F.mi_statement("inferior")]
    lead_findings = {f: inferior for f in F.LEAD_FORMS}
    truth = SimpleNamespace(plan=plan, scp=scp, feature_ranges={},
                            labels=SimpleNamespace(axis=F.AXIS_LEFT, lead_findings=lead_findings))
    printed = {normalise(line) for line in report_lines(truth)}
    for finding in [*scp, F.AXIS_LEFT, *F.LEAD_FORMS, F.BASELINE_DRIFT, F.STAGES["old"]]:
        members = {normalise(s) for s in FINDING_STATEMENTS[finding]}
        assert members & printed, finding


def test_ensemble_scores_follow_the_members() -> None:
    from qheart.evaluation.zero_shot import ensemble_scores

    members = np.eye(4, dtype=np.float32)  # class 0: members e0, e1; class 1: members e2, e3
    owner = np.array([0, 0, 1, 1])
    ecg = np.array([[1.0, 0, 0, 0], [0, 0, 0.6, 0.8]], dtype=np.float32)
    mean = ensemble_scores(ecg, members, owner, 2, "mean")
    np.testing.assert_allclose(mean, [[2 ** -0.5, 0], [0, 1.4 * 2 ** -0.5]], atol=1e-6)
    np.testing.assert_allclose(ensemble_scores(ecg, members, owner, 2, "max"),
                               [[1, 0], [0, 0.8]], atol=1e-6)
    with pytest.raises(ValueError, match="combination"):
        ensemble_scores(ecg, members, owner, 2, "median")


def test_a_finding_stated_by_omission_scores_as_minus_its_alternatives(tmp_path) -> None:
    """"normal heart axis" is never printed: a normal axis is a report with no axis deviation
    statement, so its class scores as minus those statements' ensemble."""
    from qheart.data.store import SignalStore
    from qheart.data.synth import findings as F
    from qheart.data.synth.reports import AXIS_TEXT
    from qheart.evaluation.class_prompts import normalise
    from qheart.evaluation.zero_shot import LabelSet, class_scores

    findings = [[F.AXIS_NORMAL], [F.AXIS_LEFT]]
    rows = pd.DataFrame({"ecg_id": range(2), "patient_id": range(2), "report": "",
                         "findings": [json.dumps(f) for f in findings]})
    write_store(tmp_path / "s", rows)
    labels = build_label_set("synthetic", SignalStore(tmp_path / "s"), all_rows=True)
    normal = labels.classes.index(F.AXIS_NORMAL)
    assert labels.negated is not None and labels.negated[normal]
    assert not labels.negated[labels.classes.index(F.AXIS_LEFT)]
    assert labels.ensemble()[normal] == [normalise(t) for t in AXIS_TEXT.values()]

    def text_encode(texts: list[str]) -> torch.Tensor:  # deviations along e0, the rest along e1
        deviated = {normalise(t) for t in AXIS_TEXT.values()}
        return torch.tensor([[1.0, 0.0] if t in deviated else [0.0, 1.0] for t in texts])

    head = TextHead(2, 2)
    with torch.no_grad():
        head.proj.weight.copy_(torch.eye(2))
        head.proj.bias.zero_()
    z = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32)  # ECG 0 normal, ECG 1 deviated
    scores = class_scores(z, labels, head, text_encode, "mean")
    np.testing.assert_allclose(scores[:, normal], [0.0, -1.0], atol=1e-6)
    plain = LabelSet(**{**labels.__dict__, "negated": None})
    np.testing.assert_allclose(class_scores(z, plain, head, text_encode, "mean")[:, normal],
                               [0.0, 1.0], atol=1e-6)


def test_a_class_whose_members_match_the_ecgs_scores_higher(tmp_path) -> None:
    """ECG embeddings near "left bundle branch block": CD (whose member it is) separates them
    perfectly by its ensemble, while its class name — unrelated text here — does not."""
    from qheart.data.store import SignalStore
    from qheart.evaluation.zero_shot import class_scores

    SCP_TABLE.to_csv(tmp_path / "scp.csv")
    codes = ["{'CLBBB': 100.0}"] * 10 + ["{'IMI': 100.0}"] * 10
    rows = pd.DataFrame({"ecg_id": range(20), "patient_id": range(20), "report": "",
                         "scp_codes": codes, "strat_fold": [10] * 20})
    write_store(tmp_path / "p", rows)
    labels = build_label_set("ptbxl-super", SignalStore(tmp_path / "p"),
                             scp_statements=tmp_path / "scp.csv", all_rows=True)
    vectors: dict[str, torch.Tensor] = {}
    gen = torch.Generator().manual_seed(0)

    def text_encode(texts: list[str]) -> torch.Tensor:  # a fixed random unit vector per text
        for t in texts:
            vectors.setdefault(t, torch.nn.functional.normalize(torch.randn(32, generator=gen), dim=0))
        return torch.stack([vectors[t] for t in texts])

    head = TextHead(32, 32)
    with torch.no_grad():
        head.proj.weight.copy_(torch.eye(32))
        head.proj.bias.zero_()
    lbbb = text_encode(["left bundle branch block"])[0].numpy()
    rng = np.random.default_rng(0)
    cd_rows = labels.labels[:, labels.classes.index("CD")]
    z = rng.normal(scale=0.1, size=(20, 32)) + np.where(cd_rows[:, None], lbbb, 0.0)
    z = (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)
    cd = labels.classes.index("CD")
    for prompting in ("mean", "max"):
        scores = class_scores(z, labels, head, text_encode, prompting)
        assert roc_auc(cd_rows, scores[:, cd]) == 1.0, prompting
    single = class_scores(z, labels, head, text_encode, "single")
    assert roc_auc(cd_rows, single[:, cd]) < 0.9
    with pytest.raises(ValueError, match="prompting"):
        class_scores(z, labels, head, text_encode, "best")
