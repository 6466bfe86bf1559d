"""Questions in the ECG-QA schema, answered exactly from a synthetic ECG's ground truth.

Templates follow ECG-QA's single-ECG templates (same ids, wording style, answer vocabulary and
`attribute` use) so the ECG-QA loader and Q-HEART's Table 1 options work unchanged:
- verify: `attribute` names what is asked; answers yes/no, balanced 50/50 per template.
- choose: `attribute` holds exactly the offered options; the answer is the offered ones present,
  else "none".
- query: "What leads ..." → attribute = the finding, answer = the leads (never empty);
  "What range ..." → attribute = the feature; "What numeric features ..." → attribute = the range;
  any other query → attribute = the template's whole vocabulary, answer = those present or "none".
Template 13 (choose a form finding in one lead) has no ECG-QA counterpart; it adds lead-specific
choose questions. Each template has several paraphrases; the first is the template wording.

Which questions are asked is thinned (`AnswerBalance`) so that no template and attribute predicts
its answer: a blind model that answers each question with its template and attribute's most
frequent training answer scores about 0.55 / 0.35 / 0.20 on verify / choose / query of the demo's
test split (`priors.prior_baseline`), at or below real ECG-QA's question-only 0.68 / 0.31 / 0.24.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from qheart.data.leads import LEADS
from qheart.data.synth import findings as F
from qheart.data.synth.ranges import FEATURES, RANGE_LABELS

VERIFY, CHOOSE, QUERY = "single-verify", "single-choose", "single-query"
YES, NO, NONE = "yes", "no", "none"
LEAD_ANSWERS: tuple[str, ...] = tuple(f"lead {name}" for name in LEADS)


@dataclass(frozen=True)
class Facts:
    """What the questions need to know about one ECG (built from its `Truth`)."""

    scp: frozenset[str]
    lead_findings: dict[str, tuple[str, ...]]
    axis: str
    stage: str | None
    extrasystole: str | None
    noise: dict[str, tuple[str, ...]]
    feature_ranges: dict[str, str | None]


@dataclass(frozen=True)
class Template:
    template_id: int
    question_type: str
    attribute_type: str
    paraphrases: tuple[str, ...]
    classes: tuple[str, ...]
    """This template's answer vocabulary (answers_for_each_template.csv)."""
    weight: float


@dataclass(frozen=True)
class Question:
    template_id: int
    question_type: str
    attribute_type: str
    template_text: str
    paraphrased_text: str
    answer: tuple[str, ...]
    attribute: tuple[str, ...]


SCP_ALL = (*F.RHYTHMS, *F.DIAGNOSTIC, *[f for f in F.FORMS if f not in F.DIAGNOSTIC])
YES_NO = (NO, YES)


def _t(tid: int, qtype: str, atype: str, weight: float, classes: tuple[str, ...], *texts: str) -> Template:
    return Template(tid, qtype, atype, texts, classes, weight)


TEMPLATES: dict[int, Template] = {
    t.template_id: t
    for t in (
        _t(1, VERIFY, "scp_code", 8, YES_NO,
           "Does this ECG show symptoms of {a}?", "Is there evidence of {a} on this ECG?",
           "Does this ECG suggest {a}?", "Are there any signs of {a} in this ECG?",
           "Can {a} be seen on this ECG?", "Is {a} present in this ECG?"),
        _t(3, CHOOSE, "scp_code", 1.5, (*F.SUPERCLASSES, NONE),
           "Which diagnostic superclass does this ECG belong to, {a} or {b}?",
           "Does this ECG fall under {a} or {b}?",
           "Which category best describes this ECG, {a} or {b}?",
           "Is this ECG an example of {a} or {b}?"),
        _t(4, CHOOSE, "scp_code", 3, (*sorted(F.DIAGNOSTIC), NONE),
           "Which diagnostic symptom does this ECG show, {a} or {b}?",
           "Does this ECG indicate {a} or {b}?",
           "Which of the two does this ECG show: {a} or {b}?",
           "Which diagnosis fits this ECG, {a} or {b}?"),
        _t(6, CHOOSE, "scp_code", 3, (*sorted(F.FORMS), NONE),
           "Which form-related symptom does this ECG show, {a} or {b}?",
           "Does this ECG present {a} or {b}?",
           "Which finding is visible on this ECG, {a} or {b}?",
           "Between {a} and {b}, which one does this ECG show?"),
        _t(7, CHOOSE, "scp_code", 2.5, (*sorted(F.RHYTHMS), NONE),
           "Which rhythm does this ECG show, {a} or {b}?",
           "Is the rhythm of this ECG {a} or {b}?",
           "Does this ECG show {a} or {b} as its rhythm?",
           "Which rhythm is recorded on this ECG: {a} or {b}?"),
        _t(8, QUERY, "scp_code", 2, (*sorted(F.DIAGNOSTIC), NONE),
           "What diagnostic symptoms does this ECG show?",
           "Which diagnoses can be made from this ECG?",
           "What are the diagnostic findings of this ECG?",
           "What diagnostic statements apply to this ECG?"),
        _t(10, QUERY, "scp_code", 2, (*sorted(F.RHYTHMS), NONE),
           "What rhythm does this ECG show?", "What is the rhythm of this ECG?",
           "Which rhythm can be seen on this ECG?", "How would you describe the rhythm of this ECG?"),
        _t(11, QUERY, "scp_code", 2, (*sorted(F.FORMS), NONE),
           "What form-related symptoms does this ECG show?",
           "Which waveform abnormalities are present on this ECG?",
           "What form-related findings can be seen in this ECG?",
           "What does the waveform of this ECG show?"),
        _t(12, VERIFY, "scp_code", 34, YES_NO,
           "Does this ECG show {a} in lead {lead}?", "Is there {a} in lead {lead} of this ECG?",
           "Does lead {lead} show {a}?", "Can {a} be seen in lead {lead}?",
           "Is {a} present in lead {lead} on this ECG?", "In lead {lead}, does this ECG show {a}?"),
        _t(13, CHOOSE, "scp_code", 10, (*sorted(F.LEAD_FORMS), NONE),
           "Which symptom does this ECG show in lead {lead}, {a} or {b}?",
           "Does lead {lead} show {a} or {b}?",
           "In lead {lead}, which is present: {a} or {b}?",
           "Which finding does lead {lead} of this ECG show, {a} or {b}?"),
        _t(18, QUERY, "scp_code", 11, (*sorted(F.LEAD_FORMS), NONE),
           "What symptoms does this ECG show in lead {lead}?",
           "Which findings are present in lead {lead}?",
           "What abnormalities can be seen in lead {lead} of this ECG?",
           "What does lead {lead} of this ECG show?"),
        _t(19, QUERY, "scp_code", 10, (*LEAD_ANSWERS, NONE),
           "What leads of this ECG show {a}?", "Which leads show {a}?",
           "In which leads can {a} be seen?", "What leads are affected by {a} on this ECG?",
           "Where on this ECG is {a} visible?"),
        _t(20, VERIFY, "heart_axis", 2, YES_NO,
           "Does this ECG show {a}?", "Is there {a} on this ECG?",
           "Does the heart axis of this ECG indicate {a}?", "Is {a} seen on this ECG?"),
        _t(21, CHOOSE, "heart_axis", 2, (*sorted(F.AXES), NONE),
           "Which heart axis does this ECG show, {a} or {b}?",
           "Does this ECG show {a} or {b}?",
           "Is the heart axis of this ECG {a} or {b}?",
           "Which describes the axis of this ECG: {a} or {b}?"),
        _t(22, QUERY, "heart_axis", 1.5, tuple(sorted(F.AXES)),
           "What heart axis does this ECG show?", "What is the heart axis of this ECG?",
           "How is the electrical axis of this ECG oriented?",
           "Which axis deviation, if any, does this ECG show?"),
        _t(23, VERIFY, "stage_of_infarction", 1.5, YES_NO,
           "Does this ECG show {a}?", "Is there {a} on this ECG?",
           "Does this ECG indicate {a}?", "Can {a} be seen on this ECG?"),
        _t(24, CHOOSE, "stage_of_infarction", 1, (*sorted(F.STAGES.values()), NONE),
           "Which stage of myocardial infarction does this ECG show, {a} or {b}?",
           "Does this ECG show {a} or {b}?",
           "Is the infarction on this ECG in {a} or {b}?",
           "Which does this ECG show, {a} or {b}?"),
        _t(25, QUERY, "stage_of_infarction", 1, (*sorted(F.STAGES.values()), F.NO_STAGE),
           "What stage of myocardial infarction does this ECG show?",
           "Which stage of infarction can be seen on this ECG?",
           "How far has the myocardial infarction on this ECG progressed?",
           "What is the stage of infarction on this ECG?"),
        _t(26, VERIFY, "noise", 24, YES_NO,
           "Does this ECG show {a} in lead {lead}?", "Is {a} present in lead {lead} of this ECG?",
           "Is there any {a} in lead {lead} on this ECG?", "Does lead {lead} show any {a}?",
           "Can {a} be detected in lead {lead} of this ECG?",
           "Does the recording of lead {lead} contain {a}?"),
        _t(27, VERIFY, "noise", 2, YES_NO,
           "Does this ECG show {a}?", "Is this ECG affected by any {a}?",
           "Is there any {a} on this ECG?", "Is {a} visible in this ECG recording?"),
        _t(28, VERIFY, "noise", 12, YES_NO,
           "Does this ECG show any kind of noises in lead {lead}?",
           "Is lead {lead} of this ECG affected by any noise?",
           "Is there any interference or distortion in lead {lead} on this ECG?",
           "Does lead {lead} on this ECG have any noise that can be detected?"),
        _t(30, CHOOSE, "noise", 1.5, (*F.NOISES, NONE),
           "Which noise does this ECG show, {a} or {b}?",
           "Is this ECG affected by {a} or {b}?",
           "Which kind of noise is present on this ECG, {a} or {b}?",
           "Does this recording contain {a} or {b}?"),
        _t(31, CHOOSE, "noise", 8, (*F.NOISES, NONE),
           "Which noise does this ECG show in lead {lead}, {a} or {b}?",
           "Is lead {lead} affected by {a} or {b}?",
           "Which kind of noise does lead {lead} show, {a} or {b}?",
           "In lead {lead}, is there {a} or {b}?"),
        _t(32, QUERY, "noise", 1, (*F.NOISES, NONE),
           "What kind of noises does this ECG show?", "Which noises affect this ECG?",
           "What kinds of interference are present on this ECG?",
           "What noise can be seen in this recording?"),
        _t(33, QUERY, "noise", 5, (*F.NOISES, NONE),
           "What kind of noises does this ECG show in lead {lead}?",
           "Which noises affect lead {lead} of this ECG?",
           "What interference is present in lead {lead}?",
           "What noise can be seen in lead {lead} of this recording?"),
        _t(34, QUERY, "noise", 5, (*LEAD_ANSWERS, NONE),
           "What leads of this ECG show {a}?", "Which leads are affected by {a}?",
           "In which leads does {a} appear?", "What leads of this recording contain {a}?"),
        _t(35, VERIFY, "extra_systole", 1.5, YES_NO,
           "Does this ECG show {a}?", "Are there {a} on this ECG?",
           "Does this recording contain {a}?", "Can {a} be seen on this ECG?"),
        _t(37, CHOOSE, "extra_systole", 1, (*F.EXTRASYSTOLES, NONE),
           "Which type of extrasystoles does this ECG show, {a} or {b}?",
           "Does this ECG show {a} or {b}?",
           "Are the extra beats on this ECG {a} or {b}?",
           "Which extrasystoles can be seen, {a} or {b}?"),
        _t(38, QUERY, "extra_systole", 1, (F.SVES, F.VES, NONE),
           "What type of extrasystoles does this ECG show?",
           "Which extrasystoles are present on this ECG?",
           "What kind of extra beats does this ECG show?",
           "What extrasystoles can be seen in this recording?"),
        _t(39, VERIFY, "numeric_feature", 2, YES_NO,
           "Is the {feature} of this ECG {a}?", "Is this ECG's {feature} {a}?",
           "Does this ECG have a {feature} {a}?", "Would the {feature} of this ECG be {a}?"),
        _t(40, CHOOSE, "numeric_feature", 2, (*RANGE_LABELS, NONE),
           "Which range is the {feature} of this ECG in, {a} or {b}?",
           "Is the {feature} of this ECG {a} or {b}?",
           "Does this ECG have a {feature} {a} or {b}?",
           "Where is the {feature} of this ECG, {a} or {b}?"),
        _t(41, QUERY, "numeric_feature", 3, RANGE_LABELS,
           "What range is the {feature} of this ECG in?",
           "Where does the {feature} of this ECG fall relative to the normal range?",
           "How does the {feature} of this ECG compare to the normal range?",
           "In which range is this ECG's {feature}?"),
        _t(42, QUERY, "numeric_feature", 2, (*FEATURES, NONE),
           "What numeric features of this ECG are {a}?",
           "Which measurements of this ECG are {a}?",
           "Which of this ECG's intervals are {a}?",
           "What numeric features are {a} on this ECG?"),
    )
}  # fmt: skip


# ------------------------------------------------------------------------------ per-template answers

Builder = Callable[[Facts, np.random.Generator], tuple[tuple[str, ...], tuple[str, ...], dict] | None]
"""(answer, attribute, fill) for one ECG, or None if this template cannot be asked of it."""


def _choice(rng: np.random.Generator, items) -> str:
    items = sorted(items)
    return items[int(rng.integers(len(items)))]


def _verify(positives: set[str], vocabulary: tuple[str, ...], rng: np.random.Generator, want_yes: bool):
    """A yes or a no question; None when the wanted side is empty."""
    negatives = set(vocabulary) - positives
    pool = positives if want_yes else negatives
    if not pool:
        return None
    return (YES if want_yes else NO), _choice(rng, pool)


def _pair(positives: set[str], vocabulary: tuple[str, ...], rng: np.random.Generator):
    """Two offered options, at least one of them present in 3 of 4 questions."""
    vocab = sorted(set(vocabulary))
    if len(vocab) < 2:
        return None
    if positives and rng.random() < 0.75:
        first = _choice(rng, positives)
        second = _choice(rng, set(vocab) - {first})
        pair = [first, second] if rng.random() < 0.5 else [second, first]
    else:
        idx = rng.choice(len(vocab), size=2, replace=False)
        pair = [vocab[int(i)] for i in idx]
    answer = tuple(p for p in pair if p in positives) or (NONE,)
    return answer, tuple(pair)


def _lead_set(facts: Facts, finding: str) -> tuple[str, ...]:
    if finding in F.NOISES:
        return facts.noise.get(finding, ())
    return facts.lead_findings.get(finding, ())


def _lead_pairs(facts: Facts, kinds: tuple[str, ...]) -> set[str]:
    return {f"{k}|{lead}" for k in kinds for lead in _lead_set(facts, k)}


def _verify_lead(facts: Facts, kinds: tuple[str, ...], rng: np.random.Generator, want_yes: bool):
    """Lead-specific yes/no; half the no's ask about a finding the ECG has, in another lead."""
    positives = _lead_pairs(facts, kinds)
    if want_yes:
        if not positives:
            return None
        kind, lead = _choice(rng, positives).split("|")
        return YES, kind, lead
    present = [k for k in kinds if _lead_set(facts, k)]
    kind = _choice(rng, present) if present and rng.random() < 0.5 else _choice(rng, kinds)
    free = [lead for lead in LEADS if lead not in _lead_set(facts, kind)]
    if not free:
        return None
    return NO, kind, free[int(rng.integers(len(free)))]


def _in_lead(facts: Facts, kinds: tuple[str, ...], lead: str) -> set[str]:
    return {k for k in kinds if lead in _lead_set(facts, k)}


def _pick_lead(facts: Facts, kinds: tuple[str, ...], rng: np.random.Generator) -> str:
    """A lead, biased toward leads with a finding so the answers are not mostly "none"."""
    hit = sorted({lead for k in kinds for lead in _lead_set(facts, k)})
    if hit and rng.random() < 0.6:
        return hit[int(rng.integers(len(hit)))]
    return LEADS[int(rng.integers(len(LEADS)))]


def _defined_features(facts: Facts) -> dict[str, str]:
    return {f: r for f, r in facts.feature_ranges.items() if r is not None}


def _build(tid: int, facts: Facts, rng: np.random.Generator, want_yes: bool):
    """(answer, attribute, fill) of template `tid` for these facts, or None."""
    tpl = TEMPLATES[tid]
    vocab = tuple(c for c in tpl.classes if c != NONE)
    scp = set(facts.scp)
    noises = set(facts.noise)
    if tid == 1:
        got = _verify(scp, SCP_ALL, rng, want_yes)
        return got and ((got[0],), (got[1],), {"a": got[1]})
    if tid in (3, 4, 6, 7):
        positives = {F.SUPERCLASS[s] for s in scp if s in F.SUPERCLASS} if tid == 3 else scp
        got = _pair(positives & set(vocab), vocab, rng)
        return got and (got[0], got[1], {"a": got[1][0], "b": got[1][1]})
    if tid in (8, 10, 11):
        answer = tuple(sorted(scp & set(vocab))) or (NONE,)
        return answer, vocab, {}
    if tid == 12:
        got = _verify_lead(facts, F.LEAD_FORMS, rng, want_yes)
        return got and ((got[0],), (got[1],), {"a": got[1], "lead": got[2]})
    if tid in (13, 31):
        kinds = F.LEAD_FORMS if tid == 13 else F.NOISES
        lead = _pick_lead(facts, kinds, rng)
        got = _pair(_in_lead(facts, kinds, lead), kinds, rng)
        return got and (got[0], got[1], {"a": got[1][0], "b": got[1][1], "lead": lead})
    if tid in (18, 33):
        kinds = F.LEAD_FORMS if tid == 18 else F.NOISES
        lead = _pick_lead(facts, kinds, rng)
        answer = tuple(sorted(_in_lead(facts, kinds, lead))) or (NONE,)
        return answer, vocab, {"lead": lead}
    if tid in (19, 34):
        kinds = F.LEAD_FORMS if tid == 19 else F.NOISES
        present = [k for k in kinds if _lead_set(facts, k)]
        if not present:
            return None
        kind = _choice(rng, present)
        answer = tuple(f"lead {lead}" for lead in _lead_set(facts, kind))
        return answer, (kind,), {"a": kind}
    if tid == 20:
        got = _verify({facts.axis}, F.AXES, rng, want_yes)
        return got and ((got[0],), (got[1],), {"a": got[1]})
    if tid == 21:
        got = _pair({facts.axis}, F.AXES, rng)
        return got and (got[0], got[1], {"a": got[1][0], "b": got[1][1]})
    if tid == 22:
        return (facts.axis,), vocab, {}
    stages = tuple(F.STAGES.values())
    if tid == 23:
        got = _verify({facts.stage} if facts.stage else set(), stages, rng, want_yes)
        return got and ((got[0],), (got[1],), {"a": got[1]})
    if tid == 24:
        got = _pair({facts.stage} if facts.stage else set(), stages, rng)
        return got and (got[0], got[1], {"a": got[1][0], "b": got[1][1]})
    if tid == 25:
        return (facts.stage or F.NO_STAGE,), vocab, {}
    if tid == 26:
        got = _verify_lead(facts, F.NOISES, rng, want_yes)
        return got and ((got[0],), (got[1],), {"a": got[1], "lead": got[2]})
    if tid == 27:
        got = _verify(noises, F.NOISES, rng, want_yes)
        return got and ((got[0],), (got[1],), {"a": got[1]})
    if tid == 28:
        noisy = {lead for leads in facts.noise.values() for lead in leads}
        got = _verify(noisy, LEADS, rng, want_yes)
        return got and ((got[0],), (F.ANY_NOISE,), {"lead": got[1]})
    if tid == 30:
        got = _pair(noises, F.NOISES, rng)
        return got and (got[0], got[1], {"a": got[1][0], "b": got[1][1]})
    if tid == 32:
        return tuple(sorted(noises)) or (NONE,), vocab, {}
    extra = {facts.extrasystole, F.ANY_EXTRASYSTOLE} if facts.extrasystole else set()
    if tid == 35:
        got = _verify(extra, F.EXTRASYSTOLES, rng, want_yes)
        return got and ((got[0],), (got[1],), {"a": got[1]})
    if tid == 37:
        got = _pair(extra - {F.ANY_EXTRASYSTOLE}, (F.SVES, F.VES), rng)
        return got and (got[0], got[1], {"a": got[1][0], "b": got[1][1]})
    if tid == 38:
        return ((facts.extrasystole or NONE),), vocab, {}
    features = _defined_features(facts)
    if tid in (39, 40, 41):
        feature = _choice(rng, features)
        true_range = features[feature]
        if tid == 41:
            return (true_range,), (feature,), {"feature": feature}
        if tid == 39:
            got = _verify({true_range}, RANGE_LABELS, rng, want_yes)
            return got and ((got[0],), (feature, got[1]), {"feature": feature, "a": got[1]})
        got = _pair({true_range}, RANGE_LABELS, rng)
        return got and (got[0], got[1], {"feature": feature, "a": got[1][0], "b": got[1][1]})
    if tid == 42:
        by_range = {r: tuple(f for f in FEATURES if features.get(f) == r) for r in RANGE_LABELS}
        ranges = [r for r, fs in by_range.items() if fs]
        chosen = _choice(rng, ranges)
        return by_range[chosen], (chosen,), {"a": chosen}
    raise KeyError(f"no builder for template {tid}")


_IDS = tuple(sorted(TEMPLATES))
_CUMULATIVE = np.cumsum([TEMPLATES[t].weight for t in _IDS]) / sum(TEMPLATES[t].weight for t in _IDS)


CANDIDATES = 6
"""Tries of a template per drawn question before another template is drawn."""
FLAT_OVER: dict[str, int] = {VERIFY: 2, CHOOSE: 3, QUERY: 3}
"""Per question type, how many of a question's most offered answers are thinned to equal rates."""
MIN_TARGET = 2.0
"""Offer count below which nothing is thinned (early in the stream, and for one-answer keys)."""

Key = tuple
"""A level at which a blind model counts answers: (template,) or (template, attribute set)."""


def _keys(tid: int, attribute: tuple[str, ...]) -> tuple[Key, ...]:
    return (tid,), (tid, frozenset(attribute))


class Offers:
    """How often each answer of one key was offered, with its three most offered answers at hand."""

    def __init__(self) -> None:
        self.counts: Counter[frozenset[str]] = Counter()
        self.top: list[tuple[int, frozenset[str]]] = []  # (count, label), most offered first, ≤ 3

    def add(self, label: frozenset[str]) -> None:
        self.counts[label] += 1
        count, top = self.counts[label], self.top
        if len(top) == 3 and count <= top[-1][0] and all(item[1] != label for item in top):
            return  # still outside the top three: the common case, kept cheap
        rest = [item for item in top if item[1] != label]
        self.top = sorted([(count, label), *rest], key=lambda item: -item[0])[:3]

    def keep_rate(self, label: frozenset[str], flat_over: int) -> float:
        """Keep rate that gives `label` as many questions as the key's `flat_over`-th most offered
        answer gets unthinned (at least `MIN_TARGET`), so the top `flat_over` answers are equal."""
        target = self.top[flat_over - 1][0] if len(self.top) >= flat_over else 0
        return min(1.0, max(float(target), MIN_TARGET) / self.counts[label])


@dataclass
class AnswerBalance:
    """What keeps a blind model from answering well.

    A blind model learns which answer is most frequent for each template and attribute. Every
    candidate question is counted as offered at each `Key` level, and kept with the rate
    that thins its answer to the offer count of the key's `FLAT_OVER`-th most offered answer, so
    "none" and the common classes are asked no more often than the rarer ones. The rates come from
    offers, not from the answers already given, so each ECG's questions stay an independent draw:
    the test split does not mirror or complement the training split. `offers` may be shared by all
    splits; `yes_minus_no` (one per split) makes each verify question want whichever answer is
    behind, so yes and no stay balanced although most findings are absent from most ECGs.
    """

    offers: dict[Key, Offers] = field(default_factory=lambda: defaultdict(Offers))
    yes_minus_no: int = 0

    def keep_rate(self, qtype: str, keys: tuple[Key, ...], answer: tuple[str, ...]) -> float:
        label = frozenset(answer)
        rate = 1.0
        for key in keys:
            self.offers[key].add(label)
        for key in keys:
            rate = min(rate, self.offers[key].keep_rate(label, FLAT_OVER[qtype]))
        return rate

    def record(self, question: Question) -> None:
        if question.question_type == VERIFY:
            self.yes_minus_no += 1 if question.answer[0] == YES else -1


def _candidate(
    tid: int, facts: Facts, rng: np.random.Generator, balance: AnswerBalance, seen: set[str], thin: bool,
):
    """The first of up to `CANDIDATES` draws of template `tid` that its keep rate keeps (any, if
    not `thin`): (answer, attribute, fill, text), or None."""
    tpl = TEMPLATES[tid]
    want_yes = balance.yes_minus_no <= 0
    tried: set[str] = set()
    for _ in range(CANDIDATES):
        built = _build(tid, facts, rng, want_yes)
        if built is None:
            return None
        answer, attribute, fill = built
        text = tpl.paraphrases[0].format(**fill)
        if text in seen or text in tried:
            continue  # one chance per question, else retries would undo the thinning
        tried.add(text)
        keys = _keys(tid, attribute)
        if not thin or rng.random() < balance.keep_rate(tpl.question_type, keys, answer):
            return answer, attribute, fill, text
    return None


def ask(facts: Facts, n: int, rng: np.random.Generator, balance: AnswerBalance) -> list[Question]:
    """n distinct questions about one ECG, templates drawn by weight, answers thinned to be flat.

    A template's candidate question for this ECG is kept with its answer's keep rate (see
    `AnswerBalance`); after `CANDIDATES` misses another template is drawn. An ECG that has not
    got its n questions after `30 n` draws (about 1 in 100 questions) gets the rest unthinned.
    Answers always follow the facts; only which question is asked depends on them.
    """
    out: list[Question] = []
    seen: set[str] = set()
    for attempt in range(60 * n):
        if len(out) == n:
            break
        tid = _IDS[min(int(np.searchsorted(_CUMULATIVE, rng.random(), side="right")), len(_IDS) - 1)]
        picked = _candidate(tid, facts, rng, balance, seen, thin=attempt < 30 * n)
        if picked is None:
            continue
        answer, attribute, fill, text = picked
        seen.add(text)
        tpl = TEMPLATES[tid]
        paraphrase = tpl.paraphrases[int(rng.integers(len(tpl.paraphrases)))].format(**fill)
        question = Question(tid, tpl.question_type, tpl.attribute_type, text, paraphrase,
                            tuple(answer), tuple(attribute))  # fmt: skip
        balance.record(question)
        out.append(question)
    return out
