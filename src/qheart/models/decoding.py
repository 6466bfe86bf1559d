"""Turning prompts into answers: option ranking (always valid) and greedy generation (the
paper's free text, parsed back to options).

Rank decoding scores every Table 1 option as the complete answer: each prompt runs through the
LLM once, every option continues it from its key/value states (a query question's 20 options
cost 20 short tails, not 20 prompts), summed answer-token log-probabilities, softmax over the
options.
Single-answer questions take the best option. Multi-answer questions (leads, numeric features,
findings lists) also take every other option whose probability is at least `multi_threshold`
of the best one's (relative, so it does not depend on how many options there are).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from qheart.data.options import RANGE_OPTIONS, answer_set
from qheart.models.prompts import PromptText, PromptTokenizer, pad_right
from qheart.models.qheart_model import QHeartModel

MULTI_THRESHOLD = 0.7
"""An extra option joins a multi-answer set when its probability ≥ this × the best option's.
Chosen on the validation split (benchmarks/bench_multi_threshold.py, the demo's 7-minute model,
200 query questions): EM 0.130 at 0.05–0.3, 0.160 at 0.5, 0.175 at 0.7 and 0.9, 0.170 for the
best option alone — within noise of each other; 0.7 is the best that still returns several."""


def _signals_for(signals: torch.Tensor | None, rows: Sequence[int], device) -> tuple:
    if signals is None:
        return None, None
    return signals.to(device), torch.as_tensor(list(rows), dtype=torch.long, device=device)


@torch.no_grad()
def option_logprobs(model: QHeartModel, prompts: PromptTokenizer, texts: Sequence[PromptText],
                    options: Sequence[Sequence[str]], signals: torch.Tensor | None,
                    max_batch: int = 64) -> list[np.ndarray]:
    """Per question, the summed log-probability of each option as the whole answer.
    signals: (B, 12, n) one ECG per question (or None for a blind model)."""
    device = next(model.parameters()).device
    encoded = [prompts.context(text) for text in texts]
    prompt_ids, prompt_mask = pad_right([ids + prompts.question(text)
                                         for (ids, _), text in zip(encoded, texts, strict=True)],
                                        prompts.placeholder_id)
    sig, index = _signals_for(signals, range(len(texts)), device)
    context = model.encode_context(prompt_ids.to(device), prompt_mask.to(device),
                                   torch.as_tensor([s for _, s in encoded], device=device),
                                   sig, index)
    flat = [(q, prompts.answer(option)) for q, opts in enumerate(options) for option in opts]
    scores = np.empty(len(flat), dtype=np.float64)
    for start in range(0, len(flat), max_batch):
        part = flat[start : start + max_batch]
        tail_ids, tail_mask = pad_right([ids for _, ids in part], prompts.placeholder_id)
        owner = torch.as_tensor([q for q, _ in part], device=device)
        lp = model.tail_logprobs(context, owner, tail_ids.to(device), tail_mask.to(device))
        scores[start : start + len(part)] = lp.cpu().numpy()
    out, position = [], 0
    for opts in options:
        out.append(scores[position : position + len(opts)])
        position += len(opts)
    return out


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
                signals: torch.Tensor | None) -> list[tuple[list[str], dict[str, float]]]:
    """(answer set, option probabilities) per question; answers are always options."""
    logprobs = option_logprobs(model, prompts, texts, options, signals)
    return [choose(opts, lp, multi=is_multi_answer(qtype, opts))
            for opts, lp, qtype in zip(options, logprobs, question_types, strict=True)]


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
