"""ECG–report pre-training of the encoder (C-MELT style): SigLIP + masked ECG modelling.

Run layout (`out/`):

    pretrain_config.json        the run's hyperparameters (written at start, with the version)
    run.json                    data paths, budget, fitted horizon, seed, qheart version
    report_embeddings.safetensors  frozen text-encoder embeddings of the unique reports (cached once)
    checkpoint/                 safetensors + JSON only, replaced atomically (training/checkpoint.py)
    encoder/                    the ECGEncoder (config.json + model.safetensors) — what later
                                stages load
    text_head.safetensors       the report projection + SigLIP temperature/bias (zero-shot needs it)
    loss_curve.png

Determinism: batch order comes from (seed, epoch) and every random mask/crop from a generator
seeded by (seed, step), so a resumed run replays exactly the batches and masks an uninterrupted
run would have seen.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from qheart.models.encoder import ECGEncoder
from qheart.models.losses import (
    SigLIPLoss,
    StatementLoss,
    masked_modelling_loss,
    negative_pair_weights,
    patchify,
)
from qheart.models.text_encoder import TextEncoder, TextHead
from qheart.training.loop import LoopResult, LoopSettings, open_run, run_loop, update_run_info
from qheart.training.pretrain_config import PretrainConfig
from qheart.training.pretrain_data import (
    PretrainData,
    ReportEncoder,
    StatementTable,
    batch_indices,
    cached_report_embeddings,
    cached_statement_table,
    memoised,
    random_lead_mask,
    random_step_mask,
    step_generator,
    text_encoder_once,
    training_signals,
)
from qheart.training.schedule import parameter_groups, warmup_cosine

if TYPE_CHECKING:
    from accelerate import Accelerator

CONFIG_NAME = "pretrain_config.json"


# ----------------------------------------------------------------------------- model


class PretrainModel(nn.Module):
    """Everything pre-training trains: the encoder, the report projection, the SigLIP
    temperature/bias (and the statement loss's, when on), a linear head that reconstructs masked
    steps, and (only when tuned) the text encoder."""

    def __init__(self, config: PretrainConfig, text_dim: int) -> None:
        super().__init__()
        enc = config.encoder
        self.config = config
        self.encoder = ECGEncoder(enc)
        self.text_head = TextHead(text_dim, enc.embed_dim)
        # SigLIP's -10 bias suits batches of ~32k; a batch of B has B-1 negatives per positive, so
        # start from that prior (-log B) or a short run spends its steps moving the bias.
        self.siglip = SigLIPLoss(init_bias=-math.log(config.batch_size))
        self.statement_loss = StatementLoss() if config.statement_weight > 0 else None
        self.reconstruct = nn.Linear(enc.d_model, enc.n_leads * enc.samples_per_step)
        self.text_encoder = (TextEncoder(config.text_encoder, trainable=True)
                             if config.tune_text_encoder else None)

    def forward(self, signals: torch.Tensor, report_embeddings: torch.Tensor,
                pair_weights: torch.Tensor, lead_mask: torch.Tensor,
                step_mask: torch.Tensor, statements: torch.Tensor | None = None,
                statement_targets: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """signals (B, 12, n); report_embeddings (B, text_dim); with the statement loss on, the
        batch's statements (S, text_dim) and which ECG states which (B, S) → losses."""
        enc = self.config.encoder
        out = self.encoder(signals, lead_mask=lead_mask, step_mask=step_mask)
        text = self.text_head(report_embeddings)  # (B, embed_dim)
        siglip = self.siglip(out.embedding, text, pair_weights)
        losses = {"siglip": siglip}
        total = siglip
        if self.statement_loss is not None:
            if statements is None or statement_targets is None:
                raise ValueError("statement_weight > 0: pass the batch's statements and targets")
            counted = pair_weights.diagonal() > 0  # ECGs with a report
            losses["statements"] = self.statement_loss(out.embedding, self.text_head(statements),
                                                       statement_targets, counted)
            total = total + self.config.statement_weight * losses["statements"]
        if self.config.mlm_weight > 0:
            target = patchify(signals, out.hidden.shape[1], enc.samples_per_step)  # (B, T, 12·S)
            mlm = masked_modelling_loss(self.reconstruct(out.hidden), target, step_mask)
        else:
            mlm = torch.zeros((), device=signals.device)
        return {"loss": total + self.config.mlm_weight * mlm, **losses, "mlm": mlm}


def export(model: PretrainModel, out: Path) -> None:
    """Write what later stages load: encoder/ and text_head.safetensors."""
    model.encoder.save_pretrained(out / "encoder")
    model.text_head.save(out / "text_head.safetensors", text_encoder=model.config.text_encoder)


# ----------------------------------------------------------------------------- the run


PretrainResult = LoopResult
"""How a `pretrain` call ended (the shared loop's result: step, finished, history)."""


def pretrain(
    config: PretrainConfig,
    data: PretrainData,
    out: str | Path,
    *,
    resume: bool = False,
    max_minutes: float | None = None,
    stop_after: int | None = None,
    report_encoder: ReportEncoder | None = None,
    progress: bool = True,
) -> PretrainResult:
    """Train (or resume) and export. `max_minutes` bounds this call's wall time (incl. the report
    cache and export) and fits the cosine schedule to it (re-estimated every 10 steps from the
    measured speed); `stop_after` bounds its steps. Either way a resumable checkpoint is left.
    Resuming with a config that differs from the run's is an error naming the fields."""
    from accelerate.utils import set_seed

    started = time.monotonic()
    out = Path(out)
    accelerator = open_run(out, config, CONFIG_NAME, resume=resume)
    if accelerator.is_main_process:
        config.save(out / CONFIG_NAME)
        update_run_info(out, kind="pretrain", data=[str(s.root) for s in data.stores],
                        n_pairs=len(data), seed=config.seed, max_minutes=max_minutes,
                        resumed=resume)
    set_seed(config.seed)

    log = progress and accelerator.is_main_process
    # one encoder for both caches: it loads once, and each statement is embedded once
    encode = memoised(report_encoder) if report_encoder else text_encoder_once(config.text_encoder, log)
    report_embeddings, report_row = cached_report_embeddings(data, config, out,
                                                             report_encoder=encode, log=log)
    keys = torch.as_tensor(report_row, dtype=torch.long)  # (N,) same value = same report
    statements = (cached_statement_table(data, config, out, report_encoder=encode, log=log)
                  if config.statement_weight > 0 else None)
    model = PretrainModel(config, report_embeddings.shape[1])
    optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.lr,
                                  betas=config.betas)
    scheduler, schedule = warmup_cosine(optimizer, config.max_steps, config.warmup_fraction)
    model, optimizer = accelerator.prepare(model, optimizer)
    # The scheduler is not prepared: an AcceleratedScheduler would step once per process.
    local = accelerator.unwrap_model(model)
    per_process = config.batch_size // accelerator.num_processes

    def step_fn(step: int) -> dict[str, float]:
        return train_step(model, local, optimizer, scheduler, accelerator, config, data,
                          report_embeddings, keys, step, per_process, statements)

    settings = LoopSettings(max_steps=config.max_steps, warmup_fraction=config.warmup_fraction,
                            checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                            title="pre-training")
    result = run_loop(out=out, accelerator=accelerator, model=local, optimizer=optimizer,
                      scheduler=scheduler, schedule=schedule, settings=settings, step_fn=step_fn,
                      resume=resume, started=started, max_minutes=max_minutes,
                      stop_after=stop_after, progress=progress)
    if accelerator.is_main_process:
        export(local, out)
    accelerator.wait_for_everyone()
    return result


def train_step(model: nn.Module, local: PretrainModel, optimizer: torch.optim.Optimizer,
               scheduler: torch.optim.lr_scheduler.LRScheduler, accelerator: Accelerator,
               config: PretrainConfig, data: PretrainData, report_embeddings: torch.Tensor,
               keys: torch.Tensor, step: int, per_process: int,
               statements: StatementTable | None = None) -> dict[str, float]:
    """One optimiser step on this process's share of the step's batch."""
    generator = step_generator(config.seed, step)
    indices = batch_indices(len(data), config.batch_size, step, config.seed)
    indices = indices[accelerator.process_index :: accelerator.num_processes][:per_process]
    signals = training_signals(data, indices, config, step, generator)  # (B, 12, n)
    x = torch.as_tensor(signals, device=accelerator.device)
    n_steps = config.encoder.steps_for(x.shape[-1])
    lead_mask = random_lead_mask(len(x), x.shape[1], config.lead_mask_prob, generator)
    step_mask = random_step_mask(len(x), n_steps, config.step_mask_prob, config.step_mask_span,
                                 generator)
    batch_keys = keys[indices]
    cached = report_embeddings[batch_keys]  # (B, text_dim), frozen encoder: the search space
    weights = negative_pair_weights(cached, config.negative_threshold, batch_keys)  # (B, B)
    paired = torch.as_tensor(data.paired[indices], dtype=torch.float32)  # (B,)
    weights = weights * paired[:, None] * paired[None, :]  # unpaired ECGs: masked modelling only
    with accelerator.autocast():
        if local.text_encoder is not None:  # tuned: embed this batch's reports afresh
            reports = local.text_encoder([data.report_keys[i] for i in indices])
        else:
            reports = cached.to(x.device)
        extra = {}
        if statements is not None:
            present, targets = statements.batch(batch_keys.tolist())
            extra = {"statements": statements.embeddings[torch.as_tensor(present)].to(x.device),
                     "statement_targets": targets.to(x.device)}
        losses = model(x, reports, weights.to(x.device), lead_mask.to(x.device),
                       step_mask.to(x.device), **extra)
    optimizer.zero_grad(set_to_none=True)
    accelerator.backward(losses["loss"])
    if config.grad_clip:
        accelerator.clip_grad_norm_(local.parameters(), config.grad_clip)
    optimizer.step()
    scheduler.step()
    return {name: float(value.detach()) for name, value in losses.items()}
