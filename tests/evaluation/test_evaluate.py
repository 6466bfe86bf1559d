"""`qheart evaluate` end to end on the tiny model: files, both decodings, resume, yardstick."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qheart.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def both_decodings(tiny_model_dir, qa_world, tmp_path_factory) -> tuple[list[str], Path, str]:
    """12 test questions evaluated with both decodings: (argv, results folder, output)."""
    out = tmp_path_factory.mktemp("evaluate") / "eval"
    argv = ["evaluate", "--model", str(tiny_model_dir), "--data", str(qa_world["bench"]),
            "--split", "test", "--limit", "12", "--decode", "both", "--no-text-metrics",
            "--out", str(out)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    return argv, out, result.output


def test_evaluate_writes_tables_for_both_decodings_and_resumes(both_decodings) -> None:
    argv, out, output = both_decodings
    for decode in ("rank", "generate"):
        folder = out / f"test-{decode}"
        data = json.loads((folder / "results.json").read_text())
        assert data["meta"]["n"] == 12 and data["meta"]["decode"] == decode
        with (folder / "results_questions.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 12
        for row in rows:
            predicted, options = json.loads(row["predicted"]), json.loads(row["options"])
            if decode == "rank":  # rank decoding never answers outside the options
                assert predicted and set(predicted) <= set(options)
    assert "invalid generated answers" in output
    again = runner.invoke(app, [*argv[:-2], "--decode", "rank", "--out", str(out)])
    assert again.exit_code == 0, again.output
    lines = (out / "test-rank" / "progress.jsonl").read_text().splitlines()
    assert len(lines) == 12  # the re-run answered nothing twice


def test_yardstick_on_the_real_ptbxl_samples(tiny_model_dir, real_samples, tmp_path) -> None:
    out = tmp_path / "eval"
    result = runner.invoke(app, ["evaluate", "--model", str(tiny_model_dir), "--ptbxl",
                                 str(real_samples / "ptb-xl"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = json.loads((out / "yardstick-rank" / "yardstick.json").read_text())
    assert table["overall"]["n"] > 100 and 0.0 <= table["overall"]["accuracy"] <= 1.0
    assert any(row["finding"].startswith("sinus rhythm") for row in table["rows"])
    assert 0.0 <= table["overall"]["auc"] <= 1.0  # rank decoding: p(yes) is ranked too
    assert "AUC of p(yes)" in (out / "yardstick-rank" / "yardstick.md").read_text()


def test_compare_two_results_folders(both_decodings, tmp_path) -> None:
    _, out, _ = both_decodings
    result = runner.invoke(app, ["evaluate", "--compare", str(out / "test-rank"), "--compare",
                                 str(out / "test-generate" / "results_questions.csv"),
                                 "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "cmp" / "paired.json").read_text())
    assert sum(c["n"] for k, c in data["cells"].items() if k in ("verify", "choose", "query")) == 12
    one = runner.invoke(app, ["evaluate", "--compare", str(out / "test-rank")])
    assert one.exit_code != 0 and "exactly two" in one.output


def test_compare_pools_comma_separated_seeds_seed_by_seed(both_decodings, tmp_path) -> None:
    _, out, _ = both_decodings
    rank, generate = str(out / "test-rank"), str(out / "test-generate")
    result = runner.invoke(app, ["evaluate", "--compare", f"{rank},{rank}", "--compare",
                                 f"{generate},{generate}", "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    assert "(2 seeds)" in result.output
    cells = json.loads((tmp_path / "cmp" / "paired.json").read_text())["cells"]
    assert cells["overall"]["n"] == 24  # 12 questions × 2 seeds
    uneven = runner.invoke(app, ["evaluate", "--compare", f"{rank},{rank}", "--compare", generate])
    message = " ".join(uneven.output.replace("│", " ").split())  # unwrap the error box
    assert uneven.exit_code == 2 and "A has 2 results and B 1" in message


def test_compare_names_the_systems_by_where_their_results_lie(tmp_path) -> None:
    from qheart.cli.evaluate import _system_name

    assert _system_name(tmp_path / "runs" / "h8" / "deaf" / "eval" / "test-rank") == "deaf"
    demo_csv = tmp_path / "demo" / "eval" / "blind" / "test-subset-rank" / "results_questions.csv"
    demo_csv.parent.mkdir(parents=True)
    demo_csv.write_text("")
    assert _system_name(demo_csv) == "blind"


def test_subset_takes_a_percentage_or_a_fraction() -> None:
    import typer

    from qheart.cli.evaluate import parse_fraction

    assert parse_fraction("10%") == pytest.approx(0.1) == parse_fraction("0.1")
    assert parse_fraction(" 100% ") == 1.0 and parse_fraction(None) is None
    for bad in ("0", "150%", "-0.1", "ten"):
        with pytest.raises(typer.BadParameter, match="--subset"):
            parse_fraction(bad)


def test_a_bad_subset_is_refused_before_anything_loads(tmp_path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--model", str(tmp_path / "missing"),
                                      "--data", str(tmp_path), "--subset", "ten percent"])
    assert result.exit_code == 2 and "--subset" in result.output


def test_an_unknown_split_is_a_one_line_error_before_the_model_loads(tmp_path) -> None:
    from qheart.cli import _is_known_error
    from qheart.data.ecgqa import UnknownChoiceError, load_split

    result = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "absent"), "--data",
                                 str(tmp_path), "--split", "validation"])
    message = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "--split must be one of train, valid, test" in message
    with pytest.raises(UnknownChoiceError, match="unknown split 'dev'"):
        load_split(tmp_path, "paraphrased", "dev")
    assert _is_known_error(UnknownChoiceError("x"))  # the console script prints it as one line


def test_budgets_and_limits_that_mean_nothing_are_refused_before_any_work(tmp_path) -> None:
    """--limit 0 once 'evaluated' no question and overwrote a results folder; --max-minutes -1
    started a training run with no budget at all."""
    cases = [["evaluate", "--model", str(tmp_path), "--data", str(tmp_path), "--limit", "0"],
             ["train", "--data", str(tmp_path), "--encoder", str(tmp_path), "--index",
              str(tmp_path), "--out", str(tmp_path / "m"), "--max-minutes", "-1"],
             ["pretrain", "--data", str(tmp_path), "--out", str(tmp_path / "p"),
              "--max-minutes", "0"]]
    for argv in cases:
        result = runner.invoke(app, argv)
        assert result.exit_code == 2, (argv, result.output)
    assert not (tmp_path / "m").exists() and not (tmp_path / "p").exists()
