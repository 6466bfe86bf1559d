"""Finding-hint calibration: LDA (what training uses) against a logistic fit, side by side.

A hint turns the pre-trained encoder's score for a finding into a verdict word through a
calibration fitted on the training questions (`FindingBank.calibrate`). Both calibrations are
fitted here on the same training examples of a model folder's bank and measured on:

- the synthetic validation questions (in domain): accuracy of p > 0.5 and log loss;
- unlabelled real-like ECGs (`--deepfake STORE`, from `qheart data deepfake`): deepfake-ecg's
  generator was trained on normal ECGs, so they should read "sinus rhythm" present and the
  pathologies absent; printed: the share read present per finding;
- the real PTB-XL records (`--ptbxl DIR`, measured only, never fitted on): per yardstick
  finding the hint's accuracy (p > 0.5 against the label) on the yardstick's balanced
  questions, and the score's AUC.

    .venv/bin/python benchmarks/bench_hint_calibration.py --model runs/demo/qheart \\
        --bench runs/demo/bench \\
        --ptbxl ../shared/real-samples/ptb-xl --deepfake runs/deepfake

"logistic" is `--set model.hint_calibration=logistic`, the calibration before LDA.
"""

from __future__ import annotations

import argparse
import copy
from collections import defaultdict
from pathlib import Path

import numpy as np

NORMAL_READS = ("sinus rhythm", "normal heart axis")
"""Findings a normal ECG shows ("none of …" options too); every other one should read absent."""


def normal_reads(finding: str) -> bool:
    return finding in NORMAL_READS or finding.startswith("none of ")


def calibrations(bank, finding: np.ndarray, score: np.ndarray, present: np.ndarray) -> dict:
    """The bank calibrated each way (`FindingBank.calibrate`) on the same training examples."""
    banks = {}
    for method in ("logistic", "lda"):
        banks[method] = copy.deepcopy(bank)
        banks[method].calibrate(finding, score, present, method)
    return banks


def question_examples(reader, bench, split: str, batch_size: int = 64):
    """(finding, standardised score, present) of every hinted finding of a split's questions."""
    from qheart.models.finding_hints import presence_labels
    from qheart.training.instruct_data import QASet

    data = QASet.load(bench, split, None)
    rows, owner = np.unique(data.rows, return_inverse=True)
    z = np.concatenate([reader.embed(data.store.signals(rows[i : i + batch_size]))
                        for i in range(0, len(rows), batch_size)])
    scores = reader.bank.scores(z)
    column = {name: i for i, name in enumerate(reader.bank.names)}
    found = [(name, scores[owner[i], column[name]], present)
             for i, (sample, options) in enumerate(zip(data.samples, data.options, strict=True))
             for name, present in presence_labels(reader.bank, options, sample.attribute,
                                                  sample.answer)]
    finding, score, present = zip(*found, strict=True)
    return np.array(finding), np.array(score), np.array(present, dtype=bool)


def probability(bank, column, score: np.ndarray) -> np.ndarray:
    """The bank's calibrated p(present) for standardised `score`s of its finding(s) `column`."""
    return 1.0 / (1.0 + np.exp(-(score * bank.slope[column] + bank.intercept[column])))


def print_synthetic(banks: dict, finding, score, present) -> None:
    print("synthetic validation questions (in domain)")
    for name, bank in banks.items():
        column = np.array([bank.names.index(f) for f in finding])
        calibrated = (bank.slope[column] != 1.0) | (bank.intercept[column] != 0.0)
        p = probability(bank, column, score)[calibrated]
        y = present[calibrated]
        loss = -np.mean(np.log(np.clip(np.where(y, p, 1 - p), 1e-6, None)))
        print(f"  {name:9s} accuracy {np.mean((p > 0.5) == y):.3f}  log loss {loss:.3f}  "
              f"({len(y)} examples)")


def print_deepfake(banks: dict, reader, store_dir: Path) -> None:
    from qheart.data.store import SignalStore

    store = SignalStore(store_dir)
    scores = reader.bank.scores(reader.embed(store.signals(np.arange(len(store)))))
    print(f"\n{len(store)} deepfake ECGs (real-like normals): share read present (p > 0.5)")
    names = sorted(reader.bank.names, key=lambda n: not normal_reads(n))
    print(f"  {'finding':45s}" + "".join(f"{name:>10s}" for name in banks))
    for finding in names:
        j = reader.bank.names.index(finding)
        shares = [np.mean(probability(b, j, scores[:, j]) > 0.5) for b in banks.values()]
        if normal_reads(finding) or max(shares) >= 0.05:
            expect = "present" if normal_reads(finding) else "absent"
            print(f"  {finding + ' (' + expect + ')':45s}" + "".join(f"{s:>10.2f}" for s in shares))
    print("  (absent findings read present by < 5% of them under both are not listed)")


def print_real(banks: dict, reader, ptbxl: Path) -> None:
    from qheart.evaluation.evaluate import yardstick_questions
    from qheart.evaluation.zero_shot import roc_auc
    from qheart.models.finding_hints import hinted_findings

    samples, signals, _ = yardstick_questions(ptbxl)
    # record-level findings only (noise questions are per lead, and the encoder does not see noise)
    keep = [i for i, s in enumerate(samples) if s.attribute_type == "scp_code"]
    samples, signals = [samples[i] for i in keep], signals[keep]
    scores = reader.bank.scores(np.concatenate(
        [reader.embed(signals[i : i + 64]) for i in range(0, len(signals), 64)]))
    per_finding = defaultdict(list)
    for i, sample in enumerate(samples):
        found = hinted_findings(reader.bank, sample.question, ["yes", "no"], sample.attribute)
        if len(found) == 1:
            j = reader.bank.names.index(found[0])
            per_finding[found[0]].append((scores[i, j], sample.answer[0] == "yes"))
    print(f"\nreal PTB-XL yardstick, record-level findings ({ptbxl}): hint accuracy (p > 0.5)")
    print(f"  {'finding':40s} {'n':>4s} {'AUC':>5s}" + "".join(f"{n:>10s}" for n in banks))
    correct: dict[str, list[bool]] = {name: [] for name in banks}
    for finding, pairs in sorted(per_finding.items()):
        score, yes = (np.array(v) for v in zip(*pairs, strict=True))
        j = reader.bank.names.index(finding)
        row = []
        for name, bank in banks.items():
            right = (probability(bank, j, score) > 0.5) == yes
            correct[name] += right.tolist()
            row.append(right.mean())
        print(f"  {finding:40s} {len(yes):>4d} {roc_auc(yes.astype(int), score):>5.2f}"
              + "".join(f"{a:>10.2f}" for a in row))
    print(f"  {'all':40s} {len(correct['lda']):>4d} {'':>5s}"
          + "".join(f"{np.mean(v):>10.3f}" for v in correct.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True,
                        help="A model folder trained with finding hints (its finding_hints/).")
    parser.add_argument("--bench", type=Path, required=True, help="The benchmark it trained on.")
    parser.add_argument("--ptbxl", type=Path, help="A PTB-XL folder (measured only).")
    parser.add_argument("--deepfake", type=Path, help="A `qheart data deepfake` store.")
    args = parser.parse_args()

    from qheart.models.finding_hints import HINTS_DIR, HintReader
    from qheart.training.instruct_data import Benchmark

    reader = HintReader.load(args.model / HINTS_DIR)
    bench = Benchmark.from_path(args.bench)
    banks = calibrations(reader.bank, *question_examples(reader, bench, "train"))
    print_synthetic(banks, *question_examples(reader, bench, "valid"))
    if args.deepfake:
        print_deepfake(banks, reader, args.deepfake)
    if args.ptbxl:
        print_real(banks, reader, args.ptbxl)


if __name__ == "__main__":
    main()
