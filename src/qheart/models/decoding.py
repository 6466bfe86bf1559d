"""Turning prompts into answers: option ranking (always valid) and greedy generation (the
paper's free text, parsed back to options).

Rank decoding scores every Table 1 option as the complete answer: each prompt runs through the
LLM once, every option continues it from its key/value states (a query question's 20 options
cost 20 short tails, not 20 prompts), summed answer-token log-probabilities, softmax over the
options. Single-answer questions take the best option.

Multi-answer questions (leads, numeric features, findings lists) need a rule for how many
options to return. The model was trained to write a gold set as its options joined in their
canonical order ("lead I, lead V1, lead V2"), so a set has a probability of its own: the default
rule, `grow`, starts from the best single option and adds, one at a time, the option whose set
is more probable than the set without it, until no addition helps — a greedy search for the
model's most probable set, with nothing to tune. `threshold` (the earlier rule) keeps every
option whose single-option probability is at least `multi_threshold` × the best one's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch

from qheart.data.options import RANGE_OPTIONS, answer_set
from qheart.models.prompts import ANSWER_SEPARATOR, PromptText, PromptTokenizer, pad_right
from qheart.models.qheart_model import QHeartModel

MultiRule = Literal["grow", "threshold"]
MULTI_RULES: tuple[str, ...] = ("grow", "threshold")
MULTI_RULE: MultiRule = "grow"
"""How rank decoding sizes a multi-answer set; chosen on the validation split with
benchmarks/bench_multi_answer.py (docs/experiments/instruction-tuning.md gives the numbers)."""

MULTI_THRESHOLD = 0.7
"""The `threshold` rule: an extra option joins a multi-answer set when its probability ≥ this ×
the best option's. Chosen on the validation split (benchmarks/bench_multi_threshold.py, since renamed bench_multi_answer.py, the
demo's 7-minute model, 200 query questions): EM 0.130 at 0.05–0.3, 0.160 at 0.5, 0.175 at 0.7
and 0.9, 0.170 for the best option alone — within noise of each other."""

GROW_LOOKAHEAD = 3
"""Additions that do not help which the `grow` search still tries before it stops (a set of
four leads can beat one lead while every set of two is worse). Chosen on the validation split
(benchmarks/bench_multi_answer.py, 200 query questions, the 60-minute models of `runs/h12`):
Q-HEART EM 0.350 / 0.355 / 0.370 / 0.380 / 0.380 at lookahead 0 / 1 / 2 / 3 / 11, deaf 0.375 /
0.375 / 0.390 / 0.390 / 0.390, blind 0.205 throughout; the `threshold` rule at 0.7 gave 0.270 /
0.305 / 0.125."""

MAX_GROWN = 12
"""At most this many options in a grown set (the 12 leads; a bound on the search's rounds)."""

AnswerScorer = Callable[[Sequence[tuple[int, str]]], np.ndarray]
"""(question index, answer text) pairs → each answer's summed log-probability."""


def _signals_for(signals: torch.Tensor | None, rows: Sequence[int], device) -> tuple:
    if signals is None:
        return None, None
    return signals.to(device), torch.as_tensor(list(rows), dtype=torch.long, device=device)


def answer_scorer(model: QHeartModel, prompts: PromptTokenizer, texts: Sequence[PromptText],
                  signals: torch.Tensor | None, max_batch: int = 64) -> AnswerScorer:
    """Run every prompt through the LLM once; the returned function scores answers to them
    (any text, as the complete assistant turn) from the prompts' key/value states.
    signals: (B, 12, n) one ECG per question (or None for a blind model)."""
    device = next(model.parameters()).device
    encoded = [prompts.context(text) for text in texts]
    prompt_ids, prompt_mask = pad_right([ids + prompts.question(text)
                                         for (ids, _), text in zip(encoded, texts, strict=True)],
                                        prompts.placeholder_id)
    sig, index = _signals_for(signals, range(len(texts)), device)
    with torch.no_grad():
        context = model.encode_context(prompt_ids.to(device), prompt_mask.to(device),
                                       torch.as_tensor([s for _, s in encoded], device=device),
                                       sig, index)

    @torch.no_grad()
    def score(pairs: Sequence[tuple[int, str]]) -> np.ndarray:
        flat = [(q, prompts.answer(answer)) for q, answer in pairs]
        scores = np.empty(len(flat), dtype=np.float64)
        for start in range(0, len(flat), max_batch):
            part = flat[start : start + max_batch]
            tail_ids, tail_mask = pad_right([ids for _, ids in part], prompts.placeholder_id)
            owner = torch.as_tensor([q for q, _ in part], device=device)
            lp = model.tail_logprobs(context, owner, tail_ids.to(device), tail_mask.to(device))
            scores[start : start + len(part)] = lp.cpu().numpy()
        return scores

    return score


def option_logprobs(model: QHeartModel, prompts: PromptTokenizer, texts: Sequence[PromptText],
                    options: Sequence[Sequence[str]], signals: torch.Tensor | None,
                    max_batch: int = 64) -> list[np.ndarray]:
    """Per question, the summed log-probability of each option as the whole answer."""
    score = answer_scorer(model, prompts, texts, signals, max_batch)
    return split_scores(score([(q, o) for q, opts in enumerate(options) for o in opts]), options)


def split_scores(flat: np.ndarray, options: Sequence[Sequence[str]]) -> list[np.ndarray]:
    out, position = [], 0
    for opts in options:
        out.append(flat[position : position + len(opts)])
        position += len(opts)
    return out


def _is_none(option: str) -> bool:
    return option.strip().lower() == "none"


GrowPath = list[tuple[tuple[int, ...], float]]
"""The sets the `grow` search visited, in order, each with its log-probability."""


def grow_paths(options: Sequence[Sequence[str]], first: Sequence[int],
               first_logprobs: Sequence[float], score: AnswerScorer,
               lookahead: int = 0, max_size: int = MAX_GROWN) -> list[GrowPath]:
    """The `grow` search: per question, start from option `first` (its log-probability as the
    whole answer given) and add, one round at a time, the option that makes the most probable
    set; stop once `lookahead` + 1 additions in a row made no set more probable than the best
    so far (0: at the first addition that does not help). A set is written as the model was
    trained to write it: its options joined in their listed (canonical) order. "none" neither
    grows nor joins. All questions still growing are scored together, one batch per round."""
    paths: list[GrowPath] = [[((int(i),), float(lp))] for i, lp in zip(first, first_logprobs,
                                                                       strict=True)]
    growing = [q for q in range(len(options)) if not _is_none(options[q][first[q]])]
    while growing:
        candidates = [(q, i) for q in growing if len(paths[q][-1][0]) < max_size
                      for i, option in enumerate(options[q])
                      if i not in paths[q][-1][0] and not _is_none(option)]
        if not candidates:
            break
        scores = score([(q, ANSWER_SEPARATOR.join(options[q][j]
                                                  for j in sorted({*paths[q][-1][0], i})))
                        for q, i in candidates])
        top: dict[int, tuple[float, int]] = {}
        for (q, i), s in zip(candidates, scores, strict=True):
            if q not in top or s > top[q][0]:
                top[q] = (float(s), i)
        for q, (s, i) in top.items():
            paths[q].append((tuple(sorted({*paths[q][-1][0], i})), s))
        growing = [q for q in top if _misses(paths[q]) <= lookahead]
    return paths


def _misses(path: GrowPath) -> int:
    """Additions since the most probable set so far."""
    best = max(range(len(path)), key=lambda k: path[k][1])  # first of equals
    return len(path) - 1 - best


def best_on_path(path: GrowPath, lookahead: int = 0) -> list[int]:
    """The most probable set the search with this `lookahead` would have reached on `path`
    (a path searched with a larger lookahead answers for every smaller one)."""
    for end in range(1, len(path) + 1):
        if _misses(path[:end]) > lookahead:
            break
    else:
        end = len(path)
    visited = path[:end]
    return list(max(visited, key=lambda step: step[1])[0])


def grow_answer_sets(options: Sequence[Sequence[str]], first: Sequence[int],
                     first_logprobs: Sequence[float], score: AnswerScorer,
                     lookahead: int = GROW_LOOKAHEAD, max_size: int = MAX_GROWN
                     ) -> list[list[int]]:
    """The `grow` rule's answer per question: the most probable set its search visited."""
    return [best_on_path(path, lookahead)
            for path in grow_paths(options, first, first_logprobs, score, lookahead, max_size)]


def grow_questions(score: AnswerScorer, options: Sequence[Sequence[str]],
                   logprobs: Sequence[np.ndarray], which: Sequence[int],
                   lookahead: int = GROW_LOOKAHEAD) -> dict[int, GrowPath]:
    """The grow search's path for the questions `which` of a batch scored by `score`, each
    starting from its best single option (`logprobs`: each option as the whole answer)."""
    firsts = [int(np.argmax(logprobs[q])) for q in which]
    paths = grow_paths([options[q] for q in which], firsts,
                       [float(logprobs[q][i]) for q, i in zip(which, firsts, strict=True)],
                       lambda pairs: score([(which[k], answer) for k, answer in pairs]),
                       lookahead)
    return dict(zip(which, paths, strict=True))


def choose(options: Sequence[str], logprobs: np.ndarray, *, multi: bool,
           threshold: float = MULTI_THRESHOLD) -> tuple[list[str], dict[str, float]]:
    """(answer set in the options' order, probability per option)."""
    probs = np.exp(logprobs - logprobs.max())
    probs /= probs.sum()
    best = int(np.argmax(probs))
    keep = {best}
    if multi:
        keep |= {i for i, p in enumerate(probs) if p >= threshold * probs[best]}
        if "none" in [o.lower() for o in options] and len(keep) > 1:
            keep.discard(next(i for i, o in enumerate(options) if o.lower() == "none"))
    return ([options[i] for i in sorted(keep)],
            {o: round(float(p), 6) for o, p in zip(options, probs, strict=True)})


_RANGES = answer_set(RANGE_OPTIONS)


def is_multi_answer(question_type: str, options: Sequence[str] = ()) -> bool:
    """Query questions (leads, numeric features, findings lists) may have several answers, except
    "what range" ones: the three ranges split the number line, so exactly one holds (ECG-QA's
    answers for that template are one range, or `none`)."""
    return question_type == "single-query" and answer_set(options) != _RANGES


def rank_decode(model: QHeartModel, prompts: PromptTokenizer, texts: Sequence[PromptText],
                options: Sequence[Sequence[str]], question_types: Sequence[str],
                signals: torch.Tensor | None, multi_rule: MultiRule = MULTI_RULE
                ) -> list[tuple[list[str], dict[str, float]]]:
    """(answer set, option probabilities) per question; answers are always options. The
    probabilities are of each option as the whole answer (what the `threshold` rule reads)."""
    if multi_rule not in MULTI_RULES:
        raise ValueError(f"multi_rule must be one of {MULTI_RULES}, not {multi_rule!r}")
    score = answer_scorer(model, prompts, texts, signals)
    logprobs = split_scores(score([(q, o) for q, opts in enumerate(options) for o in opts]),
                            options)
    multi = [is_multi_answer(qtype, opts) for opts, qtype in zip(options, question_types,
                                                                   strict=True)]
    out = [choose(opts, lp, multi=m and multi_rule == "threshold")
           for opts, lp, m in zip(options, logprobs, multi, strict=True)]
    if multi_rule == "grow":
        paths = grow_questions(score, options, logprobs, [q for q, m in enumerate(multi) if m])
        for q, path in paths.items():
            out[q] = ([options[q][i] for i in best_on_path(path, GROW_LOOKAHEAD)], out[q][1])
    return out


@torch.no_grad()
def generate(model: QHeartModel, prompts: PromptTokenizer, texts: Sequence[PromptText],
             signals: torch.Tensor | None, max_new_tokens: int = 32) -> list[str]:
    """Greedy generation (left-padded batch, KV cache), decoded to text."""
    device = next(model.parameters()).device
    encoded = [prompts.encode(text, None) for text in texts]
    width = max(len(ids) for ids, _, _ in encoded)
    pad = prompts.placeholder_id
    input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    starts = []
    for i, (ids, _, start) in enumerate(encoded):
        offset = width - len(ids)  # left padding: every prompt ends where generation starts
        input_ids[i, offset:] = torch.as_tensor(ids)
        mask[i, offset:] = 1
        starts.append(start + offset if start >= 0 else -1)
    sig, index = _signals_for(signals, range(len(encoded)), device)
    embeds = model.input_embeddings(input_ids.to(device), torch.as_tensor(starts, device=device),
                                    sig, index)
    end_ids = [i for i in {prompts.end_ids[0], prompts.tokenizer.eos_token_id} if i is not None]
    output = model.causal_lm.generate(inputs_embeds=embeds, attention_mask=mask.to(device),
                                      max_new_tokens=max_new_tokens, do_sample=False,
                                      eos_token_id=end_ids, pad_token_id=pad)
    return [prompts.tokenizer.decode(row, skip_special_tokens=True).strip() for row in output]
