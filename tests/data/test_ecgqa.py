"""The ECG-QA loader: official layout, skipped comparison questions, Table 1 options, the fixed
subset and the join to a signal store — on a mini dataset written here and on the real files."""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from qheart.cli import app
from qheart.data.ecgqa import (
    KEPT_TYPES,
    ECGQAFormatError,
    QASample,
    fixed_subset,
    join_store,
    load_split,
    load_template_options,
)
from qheart.data.options import (
    LEAD_OPTIONS,
    NUMERIC_FEATURE_OPTIONS,
    RANGE_OPTIONS,
    VERIFY_OPTIONS,
    OptionsError,
    QueryKind,
    answer_set,
    answers_match,
    candidate_options,
    normalize_answer,
    options_cover,
    query_kind,
)

NOISES = ["baseline drift", "burst noise", "electrodes problems", "static noise"]
BIGEMINY = "bigeminal pattern (unknown origin, supraventricular, or ventricular)"
TEMPLATE_OPTIONS = {
    1: ["no", "not sure", "yes"],
    7: ["atrial fibrillation", BIGEMINY, "none", "sinus rhythm"],
    19: [*sorted(LEAD_OPTIONS), "none"],
    30: [*NOISES, "none"],
    41: ["above the normal range", "below the normal range", "within the normal range"],
    42: ["none", *sorted(NUMERIC_FEATURE_OPTIONS)],
    64: ["no", "yes"],
}


def _q(sample_id, template_id, qtype, question, answer, ecg_id, attribute, attribute_type="scp_code"):
    return {
        "template_id": template_id, "question_id": template_id * 100, "sample_id": sample_id,
        "question_type": qtype, "attribute_type": attribute_type, "question": question,
        "answer": answer, "ecg_id": ecg_id, "attribute": attribute,
    }  # fmt: skip


def _questions(paraphrased: bool) -> list[dict]:
    """One question of every kind Table 1 distinguishes, plus three comparison questions."""
    leads_q = "Which leads show static noise?" if paraphrased else "What leads are showing static noise?"
    return [
        _q(0, 1, "single-verify", "Does this ECG show sinus rhythm?", ["yes"], [101], ["sinus rhythm"]),
        _q(1, 7, "single-choose", "Which one is shown, atrial fibrillation or sinus rhythm?",
           ["sinus rhythm"], [102], ["atrial fibrillation", "sinus rhythm"]),
        _q(2, 30, "single-query", "What kind of noises does this ECG show?",
           ["static noise", "baseline drift"], [103], NOISES, "noise"),
        _q(3, 19, "single-query", leads_q, ["lead I", "lead aVR"], [104], ["static noise"], "noise"),
        _q(4, 42, "single-query", "What numeric features are out of the normal range?",
           ["qt corrected"], [105], None, "numeric_feature"),
        _q(5, 41, "single-query", "What range is the rr interval in?",
           ["within the normal range"], [101], ["rr interval"], "numeric_feature"),
        _q(6, 64, "comparison_consecutive-verify", "Is sinus rhythm still present?", ["no"],
           [101, 102], None),
        _q(7, 64, "comparison_consecutive-verify", "Is sinus rhythm still present?", ["yes"],
           [103, 104], None),
        _q(8, 68, "comparison_irrelevant-query", "Which numeric features became normal?",
           ["rr interval", "qt interval"], [105, 106], None, "numeric_feature"),
    ]  # fmt: skip


def _write_templates(root: Path, options: dict[int, list[str]]) -> None:
    # The release writes `classes` as a Python list literal inside a quoted CSV field.
    with (root / "answers_for_each_template.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["template_id", "classes"])
        for template_id, classes in options.items():
            writer.writerow([template_id, repr(classes)])


def _write_split(folder: Path, questions: list[dict], per_file: int) -> None:
    """Files named by their first sample_id, unpadded, like the release."""
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(questions), per_file):
        chunk = questions[start : start + per_file]
        (folder / f"{chunk[0]['sample_id']}.json").write_text(json.dumps(chunk, indent=4))


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    """A mini ECG-QA dataset folder: both variants, train split over 3 files, tiny valid split."""
    root = tmp_path / "ecgqa" / "ptbxl"
    root.mkdir(parents=True)
    _write_templates(root, TEMPLATE_OPTIONS)
    for variant in ("paraphrased", "template"):
        questions = _questions(paraphrased=variant == "paraphrased")
        # sample_ids 6..14, 4 per file → "6.json", "10.json", "14.json": string sorting would
        # read "10.json" first, so the order of samples checks the numeric file sort
        for q in questions:
            q["sample_id"] += 6
        _write_split(root / variant / "train", questions, per_file=4)
        _write_split(root / variant / "valid", questions[:1], per_file=1)
    return root


# --------------------------------------------------------------------------- loading


def test_load_split_keeps_single_types_and_counts_comparisons(mini: Path) -> None:
    qa = load_split(mini, "paraphrased", "train")
    assert [p.name for p in qa.files] == ["6.json", "10.json", "14.json"]
    assert [s.sample_id for s in qa.samples] == [6, 7, 8, 9, 10, 11]  # numeric file order
    assert qa.counts() == {"single-verify": 1, "single-choose": 1, "single-query": 4}
    assert qa.skipped == {"comparison_consecutive-verify": 2, "comparison_irrelevant-query": 1}
    assert len(qa) == 6
    assert {s.question_type for s in qa.samples} <= set(KEPT_TYPES)


def test_samples_keep_lists_as_tuples_and_one_ecg_id(mini: Path) -> None:
    qa = load_split(mini, "template", "train")
    noise = next(s for s in qa.samples if s.template_id == 30)
    assert noise.answer == ("static noise", "baseline drift")  # order as published, all kept
    assert noise.attribute == tuple(NOISES)
    assert noise.ecg_id == 103 and isinstance(noise.ecg_id, int)
    numeric = next(s for s in qa.samples if s.template_id == 42)
    assert numeric.attribute is None
    with pytest.raises(AttributeError):
        noise.answer = ("x",)  # type: ignore[misc]


def test_variants_share_sample_ids_with_different_wording(mini: Path) -> None:
    para = load_split(mini, "paraphrased", "train")
    tmpl = load_split(mini, "template", "train")
    assert [s.sample_id for s in para.samples] == [s.sample_id for s in tmpl.samples]
    assert para.samples[3].question != tmpl.samples[3].question
    assert load_split(mini, "template", "valid").counts() == {"single-verify": 1}


def test_bad_arguments_and_missing_folders(mini: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="variant"):
        load_split(mini, "paraphrase", "train")
    with pytest.raises(ValueError, match="split"):
        load_split(mini, "template", "validation")
    with pytest.raises(FileNotFoundError, match="test"):
        load_split(mini, "template", "test")
    (mini / "template" / "test").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no \*\.json"):
        load_split(mini, "template", "test")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[{\"template_id\": 1,", "invalid JSON"),
        ("{\"template_id\": 1}", "expected a JSON list"),
        ("[42]", "entry 0: expected an object"),
    ],
)
def test_malformed_json_names_the_file(mini: Path, content: str, problem: str) -> None:
    bad = mini / "template" / "train" / "99.json"
    bad.write_text(content)
    with pytest.raises(ECGQAFormatError, match=problem) as info:
        load_split(mini, "template", "train")
    assert str(bad) in str(info.value)


def _single(**overrides: object) -> dict:
    record = _q(50, 1, "single-verify", "Is it?", ["yes"], [7], ["x"])
    record.update(overrides)
    return record


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({k: v for k, v in _single().items() if k != "answer"}, "missing field.*answer"),
        (_single(ecg_id=[7, 8]), "must have one ecg_id"),
        (_single(ecg_id=["7"]), "ecg_id must be a non-empty list of integers"),
        (_single(answer="yes"), "answer must be a list of strings"),
        (_single(attribute="x"), "attribute must be a list of strings"),
        (_single(sample_id="50"), "sample_id must be an integer"),
        (_single(question_type="single-verfy"), "unknown question_type 'single-verfy'"),
    ],
)
def test_bad_records_name_file_and_entry(mini: Path, record: dict, problem: str) -> None:
    bad = mini / "template" / "valid" / "50.json"
    bad.write_text(json.dumps([_single(sample_id=49), record]))
    with pytest.raises(ECGQAFormatError, match=problem) as info:
        load_split(mini, "template", "valid")
    assert str(bad) in str(info.value) and "entry 1" in str(info.value)


# --------------------------------------------------------------------------- template options


def test_template_options_parse_list_literals(mini: Path) -> None:
    options = load_template_options(mini)
    assert options == TEMPLATE_OPTIONS
    assert BIGEMINY in options[7]  # a class with commas inside survives the CSV + literal parse


def test_template_options_never_evaluate_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "answers_for_each_template.csv").write_text(
        f'template_id,classes\n1,"__import__(\'os\').mkdir(\'{marker}\')"\n'
    )
    with pytest.raises(ECGQAFormatError, match="line 2"):
        load_template_options(tmp_path)
    assert not marker.exists()


def test_template_options_reject_bad_tables(tmp_path: Path) -> None:
    table = tmp_path / "answers_for_each_template.csv"
    table.write_text("template,answers\n1,\"['no']\"\n")
    with pytest.raises(ECGQAFormatError, match="columns"):
        load_template_options(tmp_path)
    table.write_text("template_id,classes\n1,\"['no']\"\n1,\"['yes']\"\n")
    with pytest.raises(ECGQAFormatError, match="twice"):
        load_template_options(tmp_path)
    table.write_text("template_id,classes\n1,\"[1, 2]\"\n")
    with pytest.raises(ECGQAFormatError, match="list of strings"):
        load_template_options(tmp_path)


# --------------------------------------------------------------------------- Table 1


def _by_template(mini: Path, variant: str) -> dict[int, QASample]:
    return {s.template_id: s for s in load_split(mini, variant, "train").samples}


def test_candidate_options_follow_table_1(mini: Path) -> None:
    samples = _by_template(mini, "template")
    opts = TEMPLATE_OPTIONS
    assert candidate_options(samples[1], opts) == ["yes", "no", "not sure"]
    assert candidate_options(samples[7], opts) == ["atrial fibrillation", "sinus rhythm", "none"]
    assert candidate_options(samples[30], opts) == [*NOISES, "none"]
    assert candidate_options(samples[19], opts) == [
        "lead I", "lead II", "lead III", "lead aVR", "lead aVL", "lead aVF",
        "lead V1", "lead V2", "lead V3", "lead V4", "lead V5", "lead V6",
    ]  # fmt: skip
    assert candidate_options(samples[42], opts) == [
        "rr interval", "p duration", "pr interval", "qrs duration", "qt interval", "qt corrected",
    ]  # fmt: skip
    assert candidate_options(samples[41], opts) == [
        "below the normal range", "within the normal range", "above the normal range",
    ]  # fmt: skip
    for sample in samples.values():
        assert options_cover(sample, candidate_options(sample, opts)), sample


def test_question_prefix_alone_selects_the_row(mini: Path) -> None:
    """Table 1's literal condition works without the template table on template wording."""
    samples = _by_template(mini, "template")
    assert query_kind(samples[19], {}) is QueryKind.LEADS
    assert query_kind(samples[42], {}) is QueryKind.NUMERIC_FEATURES
    assert query_kind(samples[41], {}) is QueryKind.RANGE
    assert query_kind(samples[30], {}) is QueryKind.OTHER


def test_paraphrased_lead_question_uses_its_template(mini: Path) -> None:
    leads = _by_template(mini, "paraphrased")[19]
    assert leads.question.startswith("Which leads")
    assert candidate_options(leads, TEMPLATE_OPTIONS) == list(LEAD_OPTIONS)
    # without the template table only the wording is left: attribute list + none
    assert candidate_options(leads, {}) == ["static noise", "none"]


def test_missing_attribute_falls_back_to_template_and_none_is_not_repeated() -> None:
    choose = QASample(1, 1, 7, "single-choose", "scp_code", "Which one?", ("none",), 1, None)
    assert candidate_options(choose, TEMPLATE_OPTIONS) == [
        "atrial fibrillation", BIGEMINY, "sinus rhythm", "none",
    ]  # fmt: skip
    with_none = QASample(2, 1, 7, "single-choose", "scp_code", "Which?", ("none",), 1, ("a", "None"))
    assert candidate_options(with_none, TEMPLATE_OPTIONS) == ["a", "None"]
    with pytest.raises(OptionsError, match="sample 1"):
        candidate_options(choose, {})
    comparison = QASample(3, 1, 64, "comparison_consecutive-verify", "x", "?", ("no",), 1, None)
    with pytest.raises(OptionsError, match="comparison"):
        candidate_options(comparison, TEMPLATE_OPTIONS)


def test_answer_sets_compare_without_order_case_or_spacing() -> None:
    assert normalize_answer("  Lead   aVR ") == "lead avr"
    assert answer_set(["Lead I", "lead aVR", "lead I"]) == {"lead i", "lead avr"}
    assert answers_match(["static noise", "Baseline drift"], ("baseline drift", "static noise"))
    assert not answers_match(["static noise"], ["static noise", "baseline drift"])
    assert not answers_match(["yes"], ["no"])


# --------------------------------------------------------------------------- fixed subset


def _many(n: int) -> list[QASample]:
    return [
        QASample(i, i, 1, "single-verify", "noise", f"q{i}", ("yes",), 1000 + i, None)
        for i in range(n)
    ]


def test_fixed_subset_is_ten_percent_and_stable() -> None:
    samples = _many(1000)
    subset = fixed_subset(samples)
    assert len(subset) == 100
    assert subset == fixed_subset(samples)
    shuffled = samples[:]
    random.Random(3).shuffle(shuffled)
    assert fixed_subset(shuffled) == subset
    assert [s.sample_id for s in subset] == sorted(s.sample_id for s in subset)
    assert {s.sample_id for s in fixed_subset(samples, seed=1)} != {s.sample_id for s in subset}
    assert len(fixed_subset(samples, fraction=0.25)) == 250
    with pytest.raises(ValueError, match="fraction"):
        fixed_subset(samples, fraction=0.0)


def test_fixed_subset_ignores_python_hash_seed() -> None:
    code = (
        "from qheart.data.ecgqa import QASample, fixed_subset;"
        "s=[QASample(i,i,1,'single-verify','n',str(i),('yes',),i,None) for i in range(300)];"
        "print([x.sample_id for x in fixed_subset(s)])"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert outputs.pop().strip() == str([s.sample_id for s in fixed_subset(_many(300))])


def test_fixed_subset_same_across_file_layouts(tmp_path: Path) -> None:
    questions = [
        _q(i, 1, "single-verify", f"Is it {i}?", ["no"], [i + 1], ["x"]) for i in range(120)
    ]
    for name, per_file, order in (("a", 10, questions), ("b", 7, questions[::-1])):
        _write_split(tmp_path / name / "template" / "test", order, per_file)
    subset_a = fixed_subset(load_split(tmp_path / "a", "template", "test").samples)
    subset_b = fixed_subset(load_split(tmp_path / "b", "template", "test").samples)
    assert len(subset_a) == 12
    assert subset_a == subset_b


# --------------------------------------------------------------------------- store join


class FakeStore:
    """Stands in for SignalStore: only membership matters to the join."""

    def __init__(self, ids: set[int]) -> None:
        self.ids = ids
        self.lookups: list[int] = []

    def __contains__(self, ecg_id: object) -> bool:
        self.lookups.append(ecg_id)  # type: ignore[arg-type]
        return ecg_id in self.ids


def test_join_store_splits_kept_and_missing(mini: Path, caplog: pytest.LogCaptureFixture) -> None:
    samples = load_split(mini, "template", "train").samples  # ecg_ids 101..105, 101 twice
    store = FakeStore({101, 103})
    with caplog.at_level(logging.WARNING):
        kept, missing = join_store(samples, store)
    assert [s.ecg_id for s in kept] == [101, 103, 101]
    assert sorted(s.ecg_id for s in missing) == [102, 104, 105]
    assert sorted(store.lookups) == [101, 102, 103, 104, 105]  # one lookup per distinct ECG
    assert "3 of 6 questions (3 distinct ECGs)" in caplog.text
    assert join_store(samples, FakeStore(set(range(100, 110)))) == (samples, [])


# --------------------------------------------------------------------------- CLI


runner = CliRunner()


def _tiny_store(root: Path, ids: list[int]) -> Path:
    from qheart.data.store import StoreWriter

    writer = StoreWriter(root, source="test")
    rows = pd.DataFrame({"ecg_id": ids, "patient_id": ids, "report": [""] * len(ids)})
    writer.write_chunk(0, np.zeros((len(ids), 12, 5000), np.float32), rows)
    writer.finalize()
    return root


def test_cli_summarises_split_and_store(mini: Path, tmp_path: Path) -> None:
    base = ["data", "ecgqa", "--dataset-dir", str(mini), "--variant", "paraphrased", "--split", "train"]
    result = runner.invoke(app, base, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "6 single-ECG questions kept, 3 skipped" in result.output
    assert "comparison_consecutive-verify │ 2" in result.output
    assert "comparison_irrelevant-query   │ 1" in result.output
    assert "single-query  │ 4" in result.output
    assert "4/4" in result.output  # gold answers within Table 1 options for all query questions

    store = _tiny_store(tmp_path / "store", [101, 102, 103])
    result = runner.invoke(app, [*base, "--store", str(store)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "4 of 6 questions have their ECG" in result.output
    assert "2 questions, 2 ECGs missing (ecg_id 104, 105)" in result.output


def test_cli_reports_malformed_file(mini: Path) -> None:
    (mini / "template" / "valid" / "5.json").write_text("[")
    result = runner.invoke(
        app, ["data", "ecgqa", "--dataset-dir", str(mini), "--variant", "template", "--split", "valid"]
    )
    assert result.exit_code == 1
    assert "5.json" in result.output and "invalid JSON" in result.output


# --------------------------------------------------------------------------- the real release files


def test_real_verify_file_parses(real_samples: Path) -> None:
    qa = load_split(real_samples / "ecg-qa" / "ptbxl", "paraphrased", "train")
    assert [p.name for p in qa.files] == ["120000.json"]
    assert len(qa) == 10_000 and qa.skipped == {}
    assert qa.counts() == {"single-verify": 10_000}
    assert {s.template_id for s in qa.samples} == {26, 27, 28}
    assert [s.sample_id for s in qa.samples] == list(range(120_000, 130_000))
    assert all(len(s.answer) == 1 and s.answer[0] in VERIFY_OPTIONS for s in qa.samples)
    assert {s.answer[0] for s in qa.samples} == {"yes", "no"}
    assert all(s.attribute and s.attribute_type == "noise" for s in qa.samples)
    first = qa.samples[0]
    assert (first.ecg_id, first.answer, first.attribute) == (3637, ("no",), ("static noise",))


@pytest.mark.parametrize(
    ("corpus", "count"), [("ptbxl", 2146), ("mimic-iv-ecg", 4364)]
)
def test_real_comparison_files_are_skipped(real_samples: Path, corpus: str, count: int) -> None:
    qa = load_split(real_samples / "ecg-qa" / corpus, "paraphrased", "test")
    assert qa.samples == []
    assert qa.skipped == {"comparison_irrelevant-query": count}


@pytest.mark.parametrize(("corpus", "n_templates"), [("ptbxl", 70), ("mimic-iv-ecg", 60)])
def test_real_template_tables_parse(real_samples: Path, corpus: str, n_templates: int) -> None:
    options = load_template_options(real_samples / "ecg-qa" / corpus)
    assert len(options) == n_templates
    assert options[1] == ["no", "not sure", "yes"]
    # our Table 1 spellings are the release's own: lead, numeric-feature and range templates
    assert set(options[19]) == {*LEAD_OPTIONS, "none"}
    assert set(options[42]) == {*NUMERIC_FEATURE_OPTIONS, "none"}
    assert set(options[41]) == set(RANGE_OPTIONS)
    lead_templates = [t for t, o in options.items() if set(o) - {"none"} <= set(LEAD_OPTIONS)]
    assert lead_templates == [19, 34]


def test_table_1_strings_are_in_the_real_answer_vocabulary(real_samples: Path) -> None:
    vocabulary = set(pd.read_csv(real_samples / "ecg-qa" / "ptbxl" / "answers.csv")["class"])
    for group in (VERIFY_OPTIONS, LEAD_OPTIONS, NUMERIC_FEATURE_OPTIONS, RANGE_OPTIONS, ("none",)):
        assert set(group) <= vocabulary, set(group) - vocabulary


def test_real_verify_gold_answers_are_among_table_1_options(real_samples: Path) -> None:
    root = real_samples / "ecg-qa" / "ptbxl"
    options = load_template_options(root)
    samples = load_split(root, "paraphrased", "train").samples
    assert all(candidate_options(s, options) == list(VERIFY_OPTIONS) for s in samples)
    assert all(options_cover(s, candidate_options(s, options)) for s in samples)


def test_real_questions_join_the_real_ptbxl_records(real_samples: Path) -> None:
    """82 of the 10,000 real verify questions ask about the 100 real PTB-XL records we hold."""
    database = pd.read_csv(real_samples / "ptb-xl" / "ptbxl_database.csv")
    store = FakeStore(set(database["ecg_id"].astype(int)))
    samples = load_split(real_samples / "ecg-qa" / "ptbxl", "paraphrased", "train").samples
    kept, missing = join_store(samples, store)
    assert (len(kept), len({s.ecg_id for s in kept})) == (82, 40)
    assert len(kept) + len(missing) == 10_000
    assert all(1 <= s.ecg_id <= 100 for s in kept)


def test_cli_on_the_real_files(real_samples: Path) -> None:
    root = real_samples / "ecg-qa"
    result = runner.invoke(
        app,
        ["data", "ecgqa", "--dataset-dir", str(root / "ptbxl"), "--variant", "paraphrased",
         "--split", "train"],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "10000 single-ECG questions kept, 0 skipped" in result.output
    assert "10000/10000" in result.output
    result = runner.invoke(
        app,
        ["data", "ecgqa", "--dataset-dir", str(root / "mimic-iv-ecg"), "--variant",
         "paraphrased", "--split", "test"],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "0 single-ECG questions kept, 4364 skipped" in result.output
