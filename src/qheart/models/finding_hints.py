"""Finding hints: the pre-trained encoder's own zero-shot reading of the findings a question
names, as one short line of text in the question (beyond the paper; `model.finding_hints`).

Why: on 2 CPU cores the LLM does not learn, in a few hundred steps, to relate the 12 prefix tokens
to the finding a verify question names. Q-HEART's verify accuracy stays at chance (0.52–0.55 in
every run of docs/experiments/instruction-tuning.md) although the pre-trained encoder knows the
answer: its similarity between the ECG and the finding's report statements (the contrastive
pre-training's own space) separates the demo test split's yes from no at AUC 0.76 on scp-code verify
questions and 0.94 on axis ones. Comparing a question's finding with the ECG inside the LLM is a
binding the small model has to learn per finding; here it is done where the encoder was trained to
do it, and the LLM only has to read one verdict word beside the finding's name, the same word for
every finding ("Encoder reading: inverted t-waves likely").

The score of finding f for an ECG is the cosine between the ECG's unit embedding and the mean of
f's statement embeddings (CLIP-style prompt ensembling, as `qheart zero-shot` scores), negated
for findings that reports state by omission, standardised with its mean and spread over
training ECGs, then calibrated into a probability on the training questions that ask about f
(`calibrate`), so one set of verdict thresholds (`VERDICTS`) fits every finding. Calibration
matters: on the demo's training questions some findings' raw scores point the wrong way (atrial
premature complex AUC 0.23) and some carry nothing (electrode problems 0.50); calibrated, those
read "uncertain" instead of misleading. The default calibration is LDA (two Gaussians), not a
logistic regression: on synthetic ECGs most findings' scores are nearly separable, and a
logistic fit then puts p = 0.5 at the edge of the tighter class (sinus rhythm: 0.62, with
synthetic sinus-rhythm ECGs at 0.88 ± 0.22), so the small shift of real ECGs (real sinus rhythm
0.44 ± 0.40) reads "very unlikely". LDA puts it midway between the class means, in units of
their pooled spread.
Statements come from `evaluation.class_prompts` for the synthetic benchmark's findings; any
other finding (real ECG-QA's vocabulary) is scored by its own name.

The scores always come from the *pre-trained* encoder, saved in the model folder beside the
statement directions (`finding_hints/`): the model's own encoder is tuned further, and a hint
must mean at answer time what it meant in training.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from qheart.data.options import names_in_text

HINTS_DIR = "finding_hints"
"""The model folder's subfolder: the pre-trained encoder (encoder/) and the bank."""
BANK_NAME = "bank.safetensors"
HINT_PREFIX = "Encoder reading: "
VERDICTS: tuple[tuple[float, str], ...] = (
    (0.2, "very unlikely"), (0.4, "unlikely"), (0.6, "uncertain"), (0.8, "likely"),
    (float("inf"), "very likely"))
"""(upper bound of the calibrated probability, verdict)."""
MIN_CALIBRATION = 20
"""Questions (with at least 5 of each answer) a finding needs to be calibrated; findings with
fewer keep p = sigmoid(standardised score)."""
CALIBRATIONS = ("lda", "logistic")
"""How `FindingBank.calibrate` turns a standardised score into a probability."""
NOT_FINDINGS = frozenset({"numeric_feature"})
"""Attribute types whose attributes are not findings an ECG shows (intervals, durations)."""


def verdict(probability: float) -> str:
    """The verdict word for one calibrated probability."""
    return next(word for bound, word in VERDICTS if probability < bound)


def fit_logistic_1d(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of p(y=1 | x) = sigmoid(slope·x + intercept), with the project's
    logistic regression (the linear probe's); its predictions are affine in x, so two of them
    give the line. The best fit in domain; see `fit_gaussian_1d` for why it is not the default."""
    from qheart.evaluation.zero_shot import fit_logistic

    predict = fit_logistic(np.asarray(x, dtype=np.float64)[:, None],
                           np.asarray(y, dtype=np.float64)[:, None])
    at_zero, at_one = (float(predict(np.full((1, 1), v))[0, 0]) for v in (0.0, 1.0))
    return at_one - at_zero, at_zero


def fit_gaussian_1d(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of p(y=1 | x) = sigmoid(slope·x + intercept) when x is Gaussian within
    each class with one shared variance (linear discriminant analysis), priors as in `y`.

    Why not a logistic regression: with nearly separable classes its line is set by the few
    examples in the gap, so p = 0.5 sits at the edge of the tighter class; here it sits midway
    between the class means, which a shift between domains moves less (measured in
    docs/experiments/instruction-tuning.md, "Finding hints on real ECGs")."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=bool)
    present, absent = x[y], x[~y]
    if min(len(present), len(absent)) < 2:
        raise ValueError(f"LDA calibration needs ≥ 2 examples per class, got {len(present)} "
                         f"present and {len(absent)} absent")
    pooled = (((present - present.mean()) ** 2).sum() + ((absent - absent.mean()) ** 2).sum()) \
        / (len(x) - 2)
    slope = (present.mean() - absent.mean()) / max(pooled, 1e-6)
    intercept = -slope * (present.mean() + absent.mean()) / 2 + np.log(len(present) / len(absent))
    return float(slope), float(intercept)


def statements_for(name: str) -> tuple[list[str], float]:
    """(report statements that state finding `name`, sign): the synthetic benchmark's wording
    where it is known, else the name itself; sign −1 for findings stated by omission."""
    from qheart.evaluation import class_prompts as cp

    if name in cp.STATED_BY_OMISSION:
        return [cp.normalise(s) for s in cp.STATED_BY_OMISSION[name]], -1.0
    return [cp.normalise(s) for s in cp.FINDING_STATEMENTS.get(name, [name])], 1.0


@dataclass
class FindingBank:
    """The findings hints can be given for, their directions in the ECG embedding space and
    their score statistics over training ECGs."""

    names: list[str]
    directions: np.ndarray  # (A, d) unit vectors
    sign: np.ndarray  # (A,) +1, or -1 for findings stated by omission
    mean: np.ndarray  # (A,)
    std: np.ndarray  # (A,)
    slope: np.ndarray | None = None  # (A,) calibration; None: sigmoid of the standardised score
    intercept: np.ndarray | None = None  # (A,)

    @classmethod
    def build(cls, names: Iterable[str], project: Callable[[list[str]], torch.Tensor]
              ) -> FindingBank:
        """Directions from `project` (texts → (M, d) embeddings in the ECG space); statistics
        neutral until `fit`."""
        names = sorted(set(names))
        if not names:
            raise ValueError("a finding bank needs at least one finding")
        texts, owner, sign = [], [], []
        for i, name in enumerate(names):
            members, s = statements_for(name)
            texts += members
            owner += [i] * len(members)
            sign.append(s)
        with torch.no_grad():
            members = torch.nn.functional.normalize(project(texts).float(), dim=-1)
        centroid = torch.zeros(len(names), members.shape[1]).index_add_(
            0, torch.as_tensor(owner), members)
        directions = torch.nn.functional.normalize(centroid, dim=-1).numpy()
        return cls(names, directions, np.asarray(sign, dtype=np.float32),
                   np.zeros(len(names), dtype=np.float32), np.ones(len(names), dtype=np.float32))

    def raw_scores(self, z: np.ndarray) -> np.ndarray:
        """(N, A) signed cosines of unit ECG embeddings `z` (N, d)."""
        return (np.asarray(z, dtype=np.float32) @ self.directions.T) * self.sign

    def fit(self, z: np.ndarray) -> FindingBank:
        """Standardise with the scores of training ECGs `z` (N, d); returns self."""
        if len(z) < 2:
            raise ValueError(f"fitting the finding bank needs ≥ 2 ECGs, got {len(z)}")
        raw = self.raw_scores(z)
        self.mean = raw.mean(axis=0).astype(np.float32)
        self.std = np.maximum(raw.std(axis=0), 1e-6).astype(np.float32)
        return self

    def scores(self, z: np.ndarray) -> np.ndarray:
        """(N, A) standardised scores."""
        return (self.raw_scores(z) - self.mean) / self.std

    def calibrate(self, finding: Sequence[str], score: np.ndarray, present: np.ndarray,
                  method: str = "lda") -> dict[str, float]:
        """Fit each finding's p(present | standardised score) on training examples
        (`finding[i]` had `score[i]`, and was present or not) by one of CALIBRATIONS; returns
        the training AUC of the findings that had enough examples (for the run's record)."""
        from qheart.evaluation.zero_shot import roc_auc

        if method not in CALIBRATIONS:
            raise ValueError(f"unknown hint calibration {method!r}; known: {CALIBRATIONS}")
        fit = fit_gaussian_1d if method == "lda" else fit_logistic_1d

        self.slope = np.ones(len(self.names), dtype=np.float32)
        self.intercept = np.zeros(len(self.names), dtype=np.float32)
        finding, score, present = np.asarray(finding), np.asarray(score), np.asarray(present)
        aucs = {}
        for i, name in enumerate(self.names):
            mine = finding == name
            positives = int(present[mine].sum())
            if mine.sum() < MIN_CALIBRATION or min(positives, int(mine.sum()) - positives) < 5:
                continue
            self.slope[i], self.intercept[i] = fit(score[mine], present[mine])
            aucs[name] = round(roc_auc(present[mine].astype(int), score[mine]), 4)
        return aucs

    def probabilities(self, z: np.ndarray) -> np.ndarray:
        """(N, A) calibrated probabilities that each finding is present."""
        scores = self.scores(z)
        if self.slope is not None:
            scores = scores * self.slope + self.intercept
        return 1.0 / (1.0 + np.exp(-scores))

    def save(self, path: str | Path) -> None:
        from safetensors.numpy import save_file

        arrays = {"directions": self.directions, "sign": self.sign, "mean": self.mean,
                  "std": self.std}
        if self.slope is not None:
            arrays |= {"slope": self.slope, "intercept": self.intercept}
        save_file(arrays, str(path), metadata={"names": json.dumps(self.names)})

    @classmethod
    def load(cls, path: str | Path) -> FindingBank:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            names = json.loads(fh.metadata()["names"])
            stored = fh.keys()
            arrays = {key: fh.get_tensor(key) for key in stored}
        if len(names) != len(arrays["directions"]):
            raise ValueError(f"{path}: {len(names)} names for {len(arrays['directions'])} "
                             "directions")
        return cls(names, arrays["directions"], arrays["sign"], arrays["mean"], arrays["std"],
                   arrays.get("slope"), arrays.get("intercept"))


def bank_vocabulary(attributes: Iterable[tuple[str | None, Sequence[str] | None]],
                    options: Iterable[Sequence[str]]) -> set[str]:
    """Findings to hint: the training questions' attributes (`(attribute type, attribute)`
    pairs; numeric features left out) and the options the synthetic wording knows."""
    from qheart.evaluation import class_prompts as cp

    known = set(cp.FINDING_STATEMENTS) | set(cp.STATED_BY_OMISSION)
    found = {a for kind, attribute in attributes if kind not in NOT_FINDINGS
             for a in (attribute or ())}
    found |= {o for opts in options for o in opts if o in known}
    return found


def _known(bank: FindingBank, names: Iterable[str] | None) -> list[str]:
    known = set(bank.names)
    return [n for n in (names or ()) if n in known]


def hinted_findings(bank: FindingBank, question: str, options: Sequence[str],
                    attribute: Sequence[str] | None = None) -> list[str]:
    """Which findings a question's hint reads: its options that are findings (choose and
    findings queries), else its attribute (verify, lead queries), else the findings its text
    names (free questions)."""
    return (_known(bank, options) or _known(bank, attribute)
            or names_in_text(question, bank.names))


def presence_labels(bank: FindingBank, options: Sequence[str], attribute: Sequence[str] | None,
                    answer: Sequence[str]) -> list[tuple[str, bool]]:
    """What a training question's gold answer says about the findings its hint reads:
    an option finding is present when the answer names it; an attribute finding (verify, lead
    queries) when the answer is "yes" or names anything but "no"/"none". Free questions and
    "not sure" say nothing."""
    from qheart.data.options import answer_set, normalize_answer

    given = answer_set(answer)
    from_options = _known(bank, options)
    if from_options:
        return [(o, normalize_answer(o) in given) for o in from_options]
    findings = _known(bank, attribute)
    if not findings or not given or "not sure" in given:
        return []
    present = "yes" in given or not given <= {"no", "none"}
    return [(f, present) for f in findings]


def hint_line(bank: FindingBank, probabilities: np.ndarray, findings: Sequence[str]
              ) -> str | None:
    """"Encoder reading: f₁ likely; f₂ unlikely" from one ECG's (A,) probabilities."""
    if not findings:
        return None
    column = {name: i for i, name in enumerate(bank.names)}
    return HINT_PREFIX + "; ".join(f"{f} {verdict(float(probabilities[column[f]]))}"
                                   for f in findings)


@dataclass
class HintReader:
    """A bank with the pre-trained encoder that scores against it: what a model folder keeps."""

    bank: FindingBank
    embed: Callable[[np.ndarray], np.ndarray]
    """Canonical ECGs (B, 12, n) → unit embeddings (B, d)."""
    training_auc: dict[str, float] = field(default_factory=dict)
    """Per calibrated finding, how well its score separated present from absent in training."""

    def hints(self, signals: np.ndarray, questions: Sequence[str],
              options: Sequence[Sequence[str]],
              attributes: Sequence[Sequence[str] | None] | None = None) -> list[str | None]:
        """One hint line (or None) per question about the matching ECG of `signals`."""
        scores = self.bank.probabilities(self.embed(signals)) if len(signals) \
            else np.zeros((0, 0))
        attributes = attributes if attributes is not None else [None] * len(questions)
        return [hint_line(self.bank, scores[i], hinted_findings(self.bank, q, o, a))
                for i, (q, o, a) in enumerate(zip(questions, options, attributes, strict=True))]

    def save(self, directory: str | Path, encoder) -> None:
        """`directory`/encoder (the pre-trained ECGEncoder) and `directory`/bank.safetensors."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        encoder.save_pretrained(directory / "encoder")
        self.bank.save(directory / BANK_NAME)

    @classmethod
    def load(cls, directory: str | Path) -> HintReader:
        from qheart.models.encoder import ECGEncoder

        directory = Path(directory)
        if not (directory / BANK_NAME).is_file():
            raise FileNotFoundError(f"{directory}: no {BANK_NAME}; a model trained with "
                                    "finding_hints keeps its hint reader here (copy the whole "
                                    "model folder)")
        return cls(FindingBank.load(directory / BANK_NAME),
                   ECGEncoder.from_pretrained(directory / "encoder").embed)


def text_projection(encoder_dir: str | Path) -> Callable[[list[str]], torch.Tensor]:
    """Texts → the pre-training's joint space: MiniLM (or the run's text encoder) and the text
    head saved beside the encoder folder."""
    from qheart.models.text_encoder import TextEncoder, TextHead

    encoder_dir = Path(encoder_dir)
    for path in (encoder_dir / "text_head.safetensors",
                 encoder_dir.parent / "text_head.safetensors"):
        if path.is_file():
            head, text_encoder = TextHead.load(path)
            model = TextEncoder(text_encoder)
            return lambda texts: head(model.encode(texts)).detach()
    raise FileNotFoundError(f"{encoder_dir}: no text_head.safetensors beside the encoder; finding "
                            "hints need the `qheart pretrain` run's text head "
                            "(or --set model.finding_hints=false)")
