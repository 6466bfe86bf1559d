"""Instruction-tuning step: ours vs. the naive way, same model, same data, one run.

ours  = logits only at answer positions, questions of one ECG grouped behind one shared
        context pass (cpu-small's questions_per_ecg), signals read from the memory-mapped store
        in one call per batch, cached reports
naive = full-vocabulary logits at every position, every question its own whole sequence,
        unbucketed (random) batches, one file read per sample (the authors' loader reads a
        record per sample)

Both use the same cached retrieved reports (BENCH/retrieved/, written by `qheart train` or
`make demo`) when there are any, otherwise no report.

Each variant runs in its own process (so its peak RSS is its own), after warm-up steps; the
variants alternate and the best of the repeats is kept. Prints samples/s, peak RSS and ratios.

    .venv/bin/python benchmarks/bench_train.py --bench runs/demo/bench --steps 8 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class PerSampleFiles:
    """A store stand-in that reads one .npy file per ECG (the naive loader)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def signals(self, rows) -> np.ndarray:
        return np.stack([np.load(self.folder / f"{int(r)}.npy") for r in rows]).astype(np.float32)


def run_variant(variant: str, bench: Path, steps: int, warmup: int, batch: int) -> dict:
    import torch

    from qheart.models.prompts import PromptTokenizer
    from qheart.training.instruct import build_model, optimizer_for
    from qheart.training.instruct_config import TrainConfig
    from qheart.training.instruct_data import BatchPlan, Benchmark, QASet, make_batch

    torch.manual_seed(0)
    from qheart.retrieval.precompute import RetrievedReports

    cached = sorted((bench / "retrieved").glob("*-train-*.json"))
    config = TrainConfig.from_name("cpu-small").with_overrides(
        [f"batch_size={batch}", f"micro_batch_size={batch}",
         f"model.use_retrieval={str(bool(cached)).lower()}"])
    data = QASet.load(Benchmark.from_path(bench), "train",
                      RetrievedReports.load(cached[-1]) if cached else None)
    naive = variant == "naive"
    if naive:  # one file per ECG, written before timing starts
        folder = Path(tempfile.mkdtemp(prefix="bench-train-"))
        for row in np.unique(data.rows):
            np.save(folder / f"{int(row)}.npy", data.store.signal(int(row)))
        data.store = PerSampleFiles(folder)
    model, tokenizer = build_model(config, None)
    prompts = PromptTokenizer(tokenizer, config.model.n_prefix)
    optimizer = optimizer_for(model, config)
    plan = BatchPlan(data.lengths(), batch, seed=0, bucketed=not naive, rows=data.rows,
                     per_ecg=1 if naive else config.questions_per_ecg)
    model.train()
    tokens = 0
    for step in range(warmup + steps):
        if step == warmup:
            started, tokens = time.perf_counter(), 0
        b = make_batch(data, plan.batch(step), config.model, prompts, seed=0, step=step)
        if naive:
            whole = b.unshared()
            tokens += int(whole["attention_mask"].numel())
            loss = model.forward_full(**whole, full_logits=True)
        else:
            tokens += int(b.context_mask.numel() + b.tail_mask.numel())
            loss = model(**b.as_kwargs())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"variant": variant, "samples_per_s": steps * batch / seconds,
            "padded_tokens_per_step": tokens / steps, "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", type=Path, default=Path("runs/demo/bench"))
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variant", choices=["ours", "naive"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # child process
        print(json.dumps(run_variant(args.variant, args.bench, args.steps, args.warmup,
                                     args.batch)))
        return
    if not (args.bench / "ecgqa").is_dir():
        raise SystemExit(f"{args.bench}: no benchmark (run `qheart data synth` or `make demo`)")
    best: dict[str, dict] = {}
    for repeat in range(args.repeats):
        for variant in (("ours", "naive") if repeat % 2 == 0 else ("naive", "ours")):
            out = subprocess.run([sys.executable, __file__, "--variant", variant,
                                  *(f"--{k}={v}" for k, v in vars(args).items()
                                    if k not in ("variant", "repeats"))],
                                 capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(f"{variant} failed:\n{out.stderr[-3000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            if variant not in best or result["samples_per_s"] > best[variant]["samples_per_s"]:
                best[variant] = result
    print(f"cpu-small: SmolLM2-135M, 10 of 30 layers + LoRA r8; batch {args.batch}; "
          f"{args.steps} timed steps after {args.warmup} warm-up; best of {args.repeats}")
    print(f"{'variant':8s} {'samples/s':>10s} {'padded tokens/step':>19s} {'peak RSS MB':>12s}")
    for name in ("ours", "naive"):
        r = best[name]
        print(f"{name:8s} {r['samples_per_s']:10.2f} {r['padded_tokens_per_step']:19.0f} "
              f"{r['peak_rss_mb']:12.0f}")
    ours, naive = best["ours"], best["naive"]
    print(f"ratios, ours / naive: speed {ours['samples_per_s'] / naive['samples_per_s']:.2f}×, "
          f"padded tokens {ours['padded_tokens_per_step'] / naive['padded_tokens_per_step']:.2f}×, "
          f"peak RSS {ours['peak_rss_mb'] / naive['peak_rss_mb']:.2f}×")


if __name__ == "__main__":
    main()
