"""Tiny, download-free stand-ins for instruction-tuning tests: a synthetic benchmark, a BPE
tokenizer trained in code with a ChatML template, a random 2-layer Llama, a random encoder and
a FAISS index over the benchmark. Built in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from qheart.models.encoder import ECGEncoder, EncoderConfig

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TINY_ENCODER = EncoderConfig(conv_layers=((8, 4, 4), (16, 2, 2), (16, 2, 2), (16, 2, 2)),
                             conv_groups=4, d_model=16, n_layers=1, n_heads=2, ffn_dim=32,
                             pos_conv_kernel=8, pos_conv_groups=4, dropout=0.0, embed_dim=16)


def make_bench(out: Path, n_ecgs: int = 40, corpus_ecgs: int = 20) -> Path:
    from qheart.data.synth.generate import generate_benchmark

    generate_benchmark(out, n_ecgs, seed=0, corpus_ecgs=corpus_ecgs, questions_per_ecg=4)
    return out


def _training_text(bench: Path) -> list[str]:
    texts = []
    for path in sorted((bench / "ecgqa").rglob("*.json")):
        for record in json.loads(path.read_text()):
            texts += [record["question"], " ".join(record["answer"]),
                      " ".join(record.get("attribute") or [])]
    return [*texts, "yes no not sure none lead I II III aVR aVL aVF V1 V2 V3 V4 V5 V6",
            "Report of a similar ECG: Question: Options: ECG: answer questions about"]


def make_tokenizer(bench: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_training_text(bench), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>",
                                   bos_token="<|im_start|>")
    fast.chat_template = CHATML
    return fast


def make_llm_dir(bench: Path, out: Path) -> Path:
    """A random 2-layer Llama (hidden 32) + tokenizer saved where `ModelConfig.llm` can point."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = make_tokenizer(bench)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def make_encoder_dir(out: Path) -> Path:
    torch.manual_seed(0)
    return ECGEncoder(TINY_ENCODER).save_pretrained(out)


def make_index(bench: Path, encoder_dir: Path, out: Path) -> Path:
    from qheart.data.store import SignalStore
    from qheart.retrieval.index import build_index, encoder_fingerprint

    stores = [SignalStore(bench / "corpus"), SignalStore(bench / "store")]
    build_index(stores, ECGEncoder.from_pretrained(encoder_dir).embed, out,
                encoder=encoder_fingerprint(encoder_dir),
                splits=["corpus", "train"], progress=False)
    return out


def tiny_train_config(llm_dir: Path, **changes):
    from qheart.training.instruct_config import TrainConfig

    settings = {"model": {"llm": str(llm_dir), "encoder": TINY_ENCODER.to_dict(),
                          "mapper_heads": 4, "lora_dropout": 0.0, "mapper_dropout": 0.0},
                "batch_size": 4, "micro_batch_size": 2, "lr": 1e-3, "mapper_lr": 1e-3,
                "max_steps": 6, "eval_every": 3, "val_questions": 8, "checkpoint_every": 2,
                "log_every": 1}
    model = {**settings["model"], **changes.pop("model", {})}
    return TrainConfig.from_dict({**settings, **changes, "model": model})


def training_batch(qa_world: dict, model: dict, seed: int | None, limit: int | None = None):
    """(batch, tokenizer, data, picks): one `make_batch` over the tiny benchmark's train split,
    the first `limit` questions (all without), under `tiny_train_config` with `model` overrides.
    `seed=None` builds evaluation prompts."""
    import numpy as np

    from qheart.models.prompts import PromptTokenizer
    from qheart.training.instruct import TrainInputs, build_model, retrieval_cache
    from qheart.training.instruct_data import Benchmark, QASet, make_batch

    config = tiny_train_config(qa_world["llm"], model=model)
    inputs = TrainInputs(Benchmark.from_path(qa_world["bench"]), qa_world["encoder"],
                         qa_world["index"])
    data = QASet.load(inputs.bench, "train", retrieval_cache(inputs, "train", progress=False))
    _, tokenizer = build_model(config, qa_world["encoder"])
    prompts = PromptTokenizer(tokenizer, config.model.n_prefix)
    picks = np.arange(len(data.samples) if limit is None else min(len(data.samples), limit))
    batch = make_batch(data, picks, config.model, prompts, seed=seed, step=0)
    return batch, tokenizer, data, picks


def decode_rows(tokenizer, ids, mask) -> list[str]:
    """The text of each right-padded row."""
    return [tokenizer.decode(row[m.bool()]) for row, m in zip(ids, mask, strict=True)]
