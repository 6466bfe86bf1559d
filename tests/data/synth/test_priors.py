"""The blind prior baseline: majority answer per template and attribute, learned on train."""

from __future__ import annotations

from dataclasses import dataclass

from qheart.data.synth.priors import prior_baseline


@dataclass(frozen=True)
class Sample:
    template_id: int
    question_type: str
    answer: tuple[str, ...]
    attribute: tuple[str, ...] | None


def _choose(answer: tuple[str, ...], pair: tuple[str, str] = ("a", "b"), tid: int = 3) -> Sample:
    return Sample(tid, "single-choose", answer, pair)


def test_majority_per_attribute_and_order_free_matching():
    train = [_choose(("a",)), _choose(("a",)), _choose(("none",)),
             _choose(("c",), ("c", "d")), _choose(("d",), ("c", "d")), _choose(("d",), ("d", "c"))]  # fmt: skip
    test = [_choose(("A",), ("b", "a")), _choose(("none",)), _choose(("d",), ("c", "d"))]
    result = prior_baseline(train, test)
    assert result == {"single-choose": {"accuracy": round(2 / 3, 3), "n": 3}}


def test_unseen_attribute_falls_back_to_the_template_and_unseen_template_is_wrong():
    train = [Sample(1, "single-verify", ("yes",), ("x",)), Sample(1, "single-verify", ("yes",), ("y",)),
             Sample(1, "single-verify", ("no",), ("z",))]  # fmt: skip
    test = [Sample(1, "single-verify", ("yes",), ("new",)), Sample(9, "single-verify", ("no",), ("x",)),
            Sample(8, "single-query", ("lead I", "lead II"), None)]  # fmt: skip
    result = prior_baseline(train, test)
    assert result["single-verify"] == {"accuracy": 0.5, "n": 2}
    assert result["single-query"] == {"accuracy": 0.0, "n": 1}


def test_sets_are_matched_as_sets_and_ties_break_the_same_way_every_time():
    train = [Sample(8, "single-query", ("b", "a"), ("v",)), Sample(8, "single-query", ("a", "b"), ("v",)),
             Sample(8, "single-query", ("c",), ("v",))]  # fmt: skip
    assert prior_baseline(train, [Sample(8, "single-query", ("a", "b"), ("v",))])["single-query"]["accuracy"] == 1.0
    tied = [Sample(8, "single-query", ("z",), ("v",)), Sample(8, "single-query", ("a",), ("v",))]
    for order in (tied, tied[::-1]):
        assert prior_baseline(order, [Sample(8, "single-query", ("a",), ("v",))])["single-query"]["accuracy"] == 1.0


def test_qheart_data_synth_prints_and_saves_the_prior_baseline(tmp_path):
    import json

    from typer.testing import CliRunner

    from qheart.cli import app

    out = tmp_path / "bench"
    result = CliRunner().invoke(app, ["data", "synth", "--out", str(out), "--n-ecgs", "10", "--seed", "3",
                                      "--workers", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "blind prior baseline" in result.output
    saved = json.loads((out / "synth.json").read_text())["prior_baseline"]
    assert saved and all(0.0 <= v["accuracy"] <= 1.0 and v["n"] > 0 for v in saved.values())
    assert sum(v["n"] for v in saved.values()) == json.loads((out / "synth.json").read_text())["questions"]["test"]["n"]
