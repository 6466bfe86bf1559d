"""The Q-HEART model's parts: mapper/skip shapes, prefix placement, answer-only logits, presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from qheart.models.encoder import EncoderConfig
from qheart.models.mapper import ETMapper, LeadPositionalSkip, Standardiser
from qheart.models.qheart_model import (
    ModelConfig,
    QHeartModel,
    answer_cross_entropy,
    load_llm,
    truncate_layers,
)
from qheart.training.instruct_config import TrainConfig
from tests.qa_fixtures import TINY_ENCODER

LLAMA_32_1B = LlamaConfig(  # Llama-3.2-1B-Instruct's published shapes
    vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
    num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072,
    tie_word_embeddings=True, rope_theta=500000.0)


def tiny_llm() -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=3, num_attention_heads=4,
                                        num_key_value_heads=2, tie_word_embeddings=True))


def test_mapper_and_skip_shapes_and_the_single_linear_ablation() -> None:
    z, pos = torch.randn(3, 16), torch.randn(3, 40, 8)
    assert ETMapper(16, 32, 12, 2, 4)(z).shape == (3, 12, 32)
    plain = ETMapper(16, 32, 12, n_layers=0)
    assert plain.transformer is None and plain(z).shape == (3, 12, 32)
    skip = LeadPositionalSkip(40, 8, 32, 12)
    assert skip(pos).shape == (3, 12, 32)
    with pytest.raises(ValueError, match="steps"):
        skip(torch.randn(3, 39, 8))


def test_standardiser_centres_a_narrow_cone_and_is_the_identity_until_fitted() -> None:
    torch.manual_seed(0)
    cone = torch.full((200, 16), 3.0) + 0.05 * torch.randn(200, 16)  # cosine ≈ 1 between rows
    standardise = Standardiser((16,))
    torch.testing.assert_close(standardise(cone), cone)
    standardise.fit(cone)
    out = standardise(cone)
    assert float(out.mean(0).abs().max()) < 1e-4
    torch.testing.assert_close(out.std(0), torch.ones(16))
    unit = torch.nn.functional.normalize(out, dim=1)
    assert float((unit @ unit.T).mean()) < 0.1  # no longer one direction
    with pytest.raises(ValueError, match="shape"):
        standardise.fit(torch.randn(10, 8))


def test_fit_standardisers_measures_the_encoder_outputs_the_mapper_and_skip_see() -> None:
    model = QHeartModel(ModelConfig(encoder=TINY_ENCODER, mapper_dropout=0.0), tiny_llm())
    torch.manual_seed(1)
    signals = torch.randn(6, 12, 5000)
    model.train()
    assert model.fit_standardisers(iter((signals[:4], signals[4:]))) == 6
    assert model.encoder.training  # the mode it was in comes back
    with torch.no_grad():
        model.encoder.eval()
        out = model.encoder(signals)
    torch.testing.assert_close(model.mapper.standardise.mean, out.embedding.mean(0))
    torch.testing.assert_close(model.mapper.standardise.std, out.embedding.std(0))
    torch.testing.assert_close(model.skip.standardise.mean, out.positional.mean(0))


def test_prefix_goes_exactly_over_the_placeholders() -> None:
    model = QHeartModel(ModelConfig(encoder=TINY_ENCODER, mapper_dropout=0.0), tiny_llm()).eval()
    ids = torch.randint(0, 64, (2, 20))
    starts = torch.tensor([3, -1])
    signals = torch.randn(1, 12, 5000)
    embeds = model.input_embeddings(ids, starts, signals, torch.tensor([0, 0]))
    plain = model.causal_lm.get_input_embeddings()(ids)
    prefix = model.prefix(signals)[0].detach()
    torch.testing.assert_close(embeds[0, 3:15], prefix)
    emb_rms = plain.pow(2).mean().sqrt()
    assert 0.5 < float(prefix.pow(2).mean().sqrt() / emb_rms) < 2.0  # as loud as real tokens
    torch.testing.assert_close(embeds[0, :3], plain[0, :3])
    torch.testing.assert_close(embeds[0, 15:], plain[0, 15:])
    torch.testing.assert_close(embeds[1], plain[1])  # no marker: untouched


def test_answer_only_logits_give_the_full_vocabulary_loss() -> None:
    model = QHeartModel(ModelConfig(encoder=TINY_ENCODER, mapper_dropout=0.0, lora_dropout=0.0),
                        tiny_llm()).eval()
    ids = torch.randint(0, 64, (2, 24))
    labels = torch.full_like(ids, -100)
    labels[:, 20:] = ids[:, 20:]
    mask = torch.ones_like(ids)
    args = (ids, mask, labels, torch.tensor([2, 2]), torch.randn(2, 12, 5000), torch.tensor([0, 1]))
    fast = model.forward_full(*args)
    naive = model.forward_full(*args, full_logits=True)
    torch.testing.assert_close(fast, naive)
    fast.backward()
    assert model.mapper.project.weight.grad is not None  # the ECG path learns from the answer


def test_question_weighting_gives_every_question_one_unit_of_loss() -> None:
    torch.manual_seed(0)
    logits, targets = torch.randn(10, 7), torch.randint(0, 7, (10,))
    rows = torch.tensor([0] + [1] * 9)  # a one-token answer beside a nine-token one
    each = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    torch.testing.assert_close(answer_cross_entropy(logits, targets, rows, "token"), each.mean())
    per_question = answer_cross_entropy(logits, targets, rows, "question")
    torch.testing.assert_close(per_question, (each[0] + each[1:].mean()) / 2)
    assert not torch.isclose(per_question, each.mean())
    with pytest.raises(ValueError, match="answer_weighting"):
        ModelConfig(answer_weighting="sequence")


def _shared_batch(qa_world, *, use_ecg: bool = True, per_ecg: int = 3,
                  weighting: str = "token"):
    """A real training batch (tiny tokenizer and LLM) with questions sharing ECG contexts."""
    from qheart.models.prompts import PromptTokenizer
    from qheart.training.instruct import TrainInputs, build_model, retrieval_cache
    from qheart.training.instruct_data import BatchPlan, Benchmark, QASet, make_batch
    from tests.qa_fixtures import tiny_train_config

    config = tiny_train_config(qa_world["llm"],
                               model={"use_ecg": use_ecg, "answer_weighting": weighting},
                               batch_size=6, micro_batch_size=6, questions_per_ecg=per_ecg)
    inputs = TrainInputs(Benchmark.from_path(qa_world["bench"]), qa_world["encoder"],
                         qa_world["index"])
    data = QASet.load(inputs.bench, "train", retrieval_cache(inputs, "train", progress=False))
    torch.manual_seed(0)
    model, tokenizer = build_model(config, qa_world["encoder"])
    prompts = PromptTokenizer(tokenizer, config.model.n_prefix)
    plan = BatchPlan(data.lengths(), 6, seed=0, rows=data.rows, per_ecg=per_ecg)
    batch = make_batch(data, plan.batch(0), config.model, prompts, seed=0, step=0)
    return model.eval(), batch, data, prompts, config


@pytest.mark.parametrize("weighting", ["token", "question"])
def test_shared_contexts_give_the_loss_and_gradients_of_whole_sequences(qa_world,
                                                                         weighting) -> None:
    model, batch, *_ = _shared_batch(qa_world, weighting=weighting)
    assert len(batch.context_ids) < len(batch)  # questions really share contexts
    shared = model(**batch.as_kwargs())
    shared.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    whole = model.forward_full(**batch.unshared())
    whole.backward()
    torch.testing.assert_close(shared, whole, rtol=1e-4, atol=1e-5)
    assert model.mapper.project.weight.grad is not None and grads  # the ECG path learns
    for name, param in model.named_parameters():
        if param.grad is not None:
            torch.testing.assert_close(grads[name], param.grad, rtol=1e-3, atol=1e-6)
    blind, blind_batch, *_ = _shared_batch(qa_world, use_ecg=False, weighting=weighting)
    assert len(blind_batch.context_ids) == 1  # one chat head for every question
    torch.testing.assert_close(blind(**blind_batch.as_kwargs()),
                               blind.forward_full(**blind_batch.unshared()), rtol=1e-4, atol=1e-5)


def test_option_ranking_behind_one_prompt_pass_equals_whole_sequences(qa_world) -> None:
    from qheart.models.decoding import option_logprobs
    from qheart.models.prompts import collate, prompt_text
    from qheart.training.instruct_data import draw_report, question_parts, unique_signals

    model, _, data, prompts, config = _shared_batch(qa_world)
    picks = [0, 1, 5]
    texts = [prompt_text(question_parts(config.model, data.samples[i], data.options[i],
                                        draw_report(config.model, data.reports[i], None), None),
                         with_ecg=True, with_question=True) for i in picks]
    unique, index = unique_signals(data.store, data.rows[picks])
    signals = unique[index]
    options = [data.options[i] for i in picks]
    fast = option_logprobs(model, prompts, texts, options, signals, max_batch=5)
    for q, (text, opts) in enumerate(zip(texts, options, strict=True)):
        encoded = [prompts.encode(text, option) for option in opts]
        ids, mask, labels, starts = collate(encoded, prompts.placeholder_id)
        slow = model.sequence_logprobs(ids, mask, labels, starts, signals[[q]],
                                       torch.zeros(len(opts), dtype=torch.long))
        np.testing.assert_allclose(fast[q], slow.numpy(), rtol=1e-4, atol=1e-4)


def test_range_queries_get_one_range_other_queries_a_set() -> None:
    from qheart.data.options import LEAD_OPTIONS, RANGE_OPTIONS
    from qheart.models.decoding import choose, is_multi_answer

    near_tie = np.log([0.45, 0.40, 0.15])  # the second option is within the 0.7 ratio
    ranges = ["above the normal range", "within the normal range", "below the normal range"]
    assert not is_multi_answer("single-query", ranges)
    assert choose(ranges, near_tie, multi=is_multi_answer("single-query", ranges))[0] == [ranges[0]]
    leads = list(LEAD_OPTIONS[:3])
    assert is_multi_answer("single-query", leads)
    assert choose(leads, near_tie, multi=True)[0] == leads[:2]
    assert not is_multi_answer("single-choose", list(RANGE_OPTIONS))


def test_grouped_batches_keep_questions_of_one_ecg_together_and_cover_the_epoch() -> None:
    from qheart.training.instruct_data import BatchPlan

    rows = np.random.default_rng(0).permutation(np.repeat(np.arange(10), 8))  # 10 ECGs × 8
    plan = BatchPlan(np.ones(80), 8, seed=3, rows=rows, per_ecg=4)
    batches = [plan.batch(s) for s in range(plan.per_epoch)]
    seen = np.concatenate(batches)
    assert len(seen) == len(set(seen.tolist())) == 80  # each question once per epoch
    assert max(len(np.unique(rows[b])) for b in batches) <= 2  # 2 groups of 4, not 8 ECGs
    again = BatchPlan(np.ones(80), 8, seed=3, rows=rows, per_ecg=4)
    assert [again.batch(s).tolist() for s in range(3)] == [b.tolist() for b in batches[:3]]
    assert plan.batch(plan.per_epoch).tolist() != batches[0].tolist()  # a new epoch reshuffles


def test_grouped_batches_pack_groups_whole_instead_of_splitting_them() -> None:
    from qheart.training.instruct_data import BatchPlan, pack_groups

    rows = np.random.default_rng(1).permutation(np.repeat(np.arange(40), 10))  # 10 per ECG
    lengths = np.random.default_rng(2).integers(20, 90, len(rows)).astype(float)
    plan = BatchPlan(lengths, 8, seed=0, rows=rows, per_ecg=4)  # groups of 4 + 4 + 2
    batches = [plan.batch(s) for s in range(plan.per_epoch)]
    seen = np.concatenate(batches)
    assert len(seen) == len(set(seen.tolist())) >= 392  # at most one unfilled batch left out
    assert all(len(b) == 8 for b in batches)
    for b in batches:  # a group is never cut: each ECG brings 2 or 4 questions
        _, counts = np.unique(rows[b], return_counts=True)
        assert set(counts.tolist()) <= {2, 4}
    contexts = np.mean([len(np.unique(rows[b])) for b in batches])
    assert contexts <= 2.5  # 4 + 4 pairs, and 2 + 2 + 2 + 2: (1 × 2 + 0.25 × 4) / 1.25 = 2.4
    parts = [np.arange(3), np.arange(3, 8), np.arange(8, 10), np.arange(10, 12)]
    assert [b.tolist() for b in pack_groups(parts, 5)] == [[3, 4, 5, 6, 7], [0, 1, 2, 8, 9],
                                                           [10, 11]]  # in the order they fill


def test_switches_freeze_what_they_say() -> None:
    blind = QHeartModel(ModelConfig(encoder=TINY_ENCODER, use_ecg=False), tiny_llm())
    assert not any(p.requires_grad for p in blind.mapper.parameters())
    assert not any(p.requires_grad for p in blind.encoder.parameters())
    frozen = QHeartModel(ModelConfig(encoder=TINY_ENCODER, freeze_llm=True,
                                     positional_skip=False), tiny_llm())
    assert frozen.skip is None
    assert not any(p.requires_grad for p in frozen.llm.parameters())
    assert any(p.requires_grad for p in frozen.mapper.parameters())
    lora = QHeartModel(ModelConfig(encoder=TINY_ENCODER, freeze_encoder=True), tiny_llm())
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith(("mapper.", "skip.", "prefix_norm."))
                             for n in trainable)
    assert sum("lora_" in n for n in trainable) == 3 * 7 * 2  # 3 layers × 7 projections × A, B
    cut = truncate_layers(tiny_llm(), (0, 2))
    assert cut.config.num_hidden_layers == 2
    assert [layer.self_attn.layer_idx for layer in cut.model.layers] == [0, 1]


@pytest.mark.parametrize("scope", ["all", "asked"])
def test_measurements_reach_only_models_that_see_the_ecg_and_never_name_the_question_to_a_deaf_one(
        scope: str) -> None:
    from qheart.models.prompts import PromptParts, prompt_text

    line = "Measured: qt interval 412 ms within the normal range."

    def user(**switches) -> str:
        config = ModelConfig(encoder=TINY_ENCODER, use_measurements=True,
                             measurement_scope=scope, **switches)
        parts = PromptParts(question="What range is the qt interval in?", options=["a", "b"],
                            **config.measurement_fields(line))
        return prompt_text(parts, with_ecg=config.use_ecg,
                           with_question=config.use_question).user

    assert line in user()
    assert line not in user(use_ecg=False)  # blind: measurements are ECG information
    assert (line in user(use_question=False)) == (scope == "all")  # deaf: the line names the qt
    off = ModelConfig(encoder=TINY_ENCODER, measurement_scope=scope)
    assert not off.measurements_active and not any(off.measurement_fields(line).values())


def test_paper_preset_on_the_meta_device_with_llama_3_2_1b_shapes(capsys) -> None:
    config = TrainConfig.from_name("paper")
    assert config.lr == 5e-5 and config.batch_size == 32 and config.betas == (0.9, 0.98)
    assert config.model.encoder == EncoderConfig.from_name("paper")
    with torch.device("meta"):
        model = QHeartModel(config.model, LlamaForCausalLM(LLAMA_32_1B))
    counts = model.parameter_counts()
    print({k: f"{v:,}" for k, v in counts.items()})
    assert 1.2e9 < counts["llm"] < 1.3e9  # 1.236 B + LoRA
    assert 85e6 < counts["encoder"] < 95e6
    assert counts["mapper"] > 12 * 2048 * 768  # Linear(768 → 12·2048) + 2 layers
    small = TrainConfig.from_name("cpu-small")
    assert len(small.model.llm_layers) == 10 and small.model.llm == "smollm2-135m-instruct"
    # The paper's LoRA (SPEC §4) keeps its dropout; the CPU preset sees under one epoch.
    assert config.model.lora_dropout == 0.1 and small.model.lora_dropout == 0.0
    # Question dropout is beyond the paper: only the CPU preset uses it.
    assert config.model.question_dropout == 0.0 and small.model.question_dropout == 0.5
    # So are the asked measurements: the paper's prompt has none.
    assert small.model.measurements_active and small.model.measurement_scope == "asked"
    assert not config.model.use_measurements
    # So are finding hints and per-question answer loss (measured together; see the preset).
    assert config.model.answer_weighting == "token" and not config.model.finding_hints
    assert small.model.answer_weighting == "question" and small.model.hints_active


def test_grown_sets_are_options_and_no_one_addition_makes_them_more_probable(qa_world) -> None:
    from qheart.models.decoding import option_logprobs, rank_decode
    from qheart.models.prompts import ANSWER_SEPARATOR, collate, prompt_text
    from qheart.training.instruct_data import draw_report, question_parts, unique_signals

    model, _, data, prompts, config = _shared_batch(qa_world)
    picks = [i for i, s in enumerate(data.samples) if s.question_type == "single-query"][:3]
    assert picks
    texts = [prompt_text(question_parts(config.model, data.samples[i], data.options[i],
                                        draw_report(config.model, data.reports[i], None), None),
                         with_ecg=True, with_question=True) for i in picks]
    unique, index = unique_signals(data.store, data.rows[picks])
    signals = unique[index]
    options = [data.options[i] for i in picks]
    qtypes = ["single-query"] * len(picks)
    grown = rank_decode(model, prompts, texts, options, qtypes, signals, multi_rule="grow")
    singles = option_logprobs(model, prompts, texts, options, signals)

    def whole(q: int, answer: set[str]) -> float:  # the unshared path, written in option order
        written = ANSWER_SEPARATOR.join(o for o in options[q] if o in answer)
        ids, mask, labels, starts = collate([prompts.encode(texts[q], written)],
                                            prompts.placeholder_id)
        return float(model.sequence_logprobs(ids, mask, labels, starts, signals[[q]],
                                             torch.zeros(1, dtype=torch.long))[0])

    for q, (answer, probs) in enumerate(grown):
        assert answer and set(answer) <= set(options[q]) and list(probs) == list(options[q])
        mine = whole(q, set(answer))
        assert mine >= singles[q].max() - 1e-4
        for extra in set(options[q]) - set(answer) - {"none"}:
            assert whole(q, {*answer, extra}) <= mine + 1e-4


def test_the_llm_loads_without_asking_transformers_for_hub_kernels(qa_world, monkeypatch) -> None:
    """transformers ≥ 5.24 kernelizes from the hub by default; on an offline GPU that failed
    the load (seen on an H200), so every load of ours must say use_kernels=False."""
    from transformers.modeling_utils import PreTrainedModel

    asked: list[bool] = []
    original = PreTrainedModel.set_use_kernels

    def record(self, use_kernels, *args, **kwargs):
        asked.append(bool(use_kernels))
        return original(self, False, *args, **kwargs)

    monkeypatch.setattr(PreTrainedModel, "set_use_kernels", record)
    llm, _ = load_llm(ModelConfig(llm=str(qa_world["llm"])))
    assert asked == [False]
    assert llm.config.num_hidden_layers >= 1


def test_wrapping_the_llm_in_lora_prints_no_deprecation_noise() -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        QHeartModel(ModelConfig(encoder=TINY_ENCODER), tiny_llm())
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]
