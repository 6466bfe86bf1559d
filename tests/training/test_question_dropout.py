"""Question dropout: only training prompts whose options name the candidates lose the question."""

from __future__ import annotations

import pytest

from qheart.data.options import (
    LEAD_OPTIONS,
    RANGE_OPTIONS,
    VERIFY_OPTIONS,
    options_name_the_candidates,
)
from qheart.models.qheart_model import ModelConfig


def test_only_attribute_lists_name_the_candidates() -> None:
    assert options_name_the_candidates(["atrial fibrillation", "sinus rhythm", "none"])
    shuffled_leads = list(reversed(LEAD_OPTIONS))
    for fixed in (VERIFY_OPTIONS, shuffled_leads, RANGE_OPTIONS):
        assert not options_name_the_candidates(fixed)


def test_dropout_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="question_dropout"):
        ModelConfig(question_dropout=1.0)


def _tails(qa_world, model: dict, seed: int | None) -> tuple[list[str], list]:
    from tests.qa_fixtures import decode_rows, training_batch

    batch, tokenizer, data, picks = training_batch(qa_world, model, seed)
    return (decode_rows(tokenizer, batch.tail_ids, batch.tail_mask),
            [data.options[i] for i in picks])


def test_training_prompts_drop_the_question_only_where_the_options_suffice(qa_world) -> None:
    tails, options = _tails(qa_world, {"question_dropout": 0.9}, seed=0)
    named = [options_name_the_candidates(o) for o in options]
    assert any(named) and not all(named)  # the fixture has both kinds
    kept = ["Question:" in t for t in tails]
    assert all(k for k, n in zip(kept, named, strict=True) if not n)  # verify, leads, ranges
    dropped = sum(not k for k, n in zip(kept, named, strict=True) if n)
    assert dropped >= 0.6 * sum(named)  # about 90% of them
    assert all("Options:" in t for t in tails)  # the options always stay
    evaluation, _ = _tails(qa_world, {"question_dropout": 0.9}, seed=None)
    assert all("Question:" in t for t in evaluation)
    blind, _ = _tails(qa_world, {"question_dropout": 0.9, "use_ecg": False}, seed=0)
    assert all("Question:" in t for t in blind)


def test_zero_dropout_leaves_training_prompts_unchanged(qa_world) -> None:
    off, _ = _tails(qa_world, {}, seed=3)
    zero, _ = _tails(qa_world, {"question_dropout": 0.0}, seed=3)
    assert off == zero and all("Question:" in t for t in off)
