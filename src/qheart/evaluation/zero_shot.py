"""Encoder validation: zero-shot macro AUC by ECG–class-prompt similarity, and a linear probe.

One code path for every label set: a `LabelSet` (store rows × classes, a prompt per class, and how
the probe is fitted) is built from the synthetic benchmark's `findings`, from PTB-XL's scp_codes
(super/sub/form/rhythm via scp_statements.csv, test fold 10) or from CODE's label columns; then
`evaluate` embeds the ECGs once and scores both ways.

Zero-shot prompting (`PROMPTINGS`): "single" scores each class by its one name-like prompt
("conduction disturbance"); "mean" (default) and "max" by its member statements as the reports
word them (qheart.evaluation.class_prompts), combined as the mean of their unit embeddings or the
best member's similarity. A class name rarely resembles the statements reports make, so "single"
can land below chance on classes the encoder separates well.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import mannwhitneyu
from torch.nn import functional as F

from qheart.data.store import SignalStore
from qheart.models.encoder import ECGEncoder
from qheart.models.text_encoder import TextEncoder, TextHead

LABEL_SETS = ("synthetic", "synthetic-super", "ptbxl-super", "ptbxl-sub", "ptbxl-form", "ptbxl-rhythm", "ptbxl-all",
              "code")
PTBXL_TEST_FOLD = 10
PTBXL_VALID_FOLD = 9
CV_FOLDS = 5
PROMPTINGS = ("mean", "max", "single")
"""Zero-shot prompting: member-statement ensemble (mean embedding / max similarity) or the
single class prompt of before."""

PTBXL_SUPER_PROMPTS = {
    "NORM": "normal ecg", "MI": "myocardial infarction", "STTC": "st/t change",
    "CD": "conduction disturbance", "HYP": "hypertrophy",
}
"""PTB-XL superclasses in ECG-QA's wording."""
PTBXL_SUB_PROMPTS = {
    "LAFB/LPFB": "left anterior or posterior fascicular block", "_AVB": "av block",
    "ISC_": "non-specific ischemic", "ISCA": "ischemic in anterior leads",
    "ISCI": "ischemic in inferior leads", "LAO/LAE": "left atrial overload/enlargement",
    "RAO/RAE": "right atrial overload/enlargement", "STTC": "st/t change",
    "AMI": "anterior myocardial infarction", "IMI": "inferior myocardial infarction",
}
"""Subclasses that are not themselves SCP codes (the others use their code's description)."""
CODE_PROMPTS = {
    "1dAVb": "first degree av block", "RBBB": "right bundle branch block",
    "LBBB": "left bundle branch block", "SB": "sinus bradycardia", "AF": "atrial fibrillation",
    "ST": "sinus tachycardia",
}
"""CODE test-set labels (Ribeiro et al. 2020) as prompts."""


@dataclass
class LabelSet:
    """ECGs × classes to score, with the prompt of each class and the probe's training data."""

    name: str
    classes: list[str]
    """Class identifiers (SCP codes, findings, ...)."""
    prompts: list[str]
    """One text per class, embedded by the text encoder for zero-shot scoring."""
    rows: np.ndarray
    """Store rows of the evaluated ECGs."""
    labels: np.ndarray
    """(len(rows), n_classes) bool."""
    probe_rows: np.ndarray | None = None
    """Store rows to fit the linear probe on (None: cross-validate over `rows`)."""
    probe_labels: np.ndarray | None = None
    """(len(probe_rows), n_classes) bool."""
    notes: list[str] = field(default_factory=list)
    """What was dropped or decided while building the set (printed with the results)."""
    members: list[list[str]] | None = None
    """Per class, the report statements that describe it (prompt ensemble); None: `prompts`."""
    negated: list[bool] | None = None
    """Per class, True: its members are its alternatives and it scores as minus their ensemble
    (class_prompts.STATED_BY_OMISSION); None: no class is."""

    def ensemble(self) -> list[list[str]]:
        """Member texts per class; a class without members is its own single prompt."""
        members = self.members or [[] for _ in self.classes]
        return [list(m) or [p] for m, p in zip(members, self.prompts, strict=True)]


def _multi_hot(per_row: Sequence[Sequence[str]], classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    out = np.zeros((len(per_row), len(classes)), dtype=bool)
    for r, names in enumerate(per_row):
        for name in names:
            if name in index:
                out[r, index[name]] = True
    return out


def _split_rows(meta: pd.DataFrame, column: str, values: set) -> np.ndarray:
    return np.flatnonzero(meta[column].isin(values).to_numpy())


def synthetic_label_set(store: SignalStore, *, all_rows: bool = False, split: str = "test",
                        superclasses: bool = False) -> LabelSet:
    """Findings of the synthetic benchmark (JSON lists, ECG-QA vocabulary): `split` (test; valid
    to choose things on) scored, probe fitted on the train split; the finding text is its single
    prompt, its report statements its ensemble. `superclasses`: PTB-XL's superclasses instead —
    CD/HYP/MI/STTC by findings.SUPERCLASS, NORM where the report concludes "Normal ECG"."""
    from qheart.data.synth.findings import SUPERCLASS as F_SUPER
    from qheart.evaluation import class_prompts as cp

    meta = store.metadata
    if "findings" not in meta.columns:
        raise ValueError(f"{store.root}: no `findings` column (not a synthetic benchmark store)")
    findings = [json.loads(v) if isinstance(v, str) and v else [] for v in meta["findings"]]
    name = "synthetic"
    if superclasses:
        name = "synthetic-super"
        normal = [cp.normalise(cp.NORMAL_ECG) in {cp.normalise(s) for s in str(r).split(".")}
                  for r in meta["report"].fillna("")]
        findings = [sorted({cp.SYNTHETIC_SUPERCLASSES[F_SUPER[f]] for f in row if f in F_SUPER}
                           | ({cp.SYNTHETIC_NORMAL} if norm else set()))
                    for row, norm in zip(findings, normal, strict=True)]
        statements = cp.synthetic_superclass_statements()
        prompt_of = {code: name for name, code in cp.SYNTHETIC_SUPERCLASSES.items()}
        prompt_of[cp.SYNTHETIC_NORMAL] = PTBXL_SUPER_PROMPTS["NORM"]
    else:
        statements, prompt_of = {**cp.FINDING_STATEMENTS, **cp.STATED_BY_OMISSION}, {}
    classes = sorted({f for row in findings for f in row})
    prompts = [prompt_of.get(c, c) for c in classes]
    members = [[cp.normalise(s) for s in statements.get(c, [])] for c in classes]
    negated = [not superclasses and c in cp.STATED_BY_OMISSION for c in classes]
    labels = _multi_hot(findings, classes)
    if all_rows or "split" not in meta.columns:
        return LabelSet(name, classes, prompts, np.arange(len(meta)), labels, members=members,
                        negated=negated)
    rows, train = _split_rows(meta, "split", {split}), _split_rows(meta, "split", {"train"})
    return LabelSet(name, classes, prompts, rows, labels[rows], train, labels[train],
                    members=members, negated=negated)


def ptbxl_label_set(store: SignalStore, scp_statements: str | Path, group: str, *,
                    all_rows: bool = False) -> LabelSet:
    """PTB-XL's benchmark tasks (Strodthoff et al. 2020): `super`/`sub` aggregate the diagnostic
    codes into classes/subclasses, `form`/`rhythm` keep the codes so flagged, `all` keeps every
    statement. Scored on
    strat_fold 10 with the probe fitted on folds 1–8, or (`all_rows`) on every row with a
    cross-validated probe — for small samples such as the 100 real records."""
    from qheart.data.corpora.ptbxl import parse_scp_codes

    if group not in ("super", "sub", "form", "rhythm", "all"):
        raise ValueError(f"unknown PTB-XL label group {group!r}")
    table = pd.read_csv(scp_statements, index_col=0)
    meta = store.metadata
    for column in ("scp_codes", "strat_fold"):
        if column not in meta.columns:
            raise ValueError(f"{store.root}: no `{column}` column (not a prepared PTB-XL store)")
    if group in ("super", "sub"):
        column = "diagnostic_class" if group == "super" else "diagnostic_subclass"
        mapping = table.loc[table["diagnostic"] == 1, column].dropna().to_dict()
    elif group == "all":
        mapping = {code: code for code in table.index}
    else:
        mapping = {code: code for code in table.index[table[group] == 1]}
    per_row = [sorted({mapping[c] for c in parse_scp_codes(t, str(store.root)) if c in mapping})
               for t in meta["scp_codes"]]
    classes = sorted({c for row in per_row for c in row})
    prompts = [_ptbxl_prompt(c, group, table) for c in classes]
    members = [_ptbxl_members(c, mapping, table) for c in classes]
    labels = _multi_hot(per_row, classes)
    name = f"ptbxl-{group}"
    if all_rows:
        return LabelSet(name, classes, prompts, np.arange(len(meta)), labels, members=members)
    folds = meta["strat_fold"].astype("Int64")
    test = np.flatnonzero((folds == PTBXL_TEST_FOLD).fillna(False).to_numpy())
    train = np.flatnonzero((folds < PTBXL_VALID_FOLD).fillna(False).to_numpy())
    if not len(test):
        raise ValueError(f"{store.root}: no strat_fold {PTBXL_TEST_FOLD} rows (use all_rows)")
    probe = (train, labels[train]) if len(train) else (None, None)
    return LabelSet(name, classes, prompts, test, labels[test], *probe, members=members)


def _ptbxl_members(label: str, mapping: dict[str, str], table: pd.DataFrame) -> list[str]:
    """The label's member statements (all codes mapped to it) as the reports word them; the
    codes' own descriptions where the reports word none of them."""
    from qheart.evaluation.class_prompts import ensemble_members

    codes = sorted(code for code, target in mapping.items() if target == label)
    fallback = [str(table.loc[c, "description"]) for c in codes if c in table.index]
    return ensemble_members(codes, fallback)


def _ptbxl_prompt(label: str, group: str, table: pd.DataFrame) -> str:
    if group == "super":
        return PTBXL_SUPER_PROMPTS.get(label, label.lower())
    if group == "sub" and label in PTBXL_SUB_PROMPTS:
        return PTBXL_SUB_PROMPTS[label]
    if label in table.index:
        return str(table.loc[label, "description"]).lower()
    return label.lower()


def code_label_set(store: SignalStore) -> LabelSet:
    """CODE test set: the six label columns (1dAVb, RBBB, LBBB, SB, AF, ST) of the store's metadata;
    probe cross-validated (the test set is all there is)."""
    meta = store.metadata
    classes = [c for c in CODE_PROMPTS if c in meta.columns]
    if not classes:
        raise ValueError(f"{store.root}: none of the CODE label columns {list(CODE_PROMPTS)}")
    from qheart.evaluation.class_prompts import CODE_TEST_STATEMENTS, ensemble_members

    labels = meta[classes].fillna(0).astype(int).to_numpy().astype(bool)
    members = [ensemble_members([CODE_TEST_STATEMENTS[c]], [CODE_PROMPTS[c]]) for c in classes]
    return LabelSet("code", classes, [CODE_PROMPTS[c] for c in classes], np.arange(len(meta)),
                    labels, members=members)


def build_label_set(name: str, store: SignalStore, *, scp_statements: str | Path | None = None,
                    all_rows: bool = False, split: str = "test") -> LabelSet:
    """Dispatch on the label-set name (one of LABEL_SETS); `split` picks the synthetic rows."""
    if name in ("synthetic", "synthetic-super"):
        return synthetic_label_set(store, all_rows=all_rows, split=split,
                                   superclasses=name == "synthetic-super")
    if name.startswith("ptbxl-"):
        if scp_statements is None:
            raise ValueError("PTB-XL label sets need scp_statements.csv (--scp-statements)")
        return ptbxl_label_set(store, scp_statements, name.removeprefix("ptbxl-"),
                               all_rows=all_rows)
    if name == "code":
        return code_label_set(store)
    raise ValueError(f"unknown label set {name!r}; known: {list(LABEL_SETS)}")


# ----------------------------------------------------------------------------- metrics


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Binary ROC AUC as the Mann–Whitney U statistic / (n_pos · n_neg) (ties count ½);
    NaN when one class is absent. (scikit-learn is not a dependency; scipy gives U.)"""
    labels = np.asarray(labels, dtype=bool)
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return float("nan")
    return float(mannwhitneyu(pos, neg, alternative="two-sided").statistic / (len(pos) * len(neg)))


def per_class_auc(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(C,) AUC per column of (N, C) labels/scores; NaN where a class has no positives/negatives."""
    return np.array([roc_auc(labels[:, c], scores[:, c]) for c in range(labels.shape[1])])


def macro(values: np.ndarray) -> float:
    """Mean over the classes that could be scored (NaN-free); NaN if none could."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")


# ----------------------------------------------------------------------------- scoring


def zero_shot_scores(ecg_embeddings: np.ndarray, prompt_embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity (N, C) between unit ECG embeddings and projected class prompts."""
    prompts = F.normalize(torch.as_tensor(prompt_embeddings, dtype=torch.float32), dim=-1)
    return (torch.as_tensor(ecg_embeddings, dtype=torch.float32) @ prompts.T).numpy()


def ensemble_scores(ecg_embeddings: np.ndarray, member_embeddings: np.ndarray,
                    owner: np.ndarray, n_classes: int, how: str = "mean") -> np.ndarray:
    """(N, C) class scores from (M, d) projected member prompts, `owner[m]` = class of member m.
    "mean": cosine to the mean of the members' unit embeddings (CLIP prompt ensembling);
    "max": the best member's cosine (a class matches when any of its statements does)."""
    members = F.normalize(torch.as_tensor(member_embeddings, dtype=torch.float32), dim=-1)
    owner_t = torch.as_tensor(owner, dtype=torch.long)
    z = torch.as_tensor(ecg_embeddings, dtype=torch.float32)
    if how == "mean":
        centroid = torch.zeros(n_classes, members.shape[1]).index_add_(0, owner_t, members)
        return (z @ F.normalize(centroid, dim=-1).T).numpy()
    if how == "max":
        sims = z @ members.T  # (N, M)
        out = torch.full((len(z), n_classes), -torch.inf)
        out = out.scatter_reduce(1, owner_t.expand(len(z), -1), sims, reduce="amax")
        return out.numpy()
    raise ValueError(f"unknown ensemble combination {how!r}; known: mean, max")


def class_scores(z: np.ndarray, label_set: LabelSet, text_head: TextHead,
                 text_encode: Callable[[list[str]], torch.Tensor], prompting: str = "mean"
                 ) -> np.ndarray:
    """(N, C) zero-shot scores of unit ECG embeddings `z` under one of PROMPTINGS."""
    if prompting not in PROMPTINGS:
        raise ValueError(f"unknown prompting {prompting!r}; known: {list(PROMPTINGS)}")
    if prompting == "single":
        texts, owner = label_set.prompts, np.arange(len(label_set.classes))
    else:
        ensemble = label_set.ensemble()
        texts = [t for members in ensemble for t in members]
        owner = np.repeat(np.arange(len(ensemble)), [len(m) for m in ensemble])
    with torch.no_grad():
        projected = text_head(text_encode(list(texts)).float()).numpy()  # (M, d)
    if prompting == "single":
        return zero_shot_scores(z, projected)
    scores = ensemble_scores(z, projected, owner, len(label_set.classes), prompting)
    if label_set.negated is not None:
        scores[:, np.asarray(label_set.negated, dtype=bool)] *= -1.0
    return scores


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, max_iter: int = 200
                 ) -> Callable[[np.ndarray], np.ndarray]:
    """One-vs-rest L2 logistic regression on standardised features, full-batch L-BFGS.

    Hand-written in torch (a few lines) rather than adding scikit-learn for this one model.
    Returns a function mapping features to (N, C) scores (logits).
    """
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.as_tensor((x - mean) / std, dtype=torch.float32)  # (N, d)
    yt = torch.as_tensor(y, dtype=torch.float32)  # (N, C)
    linear = torch.nn.Linear(x.shape[1], y.shape[1])
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=max_iter,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(linear(xt), yt)
        loss = loss + l2 * linear.weight.pow(2).sum() / len(xt)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)

    def predict(features: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return linear(torch.as_tensor((features - mean) / std, dtype=torch.float32)).numpy()

    return predict


def cross_val_scores(x: np.ndarray, y: np.ndarray, folds: int = CV_FOLDS, seed: int = 0
                     ) -> np.ndarray:
    """Out-of-fold probe scores (N, C): every ECG is scored by a probe that never saw it."""
    order = np.random.default_rng(seed).permutation(len(x))
    scores = np.zeros(y.shape, dtype=np.float32)
    for part in np.array_split(order, min(folds, len(x))):
        train = np.setdiff1d(order, part)
        scores[part] = fit_logistic(x[train], y[train])(x[part])
    return scores


@dataclass
class ZeroShotResult:
    """Scores of one encoder on one label set."""

    label_set: str
    n_ecgs: int
    classes: list[str]
    n_positive: list[int]
    zero_shot_auc: list[float]
    probe_auc: list[float] | None
    probe: str
    """How the probe was fitted: "train split (n=…)" or "5-fold cross-validation"."""
    notes: list[str]

    @property
    def zero_shot_macro_auc(self) -> float:
        return macro(np.asarray(self.zero_shot_auc))

    @property
    def probe_macro_auc(self) -> float | None:
        return None if self.probe_auc is None else macro(np.asarray(self.probe_auc))

    def to_dict(self) -> dict:
        return {"label_set": self.label_set, "n_ecgs": self.n_ecgs,
                "zero_shot_macro_auc": self.zero_shot_macro_auc,
                "probe_macro_auc": self.probe_macro_auc, "probe": self.probe,
                "classes": self.classes, "n_positive": self.n_positive,
                "zero_shot_auc": self.zero_shot_auc, "probe_auc": self.probe_auc,
                "notes": self.notes}


def evaluate(encoder: ECGEncoder, text_head: TextHead | None,
             text_encode: Callable[[list[str]], torch.Tensor] | None, store: SignalStore,
             label_set: LabelSet, *, probe: bool = True, min_positives: int = 1,
             batch_size: int = 64, progress: bool = False,
             prompting: str = "mean") -> ZeroShotResult:
    """Embed the label set's ECGs, then zero-shot (needs a text head and text encoder; `prompting`
    one of PROMPTINGS) and probe. Classes with fewer than `min_positives` positives among the
    scored ECGs get NaN AUCs and are left out of the macro averages (too few to measure)."""
    notes = list(label_set.notes)
    n_positive = label_set.labels.sum(0)
    rare = n_positive < min_positives
    if rare.any():
        notes.append(f"{int(rare.sum())} class(es) with < {min_positives} positives left out: "
                     + ", ".join(np.asarray(label_set.classes)[rare]))
    embed = _embedder(encoder, store, batch_size, progress)
    z = embed(label_set.rows)  # (N, d) unit norm
    zero_shot = [float("nan")] * len(label_set.classes)
    if text_head is not None and text_encode is not None:
        scores = class_scores(z, label_set, text_head, text_encode, prompting)
        zero_shot = per_class_auc(label_set.labels, scores).tolist()
        notes.append(f"zero-shot prompts: {prompting}" + (
            "" if prompting == "single" else " over each class's report statements"))
    else:
        notes.append("no text head: zero-shot AUC not computed (probe only)")
    probe_auc, how = None, "none"
    if probe:
        if label_set.probe_rows is not None and label_set.probe_labels is not None:
            fitted = fit_logistic(embed(label_set.probe_rows), label_set.probe_labels)
            scores, how = fitted(z), f"fitted on {len(label_set.probe_rows)} separate ECGs"
        else:
            scores, how = cross_val_scores(z, label_set.labels), f"{CV_FOLDS}-fold cross-validation"
        probe_auc = per_class_auc(label_set.labels, scores).tolist()
    zero_shot = np.where(rare, np.nan, zero_shot).tolist()
    if probe_auc is not None:
        probe_auc = np.where(rare, np.nan, probe_auc).tolist()
    return ZeroShotResult(label_set.name, len(label_set.rows), label_set.classes,
                          n_positive.astype(int).tolist(), zero_shot, probe_auc, how, notes)


def _embedder(encoder: ECGEncoder, store: SignalStore, batch_size: int, progress: bool
              ) -> Callable[[np.ndarray], np.ndarray]:
    from tqdm.auto import tqdm

    def embed(rows: np.ndarray) -> np.ndarray:
        out = [encoder.embed(store.signals(rows[s : s + batch_size]), batch_size)
               for s in tqdm(range(0, len(rows), batch_size), desc="embedding ECGs",
                             disable=not progress)]
        return np.concatenate(out) if out else np.zeros((0, encoder.config.embed_dim), np.float32)

    return embed


# ----------------------------------------------------------------------------- loading


def load_checkpoint(path: str | Path) -> tuple[ECGEncoder, TextHead | None, str | None]:
    """(encoder, text head, text encoder name) from a `qheart pretrain` output folder, or just an
    encoder from an ECGEncoder folder (then the text head beside it is used if present)."""
    path = Path(path)
    encoder_dir = path / "encoder" if (path / "encoder" / "config.json").is_file() else path
    encoder = ECGEncoder.from_pretrained(encoder_dir)
    for head_path in (path / "text_head.safetensors", encoder_dir.parent / "text_head.safetensors"):
        if head_path.is_file():
            head, text_encoder = TextHead.load(head_path)
            if head.proj.out_features != encoder.config.embed_dim:
                raise ValueError(f"{head_path}: projects to {head.proj.out_features}, "
                                 f"encoder embeds to {encoder.config.embed_dim}")
            return encoder, head, text_encoder
    return encoder, None, None


def run_zero_shot(checkpoint: str | Path, data: str | Path, label_set_name: str = "synthetic", *,
                  scp_statements: str | Path | None = None, all_rows: bool = False,
                  probe: bool = True, min_positives: int = 1, progress: bool = True,
                  prompting: str = "mean", split: str = "test") -> ZeroShotResult:
    """What `qheart zero-shot` does: load, pick the store inside `data`, build labels, score."""
    encoder, head, text_encoder = load_checkpoint(checkpoint)
    data = Path(data)
    store = SignalStore(data / "store" if (data / "store" / "store.json").is_file() else data)
    label_set = build_label_set(label_set_name, store, scp_statements=scp_statements,
                                all_rows=all_rows, split=split)
    text_encode = None
    if head is not None and text_encoder is not None:
        text_model = TextEncoder(text_encoder)
        text_encode = text_model.encode
    return evaluate(encoder, head, text_encode, store, label_set, probe=probe,
                    min_positives=min_positives, progress=progress, prompting=prompting)
