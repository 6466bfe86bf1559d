"""Free questions → a question type and Table 1 options, via the templates seen in training.

A person asks in their own words; the model was trained on ECG-QA's templates. The question is
matched to the training template whose example questions share the most words (Jaccard, with
every named lead counted as one slot word, so "… in lead V4?" matches the per-lead template
whatever the lead), and
that template's type and options are used; attributes the question names (for choose
questions) become the options. What was assumed is returned as notes, so a user can check it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qheart.data.ecgqa import QASample
from qheart.data.options import VERIFY_OPTIONS, OptionsError, candidate_options

_WORD = re.compile(r"[a-z0-9]+")
MIN_SIMILARITY = 0.25
"""Below this word overlap no template is trusted and the fallback rule decides."""
_VERIFY_OPENINGS = ("is", "does", "do", "are", "was", "were", "has", "have", "can")
_QUERY_OPENINGS = ("which", "what", "where", "how", "when")


@dataclass(frozen=True)
class ResolvedQuestion:
    question_type: str
    options: list[str]
    template_id: int | None
    notes: list[str]


def _phrase(text: str) -> str:
    """Lower-case words joined by single spaces and padded, for whole-word phrase search."""
    return f" {' '.join(_WORD.findall(text.lower()))} "


def _mentioned(question: str, vocabulary: list[str]) -> list[str]:
    """The vocabulary phrases the question names as whole words ("lead i" is not in "lead ii",
    "ventricular extrasystoles" not in "supraventricular extrasystoles")."""
    text = _phrase(question)
    found = [v for v in vocabulary if v.lower() != "none" and _phrase(v) in text]
    # drop a phrase named only inside longer ones also named ("st elevation" in "non-specific
    # st elevation", "extrasystoles" in "ventricular extrasystoles")
    return [v for v in found
            if text.count(_phrase(v)) > sum(text.count(_phrase(w)) for w in found
                                            if w != v and _phrase(v) in _phrase(w))]


def _skeleton(text: str, leads: list[str]) -> set[str]:
    """The words of `text` with every named lead replaced by one slot word, so "… in lead V4?"
    matches the per-lead template whatever the lead (findings stay: they tell templates
    apart)."""
    phrase = _phrase(text)
    for lead in leads:  # longest first: "lead ii" before "lead i"
        phrase = phrase.replace(_phrase(lead), " <lead> ")
    return set(phrase.split())


def _choice_pair(question: str, mentioned: list[str]) -> list[str]:
    """Of the findings a choose question names, those in its "… or …" clause (a scene-setting
    clause such as "Which extrasystoles can be seen," names the category, not an option)."""
    for clause in question.split(","):
        inside = _mentioned(clause, mentioned)
        if " or " in _phrase(clause) and len(inside) >= 2:
            return inside
    return mentioned


def _opening(question: str) -> str:
    """The first word of the question's main clause: a leading clause that sets the scene ("In
    lead V5, does …") is skipped when the next clause opens a question."""
    clauses = [_WORD.findall(part.lower()) for part in question.split(",")]
    for words in clauses:
        if words and (words[0] in _VERIFY_OPENINGS or words[0] in _QUERY_OPENINGS):
            return words[0]
    return next((words[0] for words in clauses if words), "")


def question_type_of(question: str, template_options: dict[int, list[str]]) -> str:
    """ECG-QA's question type from the wording: two named findings joined by "or" (or after
    "between") → choose;
    a yes/no opening → verify; anything else → query."""
    vocabulary = sorted({o for options in template_options.values() for o in options})
    words = _phrase(question)
    if (" or " in words or " between " in words) and len(_mentioned(question, vocabulary)) >= 2:
        return "single-choose"
    return "single-verify" if _opening(question) in _VERIFY_OPENINGS else "single-query"


def catalogue_template_options(catalogue: dict) -> dict[int, list[str]]:
    """Template id → its options, from a model folder's questions.json catalogue."""
    return {int(k): v for k, v in catalogue.get("template_options", {}).items()}


def resolve_question(question: str, catalogue: dict) -> ResolvedQuestion:
    """Type and options for a free question, from `questions.json` of a model folder."""
    templates: dict = catalogue.get("templates", {})
    template_options = catalogue_template_options(catalogue)
    kind = question_type_of(question, template_options)
    leads = sorted({o for options in template_options.values() for o in options
                    if o.lower().startswith("lead ")}, key=len, reverse=True)
    words = _skeleton(question, leads)
    candidates = {t: e for t, e in templates.items() if e["question_type"] == kind} or templates
    best, best_score = None, 0.0
    for template_id, entry in candidates.items():
        for example in entry["examples"]:
            other = _skeleton(example, leads)
            score = len(words & other) / max(len(words | other), 1)
            if score > best_score:
                best, best_score = template_id, score
    if best is None or best_score < MIN_SIMILARITY:
        if _opening(question) in _VERIFY_OPENINGS:
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
        attributes = tuple(_choice_pair(question, _mentioned(
            question, template_options.get(int(best), entry["options"]))))
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
