"""Question dropout: only training prompts whose options name the candidates lose the question."""

from __future__ import annotations

import numpy as np
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
    from qheart.models.prompts import PromptTokenizer
    from qheart.training.instruct import TrainInputs, build_model, retrieval_cache
    from qheart.training.instruct_data import Benchmark, QASet, make_batch
    from tests.qa_fixtures import tiny_train_config

    config = tiny_train_config(qa_world["llm"], model=model)
    inputs = TrainInputs(Benchmark.from_path(qa_world["bench"]), qa_world["encoder"],
                         qa_world["index"])
    data = QASet.load(inputs.bench, "train", retrieval_cache(inputs, "train", progress=False))
    _, tokenizer = build_model(config, qa_world["encoder"])
    prompts = PromptTokenizer(tokenizer, config.model.n_prefix)
    picks = np.arange(len(data.samples))
    batch = make_batch(data, picks, config.model, prompts, seed=seed, step=0)
    tails = [tokenizer.decode(row[mask.bool()]) for row, mask in zip(batch.tail_ids,
                                                                   batch.tail_mask, strict=True)]
    return tails, [data.options[i] for i in picks]


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
