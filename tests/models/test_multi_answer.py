"""The `grow` rule for multi-answer questions: a greedy search for the most probable set."""

from __future__ import annotations

import numpy as np
import pytest

from qheart.models.decoding import best_on_path, grow_answer_sets, grow_paths


def _scorer(table: dict[str, float], seen: list[str]):
    """Log-probabilities of answers written as text; unknown answers are very unlikely."""
    def score(pairs):
        seen.extend(a for _, a in pairs)
        return np.array([table.get(a, -50.0) for _, a in pairs])
    return score


OPTIONS = ["lead I", "lead II", "lead V1", "lead V2", "none"]


def test_adds_options_while_the_set_gets_more_probable_and_writes_sets_in_option_order() -> None:
    table = {"lead V1": -2.0, "lead I, lead V1": -1.5, "lead I, lead V1, lead V2": -1.0,
             "lead I, lead II, lead V1": -1.2}
    seen: list[str] = []
    sets = grow_answer_sets([OPTIONS], [2], [-2.0], _scorer(table, seen), lookahead=0)
    assert sets == [[0, 2, 3]]
    assert "lead V1, lead I" not in seen and "lead I, lead V1" in seen  # canonical order only
    assert not any("none" in a for a in seen)  # "none" never joins a set


def test_stops_at_the_first_option_when_no_addition_helps() -> None:
    table = {"lead II": -0.5, "lead I, lead II": -3.0, "lead II, lead V1": -0.9}
    assert grow_answer_sets([OPTIONS], [1], [-0.5], _scorer(table, []), lookahead=0) == [[1]]
    assert grow_answer_sets([OPTIONS], [1], [-0.5], _scorer(table, [])) == [[1]]  # default too


def test_none_does_not_grow_and_questions_grow_independently() -> None:
    table = {"lead I, lead II": -0.1}
    seen: list[str] = []
    sets = grow_answer_sets([OPTIONS, OPTIONS], [4, 0], [-0.2, -1.0], _scorer(table, seen),
                            lookahead=0)
    assert sets == [[4], [0, 1]]
    assert len(seen) == 3 + 2  # round 1: three additions to lead I; round 2: two to {I, II}


def test_max_size_bounds_the_set() -> None:
    table = {"lead I": -4.0, "lead I, lead II": -3.0, "lead I, lead II, lead V1": -2.0,
             "lead I, lead II, lead V1, lead V2": -1.0}
    assert grow_answer_sets([OPTIONS], [0], [-4.0], _scorer(table, []), max_size=2) == [[0, 1]]
    assert grow_answer_sets([OPTIONS], [0], [-4.0], _scorer(table, [])) == [[0, 1, 2, 3]]


def test_lookahead_crosses_a_dip_and_a_longer_search_answers_for_shorter_ones() -> None:
    table = {"lead I": -1.0, "lead I, lead II": -1.5, "lead I, lead II, lead V1": -0.8,
             "lead I, lead II, lead V1, lead V2": -2.0}
    assert grow_answer_sets([OPTIONS], [0], [-1.0], _scorer(table, []), lookahead=0) == [[0]]
    assert grow_answer_sets([OPTIONS], [0], [-1.0], _scorer(table, []),
                            lookahead=1) == [[0, 1, 2]]
    seen: list[str] = []
    path = grow_paths([OPTIONS], [0], [-1.0], _scorer(table, seen), lookahead=3)[0]
    assert [len(step[0]) for step in path] == [1, 2, 3, 4]  # ran out of options (none excluded)
    assert best_on_path(path, 0) == [0] and best_on_path(path, 1) == [0, 1, 2]
    assert best_on_path(path, 5) == [0, 1, 2]


def test_rank_decode_refuses_an_unknown_rule() -> None:
    from qheart.models.decoding import rank_decode

    with pytest.raises(ValueError, match="multi_rule"):
        rank_decode(None, None, [], [], [], None, multi_rule="top3")  # type: ignore[arg-type]
