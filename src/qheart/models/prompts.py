"""Prompts: the chat template, the Table 1 options, the retrieved reports, dynamic prompting.

One prompt = the model's chat template around a user turn that holds (in this order) the 12 ECG
prefix embeddings (at a marked spot), a retrieved report, the question and the options; the
assistant turn is the gold answer set joined in the options' canonical order.

Dynamic prompting (training): the options are shuffled and one of the top-3 reports is drawn at
every step, from a generator seeded by (seed, step, sample). Evaluation is deterministic: options
in their canonical order and the top-1 report — the most similar ECG's report, and the same
one-report format the model saw in training (three reports would be a format it never saw and
a ~3× longer prompt on CPU).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from qheart.data.options import answer_set, normalize_answer

ECG_MARKER = "<ecg>"
"""Where the prefix embeddings go in the user turn (replaced by placeholder tokens)."""
SYSTEM_PROMPT = "You answer questions about 12-lead ECGs."
"""Short on purpose: SmolLM2's default system prompt would cost ~20 tokens per question."""
ANSWER_SEPARATOR = ", "


@dataclass(frozen=True)
class PromptParts:
    """What varies between prompts; the switches decide which parts appear."""

    question: str
    options: Sequence[str]
    report: str | None = None
    measurements: str | None = None


def canonical_answer(answer: Sequence[str], options: Sequence[str]) -> str:
    """The gold set as text, in the options' canonical order (answers outside them last)."""
    wanted = answer_set(answer)
    ordered = [o for o in options if normalize_answer(o) in wanted]
    seen = answer_set(ordered)
    ordered += sorted(a for a in answer if normalize_answer(a) not in seen)
    return ANSWER_SEPARATOR.join(ordered)


def user_text(parts: PromptParts, *, with_ecg: bool, with_question: bool) -> str:
    """The user turn. `with_ecg=False` (blind) leaves out the ECG marker; `with_question=False`
    (deaf) leaves out the question."""
    lines = []
    if with_ecg:
        lines.append(f"ECG: {ECG_MARKER}")
    if parts.measurements:
        lines.append(parts.measurements)
    if parts.report:
        lines.append(f"Report of a similar ECG: {parts.report}")
    if with_question:
        lines.append(f"Question: {parts.question}")
    lines.append("Options: " + "; ".join(parts.options))
    return "\n".join(lines)


def shuffled(options: Sequence[str], rng: np.random.Generator) -> list[str]:
    return [options[i] for i in rng.permutation(len(options))]


def pick_report(reports: Sequence[str], rng: np.random.Generator | None) -> str | None:
    """One of the top-k reports at random (training), or the top-1 (evaluation)."""
    if not reports:
        return None
    return reports[0] if rng is None else reports[int(rng.integers(len(reports)))]


class PromptTokenizer:
    """Turns prompt parts into token ids with the prefix placeholders and answer labels.

    The chat template is rendered once around a sentinel, so every prompt is just
    head + user text + tail + answer + end, tokenised in pieces (cached where they never change).
    """

    def __init__(self, tokenizer, n_prefix: int) -> None:
        self.tokenizer = tokenizer
        self.n_prefix = n_prefix
        sentinel = "\x00USER\x00"
        messages = [{"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": sentinel}]
        rendered = tokenizer.apply_chat_template(messages, tokenize=False,
                                                 add_generation_prompt=True)
        with_answer = tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": "\x00ANSWER\x00"}], tokenize=False)
        head, tail = rendered.split(sentinel)
        if not with_answer.startswith(rendered):
            raise ValueError("the chat template renders the assistant turn inconsistently")
        self.end_text = with_answer[len(rendered):].split("\x00ANSWER\x00")[1]
        self.head_ids = self._ids(head)
        self.tail_ids = self._ids(tail)
        self.end_ids = self._ids(self.end_text.rstrip("\n")) or [tokenizer.eos_token_id]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.placeholder_id = int(pad)

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, user: str, answer: str | None) -> tuple[list[int], list[int], int]:
        """(input_ids, labels, prefix_start): labels are -100 except on the answer and its end
        token; prefix_start is where the n_prefix placeholders begin (-1 without a marker)."""
        before, marker, after = user.partition(ECG_MARKER)
        ids = list(self.head_ids) + self._ids(before)
        prefix_start = -1
        if marker:
            prefix_start = len(ids)
            ids += [self.placeholder_id] * self.n_prefix + self._ids(after)
        ids += self.tail_ids
        labels = [-100] * len(ids)
        if answer is not None:
            answer_ids = self._ids(answer) + self.end_ids
            ids += answer_ids
            labels += answer_ids
        return ids, labels, prefix_start


def collate(encoded: list[tuple[list[int], list[int], int]], pad_id: int) -> tuple[torch.Tensor, ...]:
    """Right-pad (ids, labels, prefix_start) triples into tensors."""
    width = max(len(ids) for ids, _, _ in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, (ids, lab, _) in enumerate(encoded):
        input_ids[i, : len(ids)] = torch.as_tensor(ids)
        labels[i, : len(lab)] = torch.as_tensor(lab)
        mask[i, : len(ids)] = 1
    starts = torch.as_tensor([start for _, _, start in encoded], dtype=torch.long)
    return input_ids, mask, labels, starts
