"""Fakes for retrieval tests: tiny signal stores whose ECGs carry a known embedding, and a fake encoder that reads it back.

The fake `embed` returns the first DIM samples of lead I, so a test decides every embedding (and
so every neighbour) by writing those samples; the encoder itself is tested elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from qheart.data.leads import N_LEADS, N_SAMPLES
from qheart.data.store import SignalStore, StoreWriter

DIM = 16


def fake_embed(signals: np.ndarray) -> np.ndarray:
    """(B, 12, 5000) → (B, DIM): the embedding a test wrote into lead I."""
    return np.ascontiguousarray(signals[:, 0, :DIM], dtype=np.float32)


class CountingEmbed:
    """fake_embed that counts ECGs and can fail (raise, or SIGKILL itself) at a chosen call."""

    def __init__(self, fail_at_call: int | None = None, kill: bool = False) -> None:
        self.ecgs = 0
        self.calls = 0
        self.fail_at_call = fail_at_call
        self.kill = kill

    def __call__(self, signals: np.ndarray) -> np.ndarray:
        if self.calls == self.fail_at_call:
            if self.kill:
                import os
                import signal

                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"injected failure at call {self.calls}")
        self.calls += 1
        self.ecgs += len(signals)
        return fake_embed(signals)


def clustered_codes(n_clusters: int, per_cluster: int, seed: int = 0,
                    noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in tight clusters: (n, DIM) codes and (n,) cluster labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, DIM))
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    codes = centres[labels] + noise * rng.standard_normal((len(labels), DIM))
    codes /= np.linalg.norm(codes, axis=1, keepdims=True)
    return codes.astype(np.float32), labels


def write_store(root: Path, codes: np.ndarray, *, first_id: int = 1000,
                patients: np.ndarray | None = None, reports: list[str] | None = None,
                findings: list[list[str]] | None = None, splits: list[str] | None = None,
                chunk: int = 32) -> SignalStore:
    """A finished SignalStore whose row i embeds (via fake_embed) to codes[i]."""
    n = len(codes)
    # Low-amplitude noise everywhere (readers refuse flat leads), the code in lead I's start.
    signals = 0.05 * np.random.default_rng(n).standard_normal((n, N_LEADS, N_SAMPLES))
    signals[:, 0, :DIM] = codes
    rows = pd.DataFrame({
        "ecg_id": np.arange(first_id, first_id + n, dtype=np.int64),
        "patient_id": pd.array(patients if patients is not None else np.arange(n) + 1,
                               dtype="Int64"),
        "report": reports if reports is not None else [f"report of ecg {first_id + i}"
                                                       for i in range(n)],
    })
    if findings is not None:
        rows["findings"] = [json.dumps(f) for f in findings]
    if splits is not None:
        rows["split"] = splits
    writer = StoreWriter(root, source="test")
    for c, start in enumerate(range(0, n, chunk)):
        writer.write_chunk(c, signals[start : start + chunk], rows.iloc[start : start + chunk])
    return writer.finalize()


def write_ecgqa(dataset_dir: Path, split: str, questions: list[tuple[int, int]],
                variant: str = "paraphrased") -> None:
    """A one-file ECG-QA split in the official layout: (sample_id, ecg_id) verify questions,
    plus one comparison question that the loader must skip."""
    folder = dataset_dir / variant / split
    folder.mkdir(parents=True, exist_ok=True)
    records = [{"template_id": 1, "question_id": 1, "sample_id": sample_id,
                "question_type": "single-verify", "attribute_type": "scp_code",
                "question": "Does this ECG show sinus rhythm?", "answer": ["yes"],
                "ecg_id": [ecg_id], "attribute": ["sinus rhythm"]}
               for sample_id, ecg_id in questions]
    records.append({**records[0], "sample_id": 10**6, "question_type": "comparison_consecutive-verify",
                    "ecg_id": [questions[0][1], questions[1][1]]})
    (folder / "000000.json").write_text(json.dumps(records), encoding="utf-8")


def dominant_direction_codes(n_clusters: int, per_cluster: int,
                             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings shaped like the demo encoder's: every vector shares one large common direction
    (dimension 0), and a nuisance coordinate (dimension 1) varies across the corpus fifty times
    more than the cluster structure (dimensions 2…) that should decide the neighbours. Plain
    cosine ranks by the nuisance; whitened cosine by cluster. (n, DIM) codes, (n,) labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    centres = 0.02 * rng.standard_normal((n_clusters, DIM - 2))
    codes = np.empty((len(labels), DIM))
    codes[:, 0] = 4.0
    codes[:, 1] = rng.standard_normal(len(labels))
    codes[:, 2:] = centres[labels] + 0.002 * rng.standard_normal((len(labels), DIM - 2))
    return codes.astype(np.float32), labels
