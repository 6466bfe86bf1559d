"""The Python API: from_pretrained on a `qheart train` folder, ask/ask_many, round-trip, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from qheart.api import QHeart
from qheart.data.ecgqa import load_split
from qheart.data.store import SignalStore
from qheart.models.model_folder import NotAModelError, save_model_folder


@pytest.fixture(scope="module")
def qheart(tiny_model_dir) -> QHeart:
    return QHeart.from_pretrained(tiny_model_dir)


def test_answers_a_synthetic_test_question_with_its_options(qheart, qa_world) -> None:
    bench = qa_world["bench"]
    sample = next(s for s in load_split(bench / "ecgqa" / "synthetic", "paraphrased", "test").samples
                  if s.question_type == "single-verify")
    store = SignalStore(bench / "store")
    signal = store.signals([store.row_of(sample.ecg_id)])[0]
    for decode in ("rank", "generate"):
        answer = qheart.ask(signal, sample.question, sample_rate=500, decode=decode)
        assert answer.question_type == "single-verify"
        assert answer.options == ["yes", "no", "not sure"]
        assert answer.decode == decode and len(answer.reports) == 3
        if decode == "rank":
            assert len(answer.answer) == 1 and answer.answer[0] in answer.options
            assert sum(answer.scores.values()) == pytest.approx(1.0, abs=1e-4)
        else:
            assert isinstance(answer.raw_text, str)
        json.dumps(answer.to_dict())


def test_ask_many_matches_ask_and_reads_files(qheart, qa_world, tmp_path) -> None:
    store = SignalStore(qa_world["bench"] / "store")
    signals = store.signals([0, 1])
    path = tmp_path / "ecg.npy"
    np.save(path, signals[1])
    question = "Does this ECG show sinus rhythm?"
    many = qheart.ask_many([signals[0], signals[1]], [question, question], sample_rate=500)
    one = qheart.ask(signals[1], question, sample_rate=500)
    assert many[1].answer == one.answer
    assert many[1].scores == pytest.approx(one.scores, abs=1e-4)
    from_file = qheart.ask(path, question, sample_rate=500)
    assert from_file.scores == pytest.approx(one.scores, abs=1e-3)  # float16-exact input


def test_save_load_round_trip_gives_the_same_answers_and_logits(qheart, tmp_path) -> None:
    out = save_model_folder(qheart.model, qheart.tokenizer, tmp_path / "copy",
                            info={k: v for k, v in qheart.meta.items()
                                  if k in ("train", "index")}, questions=qheart.catalogue)
    shutil.copytree(qheart.directory / "retrieval_encoder", out / "retrieval_encoder")
    copy = QHeart.from_pretrained(out)
    signal = np.random.default_rng(0).normal(0, 0.3, (12, 5000)).astype(np.float32)
    a = qheart.ask(signal, "Does this ECG show atrial fibrillation?", sample_rate=500)
    b = copy.ask(signal, "Does this ECG show atrial fibrillation?", sample_rate=500)
    assert a.answer == b.answer and a.scores == pytest.approx(b.scores, abs=1e-6)
    for name, p in qheart.model.state_dict().items():
        torch.testing.assert_close(copy.model.state_dict()[name], p)


def test_standardisers_are_saved_and_folders_without_them_load_as_identity(qheart, tmp_path
                                                                            ) -> None:
    from safetensors.torch import load_file, save_file

    from qheart.models.model_folder import PREFIX_NAME

    assert float(qheart.model.mapper.standardise.std.sub(1).abs().max()) > 0  # fitted in training
    out = save_model_folder(qheart.model, qheart.tokenizer, tmp_path / "old",
                            info={k: v for k, v in qheart.meta.items() if k in ("train", "index")},
                            questions=qheart.catalogue)
    shutil.copytree(qheart.directory / "retrieval_encoder", out / "retrieval_encoder")
    prefix = load_file(str(out / PREFIX_NAME))
    save_file({k: v for k, v in prefix.items() if ".standardise." not in k}, str(out / PREFIX_NAME))
    old = QHeart.from_pretrained(out)  # written before the standardisers existed
    torch.testing.assert_close(old.model.mapper.standardise.std,
                               torch.ones_like(old.model.mapper.standardise.std))
    save_file({**prefix, "mapper.stray.weight": torch.zeros(2)}, str(out / PREFIX_NAME))
    with pytest.raises(NotAModelError, match="unexpected"):
        QHeart.from_pretrained(out)


def test_a_folder_that_is_not_a_model_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(NotAModelError, match="not a qheart model folder"):
        QHeart.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(NotAModelError, match="not 'qheart'"):
        QHeart.from_pretrained(tmp_path)


def test_an_array_without_its_rate_is_a_typed_error() -> None:
    from qheart.data.errors import SampleRateError

    with pytest.raises(SampleRateError, match="array: an array needs its sample_rate"):
        QHeart.load_ecg(np.zeros((12, 5000), np.float32))


def test_ask_with_options_answers_a_question_no_template_resembles(qheart) -> None:
    from qheart.data.options import OptionsError

    ecg = (np.zeros((12, 5000)) + np.sin(np.linspace(0, 60, 5000))).astype(np.float32)
    odd = "Zebra quantum lighthouse?"
    with pytest.raises(OptionsError, match="pass the options"):
        qheart.ask(ecg, odd, sample_rate=500)
    answer = qheart.ask(ecg, odd, sample_rate=500, options=["alpha", "beta"])
    assert answer.answer[0] in ("alpha", "beta") and answer.options == ["alpha", "beta"]
