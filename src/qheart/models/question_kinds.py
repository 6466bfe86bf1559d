"""Free questions → a question type and Table 1 options, via the templates seen in training.

A person asks in their own words; the model was trained on ECG-QA's templates. The question is
matched to the training template whose example questions share the most words (Jaccard), and
that template's type and options are used; attributes the question names (for choose
questions) become the options. What was assumed is returned as notes, so a user can check it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qheart.data.ecgqa import QASample
from qheart.data.options import VERIFY_OPTIONS, OptionsError, candidate_options, normalize_answer

_WORD = re.compile(r"[a-z0-9]+")
MIN_SIMILARITY = 0.25
"""Below this word overlap no template is trusted and the fallback rule decides."""
_VERIFY_OPENINGS = ("is", "does", "do", "are", "was", "were", "has", "have", "can")


@dataclass(frozen=True)
class ResolvedQuestion:
    question_type: str
    options: list[str]
    template_id: int | None
    notes: list[str]


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _mentioned(question: str, vocabulary: list[str]) -> list[str]:
    text = f" {normalize_answer(question)} "
    found = [v for v in vocabulary if v.lower() != "none" and f" {normalize_answer(v)}" in text]
    # drop an option contained in a longer one that is also named ("lead i" inside "lead ii")
    return [v for v in found
            if not any(v != w and normalize_answer(v) in normalize_answer(w) for w in found)]


def question_type_of(question: str, template_options: dict[int, list[str]]) -> str:
    """ECG-QA's question type from the wording: two named findings joined by "or" → choose;
    a yes/no opening → verify; anything else → query."""
    vocabulary = sorted({o for options in template_options.values() for o in options})
    if " or " in f" {question.lower()} " and len(_mentioned(question, vocabulary)) >= 2:
        return "single-choose"
    first = next(iter(_WORD.findall(question.lower())), "")
    return "single-verify" if first in _VERIFY_OPENINGS else "single-query"


def catalogue_template_options(catalogue: dict) -> dict[int, list[str]]:
    """Template id → its options, from a model folder's questions.json catalogue."""
    return {int(k): v for k, v in catalogue.get("template_options", {}).items()}


def resolve_question(question: str, catalogue: dict) -> ResolvedQuestion:
    """Type and options for a free question, from `questions.json` of a model folder."""
    templates: dict = catalogue.get("templates", {})
    template_options = catalogue_template_options(catalogue)
    words = _words(question)
    kind = question_type_of(question, template_options)
    candidates = {t: e for t, e in templates.items() if e["question_type"] == kind} or templates
    best, best_score = None, 0.0
    for template_id, entry in candidates.items():
        for example in entry["examples"]:
            other = _words(example)
            score = len(words & other) / max(len(words | other), 1)
            if score > best_score:
                best, best_score = template_id, score
    if best is None or best_score < MIN_SIMILARITY:
        first = next(iter(_WORD.findall(question.lower())), "")
        if first in _VERIFY_OPENINGS:
            return ResolvedQuestion("single-verify", list(VERIFY_OPTIONS), None,
                                    ["no training template resembles this question; taken as a "
                                     "yes/no question"])
        raise OptionsError("no training template resembles this question and it is not a yes/no "
                           "question: pass the options explicitly")
    entry = templates[best]
    qtype = entry["question_type"]
    notes = [f"taken as template {best} ({qtype}, {entry['attribute_type']}; word overlap "
             f"{best_score:.2f}), e.g. \"{entry['examples'][0]}\""]
    attributes = None
    if qtype == "single-choose":
        attributes = tuple(_mentioned(question, template_options.get(int(best), entry["options"])))
        if not attributes:
            notes.append("the question names none of the template's findings; offering all")
            attributes = None
    sample = QASample(sample_id=-1, question_id=-1, template_id=int(best), question_type=qtype,
                      attribute_type=entry["attribute_type"], question=question, answer=(),
                      ecg_id=-1, attribute=attributes)
    try:
        options = candidate_options(sample, template_options)
    except OptionsError:
        options = list(entry["options"])
    return ResolvedQuestion(qtype, options, int(best), notes)
