"""Finding hints: the encoder's zero-shot reading of the findings a question names."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from qheart.data.options import names_in_text
from qheart.models.finding_hints import (
    HINT_PREFIX,
    VERDICTS,
    FindingBank,
    HintReader,
    bank_vocabulary,
    fit_gaussian_1d,
    hint_line,
    hinted_findings,
    presence_labels,
    verdict,
)
from qheart.models.prompts import PromptParts, prompt_text
from qheart.models.qheart_model import ModelConfig

FINDINGS = ["atrial fibrillation", "complete right bundle branch block",
            "incomplete right bundle branch block", "normal heart axis", "left axis deviation"]


def fake_projection(texts: list[str]) -> torch.Tensor:
    """A fixed random direction per text (so equal texts project equally)."""
    rows = [torch.randn(8, generator=torch.Generator().manual_seed(sum(map(ord, t)) * 31 + len(t)))
            for t in texts]
    return torch.stack(rows)


def test_verdicts_rise_with_the_probability() -> None:
    words = [verdict(p) for p in (0.05, 0.3, 0.5, 0.7, 0.95)]
    assert words == [word for _, word in VERDICTS]


def test_bank_scores_are_standardised_and_find_their_finding() -> None:
    bank = FindingBank.build(FINDINGS, fake_projection)
    assert np.allclose(np.linalg.norm(bank.directions, axis=1), 1.0, atol=1e-5)
    assert bank.sign[bank.names.index("normal heart axis")] == -1.0  # stated by omission
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 8)).astype(np.float32)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    scores = bank.fit(z).scores(z)
    assert np.allclose(scores.mean(axis=0), 0.0, atol=1e-4)
    assert np.allclose(scores.std(axis=0), 1.0, atol=1e-3)
    af = bank.names.index("atrial fibrillation")
    aligned = bank.scores(bank.directions[af][None])[0]
    assert aligned[af] > 2.0 and aligned[af] == aligned.max()
    probabilities = bank.probabilities(bank.directions[af][None])[0]  # uncalibrated: sigmoid
    assert hint_line(bank, probabilities, ["atrial fibrillation"]) == \
        HINT_PREFIX + "atrial fibrillation very likely"


@pytest.mark.parametrize("method", ["lda", "logistic"])
def test_calibration_turns_a_backwards_finding_around_and_skips_thin_ones(method: str) -> None:
    bank = FindingBank.build(FINDINGS, fake_projection)
    rng = np.random.default_rng(0)
    score = rng.normal(size=400)
    present = score < 0  # this finding's score points the wrong way
    finding = ["atrial fibrillation"] * 400
    few = ["left axis deviation"] * 10  # too few examples to calibrate
    aucs = bank.calibrate(finding + few, np.concatenate([score, rng.normal(size=10)]),
                          np.concatenate([present, np.ones(10, dtype=bool)]), method)
    af, lad = bank.names.index("atrial fibrillation"), bank.names.index("left axis deviation")
    assert aucs == {"atrial fibrillation": pytest.approx(0.0, abs=1e-6)}
    assert bank.slope[af] < -1.0  # higher score, less likely
    assert bank.slope[lad] == 1.0 and bank.intercept[lad] == 0.0  # left as sigmoid(z)
    z = np.stack([bank.directions[af], -bank.directions[af]])
    p = bank.probabilities(z)[:, af]
    assert p[0] < 0.5 < p[1]


def test_calibration_sits_midway_between_the_classes_not_at_the_tight_class_edge() -> None:
    # nearly separable, as synthetic sinus rhythm is: a tight present class, a wide absent one
    rng = np.random.default_rng(0)
    present = rng.normal(0.9, 0.2, size=500)
    absent = rng.normal(-0.8, 0.8, size=500)
    x = np.concatenate([present, absent])
    y = np.arange(1000) < 500
    slope, intercept = fit_gaussian_1d(x, y)
    midpoint = -intercept / slope
    assert abs(midpoint - (present.mean() + absent.mean()) / 2) < 1e-9
    # a present ECG shifted below the tight class (real sinus rhythm: 0.44) still reads present
    assert 1 / (1 + np.exp(-(slope * 0.44 + intercept))) > 0.6
    # the priors of the examples move the line: 3 present for every absent, p(midpoint) = 0.75
    slope3, intercept3 = fit_gaussian_1d(np.concatenate([present, present, present, absent]),
                                         np.arange(2000) < 1500)
    assert 1 / (1 + np.exp(-(slope3 * midpoint + intercept3))) == pytest.approx(0.75, abs=0.02)
    with pytest.raises(ValueError, match="≥ 2 examples per class"):
        fit_gaussian_1d(np.array([0.0, 1.0, 2.0]), np.array([True, False, False]))


def test_an_unknown_calibration_is_refused_by_the_bank_and_the_config() -> None:
    from qheart.models.qheart_model import ModelConfig

    bank = FindingBank.build(FINDINGS, fake_projection)
    with pytest.raises(ValueError, match="unknown hint calibration"):
        bank.calibrate(["atrial fibrillation"] * 40, np.zeros(40), np.arange(40) >= 20, "isotonic")
    with pytest.raises(ValueError, match="hint_calibration"):
        ModelConfig(hint_calibration="isotonic")
    assert ModelConfig().hint_calibration == "lda"


def test_the_training_answer_says_which_findings_are_present() -> None:
    bank = FindingBank.build(FINDINGS, fake_projection)
    assert presence_labels(bank, ["left axis deviation", "atrial fibrillation", "none"], None,
                           ("atrial fibrillation",)) == [("left axis deviation", False),
                                                         ("atrial fibrillation", True)]
    assert presence_labels(bank, ["yes", "no"], ("atrial fibrillation",), ("no",)) == \
        [("atrial fibrillation", False)]
    assert presence_labels(bank, ["lead I", "lead II", "none"], ("atrial fibrillation",),
                           ("lead II",)) == [("atrial fibrillation", True)]
    assert presence_labels(bank, ["yes", "no", "not sure"], ("atrial fibrillation",),
                           ("not sure",)) == []
    assert presence_labels(bank, ["yes", "no"], None, ("yes",)) == []


def test_bank_round_trips_through_safetensors(tmp_path) -> None:
    bank = FindingBank.build(FINDINGS, fake_projection)
    bank.fit(np.random.default_rng(1).normal(size=(50, 8)).astype(np.float32))
    bank.save(tmp_path / "bank.safetensors")
    loaded = FindingBank.load(tmp_path / "bank.safetensors")
    assert loaded.names == bank.names
    assert loaded.slope is None  # not calibrated
    bank.calibrate(["atrial fibrillation"] * 40, np.linspace(-2, 2, 40), np.arange(40) >= 20)
    bank.save(tmp_path / "bank.safetensors")
    loaded = FindingBank.load(tmp_path / "bank.safetensors")
    for field in ("directions", "sign", "mean", "std", "slope", "intercept"):
        assert np.array_equal(getattr(loaded, field), getattr(bank, field))


def test_an_empty_bank_and_a_one_ecg_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one finding"):
        FindingBank.build([], fake_projection)
    with pytest.raises(ValueError, match="≥ 2 ECGs"):
        FindingBank.build(FINDINGS, fake_projection).fit(np.zeros((1, 8), dtype=np.float32))


def test_free_questions_name_the_longest_finding_once() -> None:
    found = names_in_text("Is there incomplete right bundle branch block or atrial "
                           "fibrillation?", FINDINGS)
    # "complete right bundle branch block" must not match inside "incomplete …"
    assert found == ["incomplete right bundle branch block", "atrial fibrillation"]
    assert names_in_text("Does this ECG show complete right bundle branch block?", FINDINGS) == \
        ["complete right bundle branch block"]
    assert names_in_text("What is the heart rate?", FINDINGS) == []


def test_hints_read_options_then_attribute_then_text() -> None:
    bank = FindingBank.build(FINDINGS, fake_projection)
    choose = hinted_findings(bank, "Which one, left axis deviation or atrial fibrillation?",
                             ["left axis deviation", "atrial fibrillation", "none"])
    assert choose == ["left axis deviation", "atrial fibrillation"]
    verify = hinted_findings(bank, "Does lead V1 show it?", ["yes", "no"], ("atrial fibrillation",))
    assert verify == ["atrial fibrillation"]
    free = hinted_findings(bank, "Does this ECG show atrial fibrillation?", ["yes", "no"])
    assert free == ["atrial fibrillation"]
    assert hinted_findings(bank, "Which leads are noisy?", ["lead I", "lead II"]) == []


def test_vocabulary_leaves_out_numeric_features() -> None:
    names = bank_vocabulary([("scp_code", ("atrial fibrillation",)),
                             ("numeric_feature", ("qt interval",)), ("noise", None)],
                            [["left axis deviation", "none"], ["lead I"]])
    assert names == {"atrial fibrillation", "left axis deviation"}


def test_the_hint_goes_after_the_question_and_only_with_the_ecg() -> None:
    parts = PromptParts("Does this ECG show atrial fibrillation?", ["yes", "no"], report="r",
                        hint=HINT_PREFIX + "atrial fibrillation likely")
    text = prompt_text(parts, with_ecg=True, with_question=True)
    assert "Encoder reading" not in text.context  # question-specific: never in the shared part
    lines = text.question.splitlines()
    assert lines[0].startswith("Question:") and lines[1] == parts.hint
    assert lines[2].startswith("Options:")
    dropped = prompt_text(parts, with_ecg=True, with_question=False)  # question dropout
    assert dropped.question.splitlines()[0] == parts.hint
    assert "Encoder reading" not in prompt_text(parts, with_ecg=False, with_question=True).user


def test_hints_are_never_active_for_blind_or_deaf_models() -> None:
    assert ModelConfig(finding_hints=True).hints_active
    assert not ModelConfig(finding_hints=True, use_ecg=False).hints_active
    assert not ModelConfig(finding_hints=True, use_question=False).hints_active
    assert not ModelConfig().hints_active


def with_text_head(encoder_dir, out):
    """A copy of a tiny encoder folder with a random text head beside it (MiniLM → 16)."""
    from qheart.models.text_encoder import TextHead

    shutil.copytree(encoder_dir, out / "encoder")
    torch.manual_seed(0)
    TextHead(384, 16).save(out / "text_head.safetensors", text_encoder="minilm")
    return out / "encoder"


def test_a_model_trained_with_hints_reads_them_at_answer_time(qa_world, tmp_path) -> None:
    """Training writes the reader into the model folder; `ask` computes the same kind of hint
    from the pre-trained encoder and shows it with the answer; evaluation prompts carry it."""
    from qheart.api import QHeart
    from qheart.data.store import SignalStore
    from qheart.evaluation.evaluate import split_questions
    from qheart.training.instruct import TrainInputs, instruction_tune
    from qheart.training.instruct_data import Benchmark
    from tests.qa_fixtures import tiny_train_config

    encoder = with_text_head(qa_world["encoder"], tmp_path / "pretrain")
    bench = Benchmark.from_path(qa_world["bench"])
    out = tmp_path / "model"
    config = tiny_train_config(qa_world["llm"], model={"finding_hints": True}, max_steps=2,
                               eval_every=2)
    instruction_tune(config, TrainInputs(bench, encoder, qa_world["index"]), out, progress=False)
    assert (out / "finding_hints" / "bank.safetensors").is_file()
    model = QHeart.from_pretrained(out)
    assert model.hint_reader is not None
    signal = SignalStore(bench.store_dir).signals([0])[0]
    answer = model.ask(signal, "Does this ECG show atrial fibrillation?", sample_rate=500.0)
    assert answer.hint is not None and answer.hint.startswith(HINT_PREFIX + "atrial fibrillation ")
    assert answer.answer[0] in answer.options
    data = split_questions(model, bench, "test", None, 12, progress=False)
    assert data.hints is not None and len(data.hints) == len(data)
    import json

    recorded = json.loads((out / "run.json").read_text())["finding_hints"]
    assert recorded["findings"] == len(model.hint_reader.bank.names)
    assert any(h and h.startswith(HINT_PREFIX) for h in data.hints)


def test_a_reader_loads_what_it_saved(qa_world, tmp_path) -> None:
    from qheart.models.encoder import ECGEncoder

    encoder = ECGEncoder.from_pretrained(qa_world["encoder"])
    bank = FindingBank.build(FINDINGS, lambda texts: fake_projection(texts).repeat(1, 2))
    reader = HintReader(bank, encoder.embed)
    signals = np.random.default_rng(0).normal(size=(3, 12, 5000)).astype(np.float32) * 0.1
    bank.fit(encoder.embed(signals))
    reader.save(tmp_path / "hints", encoder)
    loaded = HintReader.load(tmp_path / "hints")
    questions = ["Does this ECG show atrial fibrillation?"] * 3
    options = [["yes", "no"]] * 3
    assert loaded.hints(signals, questions, options) == reader.hints(signals, questions, options)
    (tmp_path / "hints" / "bank.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"no bank\.safetensors"):
        HintReader.load(tmp_path / "hints")
