"""What pre-training reads: ECG–report pairs from signal stores, seeded batches and masks, and
the cached frozen text-encoder embeddings of the reports."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from qheart.data.augment import augment_batch, augment_rng
from qheart.data.store import SignalStore
from qheart.models.text_encoder import TextEncoder
from qheart.training.pretrain_config import PretrainConfig

ReportEncoder = Callable[[list[str]], torch.Tensor]
"""texts → (N, dim) embeddings (the frozen text encoder's `encode`, or a stand-in)."""

REPORT_CACHE = "report_embeddings.safetensors"
UNPAIRED = ""
"""Report key of an ECG without a report: its embedding is zero and SigLIP never sees it."""

# ----------------------------------------------------------------------------- data


def normalise_report(text: str) -> str:
    """Case- and whitespace-insensitive key: two reports with the same key are duplicates."""
    return " ".join(str(text).lower().replace(";", ".").split()).strip(" .")


@dataclass
class PretrainData:
    """ECG–report pairs drawn from one or more signal stores."""

    stores: list[SignalStore]
    """The stores the rows point into."""
    items: np.ndarray
    """(N, 2) int64: (store index, row) per pair."""
    report_keys: list[str]
    """Normalised report per pair (see `normalise_report`)."""

    def __len__(self) -> int:
        return len(self.items)

    @cached_property
    def paired(self) -> np.ndarray:
        """(N,) bool: the item has a report (unpaired ECGs only feed masked modelling)."""
        return np.asarray([key != UNPAIRED for key in self.report_keys], dtype=bool)

    @classmethod
    def from_stores(cls, stores: list[SignalStore], splits: dict[int, set[str] | None],
                    unpaired: set[int] = frozenset()) -> PretrainData:
        """Pairs of every row with a non-empty report (and, per store, a `split` in the set); the
        stores in `unpaired` join with every row and no report (masked modelling only)."""
        items, keys = [], []
        for index, store in enumerate(stores):
            meta = store.metadata
            if index in unpaired:
                items += [(index, r) for r in range(len(meta))]
                keys += [UNPAIRED] * len(meta)
                continue
            keep = meta["report"].fillna("").str.strip() != ""
            wanted = splits.get(index)
            if wanted is not None and "split" in meta.columns:
                keep &= meta["split"].isin(wanted)
            rows = np.flatnonzero(keep.to_numpy())
            items += [(index, int(r)) for r in rows]
            keys += [normalise_report(t) for t in meta["report"].to_numpy()[rows]]
        if not items:
            raise ValueError(f"no ECG–report pairs in {[str(s.root) for s in stores]}")
        return cls(stores, np.asarray(items, dtype=np.int64), keys)

    @classmethod
    def from_path(cls, path: str | Path, unpaired: Sequence[str | Path] = ()) -> PretrainData:
        """A store folder (all rows), or a benchmark folder: `store/` (train split) + `corpus/`;
        plus `unpaired` stores of ECGs without reports (e.g. `qheart data deepfake`)."""
        path = Path(path)
        extra = [SignalStore(p) for p in unpaired]
        if (path / "store.json").is_file():
            stores = [SignalStore(path), *extra]
            return cls.from_stores(stores, {0: None}, set(range(1, len(stores))))
        stores, splits = [], {}
        if (path / "store" / "store.json").is_file():
            stores.append(SignalStore(path / "store"))
            splits[0] = {"train"}
        if (path / "corpus" / "store.json").is_file():
            splits[len(stores)] = None
            stores.append(SignalStore(path / "corpus"))
        if not stores:
            raise FileNotFoundError(f"{path}: neither a signal store nor a folder with store/ or corpus/")
        first = len(stores)
        return cls.from_stores([*stores, *extra], splits, set(range(first, first + len(extra))))

    def signals(self, indices: np.ndarray) -> np.ndarray:
        """(B, 12, n) float32 for item indices, read store by store."""
        pairs = self.items[indices]
        out: np.ndarray | None = None
        for store_index in np.unique(pairs[:, 0]):
            where = np.flatnonzero(pairs[:, 0] == store_index)
            block = self.stores[store_index].signals(pairs[where, 1])  # (b, 12, n)
            if out is None:
                out = np.empty((len(pairs), *block.shape[1:]), dtype=np.float32)
            out[where] = block
        assert out is not None
        return out


def batch_indices(n_items: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Item indices of the batch at `step`: a fresh permutation per epoch, last partial batch
    dropped, so the sequence depends only on (n_items, batch_size, seed)."""
    per_epoch = max(n_items // batch_size, 1)
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n_items)
    return order[position * batch_size : (position + 1) * batch_size]


def step_generator(seed: int, step: int) -> torch.Generator:
    """The RNG for one step's masks and crops (independent of how the run was interrupted)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def random_lead_mask(batch: int, n_leads: int, prob: float, generator: torch.Generator) -> torch.Tensor:
    """(B, L) bool, True = hidden; each lead independently with `prob`, never all of them."""
    mask = torch.rand(batch, n_leads, generator=generator) < prob
    keep = torch.randint(n_leads, (batch,), generator=generator)
    mask[torch.arange(batch), keep] &= ~mask.all(dim=1)  # all hidden → reveal one random lead
    return mask


def random_step_mask(batch: int, n_steps: int, prob: float, span: int,
                     generator: torch.Generator) -> torch.Tensor:
    """(B, T) bool span mask (wav2vec 2.0 style): start spans with prob/span, each `span` long."""
    starts = torch.rand(batch, n_steps, generator=generator) < prob / span
    mask = torch.zeros(batch, n_steps + span, dtype=torch.bool)
    for offset in range(span):
        mask[:, offset : offset + n_steps] |= starts
    return mask[:, :n_steps]


def random_crop(signals: np.ndarray, length: int | None, generator: torch.Generator) -> np.ndarray:
    """(B, L, n) → (B, L, length) at a random offset per ECG (no-op for None)."""
    if length is None or length >= signals.shape[-1]:
        return signals
    offsets = torch.randint(signals.shape[-1] - length + 1, (len(signals),), generator=generator)
    return np.stack([s[:, o : o + length] for s, o in zip(signals, offsets.tolist(), strict=True)])


def training_signals(data: PretrainData, indices: np.ndarray, config: PretrainConfig, step: int,
                     generator: torch.Generator) -> np.ndarray:
    """(B, 12, n) what one step trains on: the ECGs, randomly cropped, then augmented with the
    config's recording augmentations (seeded by (seed, step): a resumed run replays them)."""
    signals = random_crop(data.signals(indices), config.crop_samples, generator)
    return augment_batch(signals, config.augment, augment_rng(config.seed, step))


# ----------------------------------------------------------------------------- report cache


def text_encoder_once(name: str, log: bool = True) -> ReportEncoder:
    """The frozen text encoder `name` as a ReportEncoder that loads the model on first use (a
    run whose caches are complete never loads it) and embeds each distinct text once across
    calls: the report cache (statement pooling) and the statement table embed the same
    statements, inside the pre-training time budget."""
    loaded: list[TextEncoder] = []

    def encode(texts: list[str]) -> torch.Tensor:
        if not loaded:
            loaded.append(TextEncoder(name))
        return loaded[0].encode(texts, progress=log)

    return memoised(encode)


def memoised(encode: ReportEncoder) -> ReportEncoder:
    """`encode`, called only for the texts it has not embedded yet."""
    seen: dict[str, torch.Tensor] = {}

    def encode_new(texts: list[str]) -> torch.Tensor:
        new = [t for t in dict.fromkeys(texts) if t not in seen]
        if new:
            seen.update(zip(new, encode(new), strict=True))
        return torch.stack([seen[t] for t in texts]) if texts else encode(texts)

    return encode_new


def split_statements(report: str) -> list[str]:
    """A (normalised) report's statements: machine reports print one per line/sentence."""
    parts = [p.strip(" .") for p in re.split(r"\.\s+|\n|;", report)]
    return [p for p in parts if p] or [report]


def embed_reports(reports: list[str], encode: ReportEncoder, pooling: str) -> torch.Tensor:
    """(U, dim) unit embeddings of unique reports. "statements": the mean of the report's
    statement embeddings — each unique statement is embedded once (far fewer and shorter texts
    than whole reports), and a one-finding prompt lands near every report stating it.
    "full": the text encoder on the whole report."""
    if pooling == "full":
        return F.normalize(encode(reports).float(), dim=-1)
    per_report = [split_statements(r) for r in reports]
    statements = sorted({s for parts in per_report for s in parts})
    index = {s: i for i, s in enumerate(statements)}
    embedded = encode(statements).float()  # (S, dim)
    rows = torch.tensor([index[s] for parts in per_report for s in parts])
    owner = torch.repeat_interleave(torch.tensor([len(p) for p in per_report]))
    summed = torch.zeros(len(reports), embedded.shape[1]).index_add_(0, owner, embedded[rows])
    return F.normalize(summed, dim=-1)


def cached_report_embeddings(data: PretrainData, config: PretrainConfig, out: Path, *,
                             report_encoder: ReportEncoder | None = None,
                             log: bool = True) -> tuple[torch.Tensor, np.ndarray]:
    """Embed every unique normalised report once; returns (U, dim) embeddings and, per pair, the
    row of its report. Cached in `out` so a resumed run never re-runs the text encoder.
    `report_encoder` replaces the named text encoder (tests use a tiny deterministic one)."""
    from safetensors.torch import load_file, save_file

    unique, inverse = np.unique(np.asarray(data.report_keys, dtype=object), return_inverse=True)
    # UNPAIRED ("") sorts first: embed the real reports only, and give it a zero row.
    has_unpaired = len(unique) > 0 and unique[0] == UNPAIRED
    path, meta_path = out / REPORT_CACHE, out / (REPORT_CACHE + ".json")
    meta = {"text_encoder": config.text_encoder, "pooling": config.report_pooling,
            "reports": unique.tolist()}
    if path.is_file() and meta_path.is_file() and json.loads(meta_path.read_text()) == meta:
        return load_file(str(path))["embeddings"], inverse
    if report_encoder is None:
        report_encoder = text_encoder_once(config.text_encoder, log)
    embeddings = embed_reports(unique[int(has_unpaired):].tolist(), report_encoder,
                               config.report_pooling)
    if has_unpaired:
        embeddings = torch.cat([torch.zeros(1, embeddings.shape[1]), embeddings])
    save_file({"embeddings": embeddings.contiguous()}, str(path))
    meta_path.write_text(json.dumps(meta))
    return embeddings, inverse


# ----------------------------------------------------------------------------- statement table

STATEMENT_CACHE = "statement_embeddings.safetensors"


@dataclass
class StatementTable:
    """Every distinct statement of the reports, embedded once, and which ones each report makes
    (for the statement-level loss, `PretrainConfig.statement_weight`)."""

    embeddings: torch.Tensor
    """(S, dim) unit embeddings of the statements by the frozen text encoder."""
    of_report: list[np.ndarray]
    """Per unique report row (the rows `cached_report_embeddings` returns), its statement indices
    (empty for an ECG without a report)."""

    def batch(self, report_rows: Sequence[int]) -> tuple[np.ndarray, torch.Tensor]:
        """The statements the batch's reports make (indices into `embeddings`, sorted) and the
        (B, S_batch) bool targets: report i states statement j."""
        per_item = [self.of_report[int(r)] for r in report_rows]
        present = np.unique(np.concatenate(per_item)) if per_item else np.zeros(0, np.int64)
        targets = torch.zeros(len(per_item), len(present), dtype=torch.bool)
        for i, ids in enumerate(per_item):
            targets[i, torch.as_tensor(np.searchsorted(present, ids))] = True
        return present, targets


def cached_statement_table(data: PretrainData, config: PretrainConfig, out: Path, *,
                           report_encoder: ReportEncoder | None = None,
                           log: bool = True) -> StatementTable:
    """Split every unique report into statements (`split_statements`), embed each distinct one
    once, and cache the embeddings in `out` beside the report cache."""
    from safetensors.torch import load_file, save_file

    unique = np.unique(np.asarray(data.report_keys, dtype=object))
    per_report = [[] if r == UNPAIRED else split_statements(r) for r in unique.tolist()]
    statements = sorted({s for parts in per_report for s in parts})
    index = {s: i for i, s in enumerate(statements)}
    of_report = [np.asarray(sorted({index[s] for s in parts}), dtype=np.int64) for parts in per_report]
    path, meta_path = out / STATEMENT_CACHE, out / (STATEMENT_CACHE + ".json")
    meta = {"text_encoder": config.text_encoder, "statements": statements}
    if path.is_file() and meta_path.is_file() and json.loads(meta_path.read_text()) == meta:
        return StatementTable(load_file(str(path))["embeddings"], of_report)
    if report_encoder is None:
        report_encoder = text_encoder_once(config.text_encoder, log)
    embeddings = F.normalize(report_encoder(statements).float(), dim=-1)
    save_file({"embeddings": embeddings.contiguous()}, str(path))
    meta_path.write_text(json.dumps(meta))
    return StatementTable(embeddings, of_report)
