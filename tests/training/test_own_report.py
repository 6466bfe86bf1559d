"""Own-report prompts: training may show an ECG its own report; evaluation never does."""

from __future__ import annotations

import numpy as np
import pytest

from qheart.models.qheart_model import ModelConfig
from qheart.training.instruct_data import draw_report

RETRIEVED = ["report of neighbour 1", "report of neighbour 2", "report of neighbour 3"]
OWN = "the ECG's own report"


def test_rate_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="own_report_rate"):
        ModelConfig(own_report_rate=1.5)


def test_training_draws_the_own_report_at_its_rate() -> None:
    config = ModelConfig(own_report_rate=0.5)
    drawn = [draw_report(config, RETRIEVED, np.random.default_rng(i), OWN) for i in range(400)]
    share = drawn.count(OWN) / len(drawn)
    assert 0.4 < share < 0.6
    assert set(drawn) - {OWN} <= set(RETRIEVED)  # the rest are retrieved reports
    always = ModelConfig(own_report_rate=1.0)
    assert draw_report(always, RETRIEVED, np.random.default_rng(0), OWN) == OWN


def test_evaluation_and_missing_reports_fall_back_to_retrieval() -> None:
    always = ModelConfig(own_report_rate=1.0)
    assert draw_report(always, RETRIEVED, None, OWN) == RETRIEVED[0]  # evaluation: the top-1
    assert draw_report(always, RETRIEVED, np.random.default_rng(0), "") in RETRIEVED
    assert draw_report(ModelConfig(own_report_rate=1.0, use_ecg=False), RETRIEVED,
                       np.random.default_rng(0), OWN) is None  # blind: no report at all


def test_zero_rate_draws_exactly_what_it_drew_before() -> None:
    config = ModelConfig()
    for seed in range(20):
        with_own = draw_report(config, RETRIEVED, np.random.default_rng(seed), OWN)
        without = draw_report(config, RETRIEVED, np.random.default_rng(seed))
        assert with_own == without != OWN


def _contexts(qa_world, model: dict, seed: int | None) -> tuple[list[str], list[str]]:
    """Decoded shared contexts of one batch over the train split, and the own reports of their ECGs."""
    from tests.qa_fixtures import decode_rows, training_batch

    batch, tokenizer, data, picks = training_batch(qa_world, model, seed, limit=24)
    own = [str(data.store.metadata["report"].iat[r]) for r in data.rows[picks]]
    return decode_rows(tokenizer, batch.context_ids, batch.context_mask), own


def test_training_contexts_carry_the_own_report_and_evaluation_contexts_do_not(qa_world) -> None:
    trained, own = _contexts(qa_world, {"own_report_rate": 1.0}, seed=0)
    assert trained and all(any(report in text for text in trained) for report in own)
    evaluated, _ = _contexts(qa_world, {"own_report_rate": 1.0}, seed=None)
    baseline, _ = _contexts(qa_world, {}, seed=None)
    assert evaluated == baseline  # evaluation prompts do not depend on the switch
