"""Instruction tuning of Q-HEART (paper §3.3): `qheart train`.

Run layout (`out/`, which becomes the model folder — see models/model_folder.py):

    train_config.json      the run's TrainConfig (with the version); a resume must match it
    run.json               data paths, index, budget, fitted horizon, seed, qheart version
    checkpoint/            trainable weights + optimizer + scheduler + RNG (safetensors + JSON)
    best/                  trainable weights at the lowest validation loss so far
    config.json, encoder/, prefix.safetensors, adapter/, tokenizer/, questions.json
                           the exported model (from best/), what `QHeart.from_pretrained` loads
    loss_curve.png

Determinism: the batch of step s comes from (seed, epoch) and each question's prompt draws
(option order, report) from (seed, s, question), so a resumed run replays exactly the steps an
uninterrupted one would have taken.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from qheart.models.encoder import ECGEncoder
from qheart.models.model_folder import save_model_folder
from qheart.models.prompts import PromptTokenizer
from qheart.models.qheart_model import QHeartModel, load_llm
from qheart.training.checkpoint import model_state
from qheart.training.instruct_config import TrainConfig
from qheart.training.instruct_data import BatchPlan, Benchmark, QASet, make_batch
from qheart.training.loop import LoopResult, LoopSettings, open_run, run_loop, update_run_info
from qheart.training.schedule import warmup_cosine

CONFIG_NAME = "train_config.json"
BEST_DIR = "best"
RETRIEVAL_ENCODER = "retrieval_encoder"


@dataclass
class TrainInputs:
    """Where a run reads from."""

    bench: Benchmark
    encoder_dir: Path | None
    """A `qheart pretrain` run's encoder/ folder (None: a randomly initialised encoder)."""
    index_dir: Path | None
    """A `qheart index build` folder (needed when retrieval is on)."""


def encoder_folder(path: Path) -> Path:
    """Accept a `qheart pretrain` run folder or the encoder folder inside it."""
    if (path / "encoder" / "config.json").is_file():
        return path / "encoder"
    if (path / "config.json").is_file():
        return path
    raise FileNotFoundError(f"{path}: neither an encoder folder nor a `qheart pretrain` run")


def retrieval_cache(inputs: TrainInputs, split: str, *, progress: bool):
    """The split's cached top-3 reports, computed (once) where missing:
    BENCH/retrieved/<split>-<index build>.json next to the questions' ECG-QA folder."""
    from qheart.data.ecgqa import load_split
    from qheart.data.store import SignalStore
    from qheart.retrieval.precompute import RetrievedReports, precompute_reports
    from qheart.retrieval.search import Retriever

    if inputs.index_dir is None:
        raise ValueError("retrieval is on (use_retrieval) but no index was given (--index); "
                         "build one with `qheart index build`, or --set model.use_retrieval=false")
    retriever = Retriever.load(inputs.index_dir)
    path = (inputs.bench.store_dir.parent / "retrieved"
            / f"{inputs.bench.dataset_dir.name}-{split}-{retriever.build_id[:12]}.json")
    if path.is_file():
        return RetrievedReports.load(path, build_id=retriever.build_id)
    recorded = retriever.manifest.get("encoder", {}).get("path")
    encoder = ECGEncoder.from_pretrained(encoder_folder(Path(recorded)) if recorded
                                         else inputs.encoder_dir)
    qa = load_split(inputs.bench.dataset_dir, inputs.bench.variant, split)
    cache = precompute_reports(retriever, qa.samples, SignalStore(inputs.bench.store_dir),
                               encoder.embed, progress=progress,
                               info={"dataset_dir": str(inputs.bench.dataset_dir), "split": split})
    cache.save(path)
    return cache


def measurement_cache(bench: Benchmark, scope: str = "all") -> Path:
    """Where a benchmark's measurements are cached (by ecg_id): the text blocks for scope
    "all", the numeric features' readings for "asked" (whose line depends on the question). The
    block's and the measurements' versions are in the name, so a change of wording or of a
    measurement never reuses stale values."""
    from qheart.measurements.measure import MEASURE_VERSION
    from qheart.measurements.text import BLOCK_VERSION

    kind = f"v{BLOCK_VERSION}" if scope == "all" else "readings"
    name = f"{bench.store_dir.name}.{kind}.m{MEASURE_VERSION}.json"
    return bench.store_dir.parent / "measurements" / name


def hint_reader(encoder_dir: Path | None, train: QASet, *, calibration: str = "lda",
                batch_size: int = 64):
    """The finding-hint reader of a run: the training questions' findings projected by the
    pre-training's text head, standardised over the training ECGs (embedded by the pre-trained
    encoder) and calibrated on what the training answers say about them."""
    from qheart.models.finding_hints import (
        FindingBank,
        HintReader,
        bank_vocabulary,
        presence_labels,
        text_projection,
    )

    if encoder_dir is None:
        raise ValueError("finding hints need a pre-trained encoder (--encoder) and its text head")
    names = bank_vocabulary(((s.attribute_type, s.attribute) for s in train.samples),
                            train.options)
    bank = FindingBank.build(names, text_projection(encoder_dir))
    encoder = ECGEncoder.from_pretrained(encoder_dir)
    rows, owner = np.unique(train.rows, return_inverse=True)
    z = np.concatenate([encoder.embed(train.store.signals(rows[i : i + batch_size]))
                        for i in range(0, len(rows), batch_size)])
    scores = bank.fit(z).scores(z)
    column = {name: i for i, name in enumerate(bank.names)}
    examples = [(name, scores[owner[i], column[name]], present)
                for i, (sample, options) in enumerate(zip(train.samples, train.options,
                                                          strict=True))
                for name, present in presence_labels(bank, options, sample.attribute,
                                                     sample.answer)]
    aucs = {}
    if examples:
        finding, score, present = zip(*examples, strict=True)
        aucs = bank.calibrate(finding, np.array(score), np.array(present), calibration)
    return HintReader(bank, encoder.embed, aucs)


def question_catalogue(data: QASet) -> dict:
    """Templates seen in training: type, attribute type, options, a few example questions."""
    from qheart.data.ecgqa import load_template_options

    catalogue: dict[str, dict] = {}
    for sample, options in zip(data.samples, data.options, strict=True):
        entry = catalogue.setdefault(str(sample.template_id), {
            "question_type": sample.question_type, "attribute_type": sample.attribute_type,
            "examples": [], "options": options})
        if len(entry["examples"]) < 5 and sample.question not in entry["examples"]:
            entry["examples"].append(sample.question)
    return {"templates": catalogue,
            "template_options": {str(k): v for k, v in
                                 load_template_options(data.dataset_dir).items()}}


def optimizer_for(model: QHeartModel, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW (SPEC §4): LoRA at `lr`, the ECG path (encoder and `prefix_parts`) at `mapper_lr`;
    decay on matrices only."""
    ecg_path = {id(p) for m in (model.encoder, *model.prefix_parts()) for p in m.parameters()}
    groups: dict[tuple[bool, bool], list] = {}
    for param in model.parameters():
        if param.requires_grad:
            groups.setdefault((id(param) in ecg_path, param.ndim >= 2), []).append(param)
    mapper_lr = config.mapper_lr or config.lr
    return torch.optim.AdamW(
        [{"params": params, "lr": mapper_lr if ecg else config.lr,
          "weight_decay": config.weight_decay if decay else 0.0}
         for (ecg, decay), params in sorted(groups.items())],
        lr=config.lr, betas=config.betas, eps=config.eps)


def validation_loss(model: torch.nn.Module, data: QASet, config: TrainConfig,
                    prompts: PromptTokenizer, device: torch.device) -> float:
    """Mean answer-token loss over the validation questions (deterministic prompts)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data), config.micro_batch_size):
            indices = np.arange(start, min(start + config.micro_batch_size, len(data)))
            batch = make_batch(data, indices, config.model, prompts, seed=None, step=0).to(device)
            total += float(model(**batch.as_kwargs())) * len(indices)
            count += len(indices)
    model.train(was_training)
    return total / max(count, 1)


def validation_exact_match(model: QHeartModel, data: QASet, config: TrainConfig,
                           prompts: PromptTokenizer) -> dict[str, float]:
    """Rank-decoding exact match on the validation questions, per question type and averaged."""
    from qheart.data.options import answers_match
    from qheart.models.decoding import rank_decode
    from qheart.models.prompts import prompt_text
    from qheart.training.instruct_data import draw_report, question_parts, unique_signals

    was_training = model.training
    model.eval()
    hits: dict[str, list[bool]] = {}
    for start in range(0, len(data), config.micro_batch_size):
        indices = np.arange(start, min(start + config.micro_batch_size, len(data)))
        texts = [prompt_text(question_parts(config.model, data.samples[i], data.options[i],
                                            draw_report(config.model, data.reports[i], None),
                                            None,
                                            data.measurements[i] if data.measurements else None,
                                            data.hints[i] if data.hints else None),
                             with_ecg=config.model.use_ecg, with_question=config.model.use_question)
                 for i in indices]
        signals = None
        if config.model.use_ecg:
            unique, index = unique_signals(data.store, data.rows[indices])
            signals = unique[index]
        ranked = rank_decode(model, prompts, texts, [data.options[i] for i in indices],
                             [data.samples[i].question_type for i in indices], signals)
        for i, (answer, _) in zip(indices, ranked, strict=True):
            sample = data.samples[i]
            hits.setdefault(sample.question_type, []).append(answers_match(answer, sample.answer))
    model.train(was_training)
    out = {f"em_{qtype.removeprefix('single-')}": float(np.mean(v)) for qtype, v in hits.items()}
    out["em_avg"] = float(np.mean(list(out.values()))) if out else float("nan")
    return out


def train_step_fn(model, local: QHeartModel, optimizer, scheduler, accelerator, config: TrainConfig,
                  data: QASet, plan: BatchPlan, prompts: PromptTokenizer
                  ) -> Callable[[int], dict[str, float]]:
    """One optimiser step = this process's share of the step's batch, in micro batches."""
    rank, world = accelerator.process_index, accelerator.num_processes

    def step_fn(step: int) -> dict[str, float]:
        mine = plan.batch(step)[rank::world]
        chunks = [mine[i : i + config.micro_batch_size]
                  for i in range(0, len(mine), config.micro_batch_size)]
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for j, chunk in enumerate(chunks):
            batch = make_batch(data, chunk, config.model, prompts, seed=config.seed, step=step)
            sync = contextlib.nullcontext() if j == len(chunks) - 1 else accelerator.no_sync(model)
            with sync, accelerator.autocast():
                loss = model(**batch.to(accelerator.device).as_kwargs())
                accelerator.backward(loss * len(chunk) / len(mine))
            total += float(loss.detach()) * len(chunk) / len(mine)
        if config.grad_clip:
            accelerator.clip_grad_norm_([p for p in local.parameters() if p.requires_grad],
                                        config.grad_clip)
        optimizer.step()
        scheduler.step()
        return {"loss": total}

    return step_fn


def fit_standardisers_on_training_ecgs(model: QHeartModel, train: QASet, *, n_ecgs: int = 512,
                                      seed: int = 0, batch_size: int = 32) -> int:
    """Fit the mapper's and skip's input standardisers on up to `n_ecgs` training ECGs (a seeded
    choice, so every process and every resume computes the same statistics)."""
    rows = np.unique(train.rows)
    if len(rows) > n_ecgs:
        rows = np.sort(np.random.default_rng([seed, 11]).choice(rows, n_ecgs, replace=False))
    chunks = (torch.from_numpy(train.store.signals(rows[i:i + batch_size]))
              for i in range(0, len(rows), batch_size))
    return model.fit_standardisers(chunks)


def own_reports(train: QASet, switch: str) -> tuple[np.ndarray, list[str]]:
    """The distinct training ECGs' rows and their own reports (from the store's `report`
    column), for the stages that learn from them; `switch` names the setting that turns the
    stage off, for the error."""
    if "report" not in train.store.metadata:
        raise ValueError(f"{train.store.root}: the store has no `report` column; use "
                         f"--set {switch}=0")
    rows = np.unique(train.rows)
    reports = train.store.metadata["report"].fillna("").astype(str).to_numpy()[rows]
    return rows, list(reports)


def caption_on_training_ecgs(model: QHeartModel, prompts: PromptTokenizer, train: QASet,
                             config: TrainConfig, *, progress: bool):
    """The report-captioning stage on the distinct training ECGs that have a report."""
    from qheart.training.caption import caption_stage

    rows, reports = own_reports(train, "caption_steps")
    keep = [i for i, report in enumerate(reports) if report.strip()]
    return caption_stage(model, optimizer_for(model, config), train.store, rows[keep],
                         [reports[i] for i in keep], prompts, steps=config.caption_steps,
                         batch_size=config.caption_batch_size, seed=config.seed,
                         grad_clip=config.grad_clip, progress=progress)


def align_on_training_ecgs(model: QHeartModel, tokenizer, train: QASet, config: TrainConfig,
                           *, progress: bool):
    """The prefix-alignment stage on the distinct training ECGs and their own reports."""
    from qheart.training.align import align_prefix

    rows, reports = own_reports(train, "align_steps")
    return align_prefix(model, lambda pick: train.store.signals(rows[pick]), list(reports),
                        tokenizer, steps=config.align_steps, batch_size=config.align_batch_size,
                        lr=config.mapper_lr or config.lr, seed=config.seed, progress=progress)


def build_model(config: TrainConfig, encoder_dir: Path | None):
    """(QHeartModel, tokenizer): the LLM from the weights resolver, the pre-trained encoder."""
    encoder = ECGEncoder.from_pretrained(encoder_dir) if encoder_dir is not None else None
    llm, tokenizer = load_llm(config.model)
    model = QHeartModel(config.model, llm, encoder)
    if model.lead_tokens is not None:
        model.lead_tokens.set_names(tokenizer, llm.get_input_embeddings().weight)
    return model, tokenizer


def instruction_tune(config: TrainConfig, inputs: TrainInputs, out: str | Path, *,
                     resume: bool = False, max_minutes: float | None = None,
                     stop_after: int | None = None, progress: bool = True) -> LoopResult:
    """Train (or resume) Q-HEART and export the model folder into `out`."""
    from accelerate.utils import set_seed

    started = time.monotonic()
    out = Path(out)
    if inputs.encoder_dir is not None:  # the encoder's architecture is the pre-trained one's
        config.model.encoder = ECGEncoder.from_pretrained(inputs.encoder_dir).config
    accelerator = open_run(out, config, CONFIG_NAME, resume=resume)
    main = accelerator.is_main_process
    set_seed(config.seed)

    caches = {"train": None, "valid": None}
    if config.model.retrieval_active:
        with accelerator.main_process_first():  # one process computes missing caches
            caches = {s: retrieval_cache(inputs, s, progress=progress and main) for s in caches}
    train = QASet.load(inputs.bench, "train", caches["train"])
    valid = QASet.load(inputs.bench, "valid", caches["valid"], limit=config.val_questions,
                       seed=config.seed)
    if config.model.measurements_active:
        scope = config.model.measurement_scope
        with accelerator.main_process_first():
            for data in (train, valid):
                data.add_measurements(measurement_cache(inputs.bench, scope), scope=scope,
                                      progress=progress and main)
    if main:
        config.save(out / CONFIG_NAME)
        update_run_info(out, kind="instruction-tuning", bench=str(inputs.bench.dataset_dir),
                        store=str(inputs.bench.store_dir),
                        encoder=str(inputs.encoder_dir) if inputs.encoder_dir else None,
                        index=str(inputs.index_dir) if inputs.index_dir else None,
                        n_train=len(train), n_valid=len(valid), seed=config.seed,
                        max_minutes=max_minutes, resumed=resume)

    hints = None
    if config.model.hints_active:
        hints = hint_reader(inputs.encoder_dir, train, calibration=config.model.hint_calibration)
        for data in (train, valid):
            data.add_hints(hints, progress=progress and main)
        if main:
            update_run_info(out, finding_hints={"findings": len(hints.bank.names),
                                                "calibrated_training_auc": hints.training_auc})
    model, tokenizer = build_model(config, inputs.encoder_dir)
    prompts = PromptTokenizer(tokenizer, config.model.n_prefix)
    if config.model.use_ecg and config.model.standardise_ecg:
        fit_standardisers_on_training_ecgs(model, train, seed=config.seed)
    if config.align_steps and config.model.use_ecg and not resume:
        # Every process runs the same seeded stage, so all start tuning from the same weights;
        # a resumed run restores them from its checkpoint instead.
        aligned = align_on_training_ecgs(model, tokenizer, train, config, progress=progress and main)
        if main:
            update_run_info(out, prefix_alignment=aligned.__dict__)
    if config.caption_steps and config.model.use_ecg and not resume:
        captioned = caption_on_training_ecgs(model, prompts, train, config,
                                             progress=progress and main)
        if main:
            update_run_info(out, report_captioning=captioned.__dict__)
    optimizer = optimizer_for(model, config)
    max_steps = config.steps_for(len(train))
    scheduler, schedule = warmup_cosine(optimizer, max_steps, config.warmup_fraction)
    model, optimizer = accelerator.prepare(model, optimizer)
    local: QHeartModel = accelerator.unwrap_model(model)
    plan = BatchPlan(train.lengths(), config.batch_size, config.seed, rows=train.rows,
                     per_ecg=config.questions_per_ecg)
    step_fn = train_step_fn(model, local, optimizer, scheduler, accelerator, config, train, plan,
                            prompts)

    def eval_fn(step: int) -> dict[str, float]:
        record = {"val_loss": validation_loss(local, valid, config, prompts, accelerator.device),
                  "questions_seen": step * config.batch_size}
        if config.val_exact_match:
            record.update(validation_exact_match(local, valid, config, prompts))
        return record

    def on_best(step: int) -> None:
        if main:
            (out / BEST_DIR).mkdir(exist_ok=True)
            save_file(model_state(local, trainable_only=True),
                      str(out / BEST_DIR / "trainable.safetensors"), metadata={"step": str(step)})

    settings = LoopSettings(max_steps=max_steps, warmup_fraction=config.warmup_fraction,
                            checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                            eval_every=config.eval_every, trainable_only=True,
                            title="instruction tuning")
    result = run_loop(out=out, accelerator=accelerator, model=local, optimizer=optimizer,
                      scheduler=scheduler, schedule=schedule, settings=settings, step_fn=step_fn,
                      eval_fn=eval_fn, on_best=on_best, resume=resume, started=started,
                      max_minutes=max_minutes, stop_after=stop_after, progress=progress)
    if main:
        export(local, tokenizer, out, config, inputs, train)
        if hints is not None:
            from qheart.models.finding_hints import HINTS_DIR

            hints.save(out / HINTS_DIR, ECGEncoder.from_pretrained(inputs.encoder_dir))
    accelerator.wait_for_everyone()
    return result


def export(model: QHeartModel, tokenizer, out: Path, config: TrainConfig, inputs: TrainInputs,
           train: QASet) -> None:
    """Write the model folder from the best validation weights (the last ones if none)."""
    best = out / BEST_DIR / "trainable.safetensors"
    if best.is_file():
        model.load_state_dict(load_file(str(best)), strict=False)
    index = None
    if inputs.index_dir is not None and config.model.retrieval_active:
        from qheart.retrieval.search import Retriever

        retriever = Retriever.load(inputs.index_dir)
        index = {"path": str(inputs.index_dir.resolve()), "build_id": retriever.build_id}
        # Queries must be embedded by the encoder that built the index (the model's own encoder
        # was tuned further), so the folder keeps a copy of it.
        recorded = retriever.manifest.get("encoder", {}).get("path")
        source = encoder_folder(Path(recorded)) if recorded else inputs.encoder_dir
        if source is not None:
            ECGEncoder.from_pretrained(source).save_pretrained(out / RETRIEVAL_ENCODER)
    save_model_folder(model, tokenizer, out, info={"train": config.to_dict(), "index": index},
                      questions=question_catalogue(train))
