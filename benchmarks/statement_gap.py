"""What does the encoder read in real ECGs of one class that it does not read in synthetic ones?

For every report statement the pre-training corpus uses, the zero-shot score (cosine between the
ECG's embedding and the statement's projection) is standardised with the mean and spread over
all synthetic ECGs, then averaged over the ECGs of one class (NORM by default) in the real store
and in the synthetic one. The statements whose score rises most from synthetic to real are what
the encoder believes the real ECGs of that class show; for NORM, what drags the real normals'
"Normal ECG" score down. The real records are only measured here (no fitting on them).

    .venv/bin/python benchmarks/statement_gap.py --encoder runs/demo/pretrain \\
        --synthetic runs/demo/bench/store --real runs/demo/ptbxl100 \\
        --scp-statements ../shared/real-samples/ptb-xl/scp_statements.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from qheart.data.store import SignalStore
from qheart.evaluation.class_prompts import FINDING_STATEMENTS
from qheart.evaluation.zero_shot import build_label_set, load_checkpoint
from qheart.models.finding_hints import text_projection


def statement_gap(encoder_dir: Path, synthetic: Path, real: Path, scp_statements: Path,
                  label: str = "NORM") -> tuple[list[str], np.ndarray, int, int]:
    """(statements, real − synthetic mean standardised score of the class's ECGs, n real,
    n synthetic)."""
    encoder, _, _ = load_checkpoint(encoder_dir)
    project = text_projection(encoder_dir)  # names the folder when it has no text head
    syn, rl = SignalStore(synthetic), SignalStore(real)
    syn_labels = build_label_set("synthetic-super", syn, all_rows=True)
    real_labels = build_label_set("ptbxl-super", rl, scp_statements=scp_statements, all_rows=True)
    statements = sorted({s for group in FINDING_STATEMENTS.values() for s in group})
    with torch.no_grad():
        prompts = torch.nn.functional.normalize(project(statements).float(), dim=-1).numpy()
    syn_scores = encoder.embed(syn.signals(syn_labels.rows)) @ prompts.T
    real_scores = encoder.embed(rl.signals(real_labels.rows)) @ prompts.T
    mean, sd = syn_scores.mean(0), syn_scores.std(0) + 1e-6
    in_syn = syn_labels.labels[:, syn_labels.classes.index(label)]
    in_real = real_labels.labels[:, real_labels.classes.index(label)]
    gap = ((real_scores[in_real] - mean) / sd).mean(0) - ((syn_scores[in_syn] - mean) / sd).mean(0)
    return statements, gap, int(in_real.sum()), int(in_syn.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", type=Path, required=True, help="qheart pretrain output")
    parser.add_argument("--synthetic", type=Path, required=True, help="synthetic signal store")
    parser.add_argument("--real", type=Path, required=True, help="prepared PTB-XL signal store")
    parser.add_argument("--scp-statements", type=Path, required=True)
    parser.add_argument("--label", default="NORM", choices=("CD", "HYP", "MI", "NORM", "STTC"),
                        help="PTB-XL superclass whose ECGs are compared")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    statements, gap, n_real, n_syn = statement_gap(args.encoder, args.synthetic, args.real,
                                                   args.scp_statements, args.label)
    print(f"{args.label}: {n_real} real vs {n_syn} synthetic ECGs; score gap in synthetic SDs")
    order = np.argsort(-gap)
    for i in order[: args.top]:
        print(f"  {gap[i]:+.2f}  {statements[i]}")
    print("  …")
    for i in order[-args.top // 2 :]:
        print(f"  {gap[i]:+.2f}  {statements[i]}")


if __name__ == "__main__":
    main()
