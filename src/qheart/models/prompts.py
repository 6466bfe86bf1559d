"""Prompts: the chat template, the Table 1 options, the retrieved reports, dynamic prompting.

One prompt = the model's chat template around a user turn that holds (in this order) the 12 ECG
prefix embeddings (at a marked spot), measurements, a retrieved report, the question and the
options; the assistant turn is the gold answer set joined in the options' canonical order.

A prompt is tokenised in three segments so that work can be shared: the *context* (chat head,
ECG prefix, measurements, report — the same for every question about one ECG), the *question*
(question, finding hint, options, the assistant header) and the *answer*. Training runs a context once for
all the questions about its ECG in a batch, and option ranking runs a whole prompt once for all
its options (models/qheart_model.py). Concatenated, the segments are exactly the token ids of
the full prompt, so the shared and the unshared computation are the same function.

Dynamic prompting (training): the options are shuffled and one of the top-3 reports is drawn at
every step, from generators seeded by (seed, step, sample) and (seed, step, ECG). Evaluation is
deterministic: options in their canonical order and the top-1 report — the most similar ECG's
report, and the same one-report format the model saw in training (three reports would be a
format it never saw and a ~3× longer prompt on CPU).
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
    hint: str | None = None
    """The encoder's reading of the findings the question names (models/finding_hints.py):
    question-specific, so it goes in the question part, after the question."""
    asked_measurements: str | None = None
    """The measurements the question names (`measurement_scope="asked"`), after the hint."""


def canonical_answer(answer: Sequence[str], options: Sequence[str]) -> str:
    """The gold set as text, in the options' canonical order (answers outside them last)."""
    wanted = answer_set(answer)
    ordered = [o for o in options if normalize_answer(o) in wanted]
    seen = answer_set(ordered)
    ordered += sorted(a for a in answer if normalize_answer(a) not in seen)
    return ANSWER_SEPARATOR.join(ordered)


@dataclass(frozen=True)
class PromptText:
    """The user turn in its two shareable parts."""

    context: str
    """ECG marker, measurements, report: shared by every question about the same ECG."""
    question: str
    """Question (unless deaf) and options."""

    @property
    def user(self) -> str:
        """The whole user turn, as the model sees it."""
        return f"{self.context}\n{self.question}" if self.context else self.question


def prompt_text(parts: PromptParts, *, with_ecg: bool, with_question: bool) -> PromptText:
    """The user turn. `with_ecg=False` (blind) leaves out the ECG marker; `with_question=False`
    (deaf) leaves out the question."""
    context = []
    if with_ecg:
        context.append(f"ECG: {ECG_MARKER}")
    if parts.measurements:
        context.append(parts.measurements)
    if parts.report:
        context.append(f"Report of a similar ECG: {parts.report}")
    question = [f"Question: {parts.question}"] if with_question else []
    if parts.hint and with_ecg:
        question.append(parts.hint)
    if parts.asked_measurements and with_ecg:
        question.append(parts.asked_measurements)
    question.append("Options: " + "; ".join(parts.options))
    return PromptText("\n".join(context), "\n".join(question))


def user_text(parts: PromptParts, *, with_ecg: bool, with_question: bool) -> str:
    """The whole user turn as one string (for display)."""
    return prompt_text(parts, with_ecg=with_ecg, with_question=with_question).user


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

    def context(self, text: PromptText) -> tuple[list[int], int]:
        """(ids, prefix_start): chat head + context part; prefix_start is where the n_prefix
        placeholders begin (-1 without an ECG marker)."""
        before, marker, after = text.context.partition(ECG_MARKER)
        ids = list(self.head_ids) + self._ids(before)
        prefix_start = -1
        if marker:
            prefix_start = len(ids)
            ids += [self.placeholder_id] * self.n_prefix + self._ids(after)
        return ids, prefix_start

    def question(self, text: PromptText) -> list[int]:
        """Question part + the assistant header: what follows the context up to the answer."""
        separator = "\n" if text.context else ""
        return self._ids(separator + text.question) + list(self.tail_ids)

    def answer(self, answer: str) -> list[int]:
        """The answer's ids and the end-of-turn token(s) that close it."""
        return self._ids(answer) + list(self.end_ids)

    def encode(self, text: PromptText, answer: str | None) -> tuple[list[int], list[int], int]:
        """The whole sequence: (input_ids, labels, prefix_start); labels are -100 except on the
        answer and its end token."""
        ids, prefix_start = self.context(text)
        ids += self.question(text)
        labels = [-100] * len(ids)
        if answer is not None:
            answer_ids = self.answer(answer)
            ids += answer_ids
            labels += answer_ids
        return ids, labels, prefix_start


def pad_right(rows: Sequence[Sequence[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) right-padded rows and their (B, L) 0/1 mask."""
    width = max(len(row) for row in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(list(row), dtype=torch.long)
        mask[i, : len(row)] = 1
    return out, mask


def join_segments(context_ids: torch.Tensor, context_mask: torch.Tensor, tail_ids: torch.Tensor,
                  tail_mask: torch.Tensor, labels: torch.Tensor, context_index: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Whole right-padded sequences from contexts and the tails that continue them:
    (input_ids, mask, labels), with the context's tokens unlabelled."""
    sequences, joined_labels = [], []
    for b, g in enumerate(context_index.tolist()):
        context = context_ids[g, : int(context_mask[g].sum())].tolist()
        tail = tail_ids[b, : int(tail_mask[b].sum())].tolist()
        sequences.append(context + tail)
        joined_labels.append([-100] * len(context) + labels[b, : len(tail)].tolist())
    input_ids, mask = pad_right(sequences, 0)  # pads are masked: any id does
    padded_labels, _ = pad_right(joined_labels, -100)
    return input_ids.to(context_ids.device), mask.to(context_ids.device), \
        padded_labels.to(context_ids.device)


def collate(encoded: list[tuple[list[int], list[int], int]], pad_id: int) -> tuple[torch.Tensor, ...]:
    """Right-pad (ids, labels, prefix_start) triples into (input_ids, mask, labels, starts)."""
    input_ids, mask = pad_right([ids for ids, _, _ in encoded], pad_id)
    labels, _ = pad_right([lab for _, lab, _ in encoded], -100)
    starts = torch.as_tensor([start for _, _, start in encoded], dtype=torch.long)
    return input_ids, mask, labels, starts
