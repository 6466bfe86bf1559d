"""Does the synthetic benchmark carry over to real ECGs? Before vs after the realism work, same budget.

For each variant — a generator setting (`qheart.data.synth.realism`: "v1" the first generator,
"v2" the realistic one, "v3" the default: v2 with incomplete RBBB and fascicular blocks) and a
pre-training augmentation preset (`qheart.data.augment`: "off", "recording") and a weight of the
statement-level loss (`PretrainConfig.statement_weight`) — this script synthesises the benchmark
(shared between variants with the same generator), pre-trains the cpu-small encoder exactly as `qheart demo` does (same preset, same
wall-time budget: `--minutes`, 5 by default; or a fixed `--steps` count, fairer when other jobs
share the CPU), then prints, side by side:

- zero-shot and linear-probe AUC per class on the real PTB-XL records (superclasses and rhythm;
  probe = 5-fold cross-validation on the real records' embeddings: they are only *measured*, the
  encoder never trains on them);
- zero-shot and probe macro AUC on the synthetic test split of the variant's own benchmark;
- with `--compare`: the realism report's classifier two-sample AUC (synthetic vs real).

    .venv/bin/python benchmarks/bench_realism.py                        # demo sizes, 5 min each
    .venv/bin/python benchmarks/bench_realism.py --n-ecgs 500 --corpus-ecgs 1000 --minutes 3
    .venv/bin/python benchmarks/bench_realism.py --variants before,v2-only,aug-only,after --steps 150
    .venv/bin/python benchmarks/bench_realism.py --variants v3,v3+statements --steps 691 --seed 0

Outputs (benchmarks, runs, results.json) go to --out; an existing benchmark or run with the same
settings is reused, so an interrupted comparison continues.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import NamedTuple


class Variant(NamedTuple):
    realism: str
    """generator setting (`qheart.data.synth.realism`)"""
    augment: str
    """pre-training augmentation preset (`qheart.data.augment`)"""
    statement_weight: float
    """weight of the statement-level loss (`PretrainConfig.statement_weight`)"""
    crop_samples: int | None = 2500
    """training crop length (`PretrainConfig.crop_samples`; cpu-small: 2500 = 5 s; None: all 10 s)"""
    rhythm_features: bool = False
    """RR-interval statistics added to the embedding (`EncoderConfig.rhythm_features`)"""


VARIANTS: dict[str, Variant] = {
    "before": Variant("v1", "off", 0.0),
    "v2-only": Variant("v2", "off", 0.0),
    "aug-only": Variant("v1", "recording", 0.0),
    "after": Variant("v2", "recording", 0.0),
    "v3": Variant("v3", "recording", 0.0),
    "v3+deepfake": Variant("v3", "recording", 0.0),
    "v3+deepfake-normal": Variant("v3", "recording", 0.0),
    "v3+statements": Variant("v3", "recording", 1.0),
    "v3+statements+7.5s": Variant("v3", "recording", 1.0, 3750),
    "v3+statements+10s": Variant("v3", "recording", 1.0, None),
    "v3+statements+rr": Variant("v3", "recording", 1.0, rhythm_features=True),
    "v4+statements": Variant("v4", "recording", 1.0),
    "v4+statements+rr": Variant("v4", "recording", 1.0, rhythm_features=True),
    "v5+statements+rr": Variant("v5", "recording", 1.0, rhythm_features=True),
    "v6+statements+rr": Variant("v6", "recording", 1.0, rhythm_features=True),
    "v7+statements+rr": Variant("v7", "recording", 1.0, rhythm_features=True),
}
"""The weight is set explicitly because `cpu-small` turned the statement-level loss on after the
first seven variants were measured: "v3+statements" is today's demo pre-training, "v3" the one
before it. "+deepfake": the `--deepfake` store's unlabelled real-like ECGs join pre-training as
masked-modelling-only items. "+deepfake-normal": they join as *normal* ECGs, each paired with the
report our generator writes for a normal ECG at its measured rate (deepfake-ecg's GAN was trained
on 7,233 normal ECGs, Thambawita et al. 2021). "+7.5s", "+10s": longer training crops (rhythms
such as sinus arrhythmia are judged on the RR intervals of a whole breath, 3-5 s), each step
costing more, so compare them at equal time (`--minutes`), not equal steps. "+rr": measured
RR-interval statistics added to the embedding (`EncoderConfig.rhythm_features`, about a tenth
of a step's time: compare at equal time too). "v4": generator v4, sinus rhythm with a resting
adult's RR variability. "v5": generator v5, the normal ST takeoff in V1-V3 (and ST elevation
there labelled from 0.2 mV). "v6": v5 with the real records' background wander. "v7": v6 with
real-sized mid-precordial QRS (QRS-only chest gains), real V1-V2 QRS and T shapes, and normal
QRS/QTc leaning as real ones do."""
REAL_PTBXL = Path(__file__).resolve().parents[1].parent / "shared" / "real-samples" / "ptb-xl"


def make_bench(out: Path, realism: str, n_ecgs: int, corpus_ecgs: int, seed: int) -> Path:
    from qheart.data.synth.generate import generate_benchmark

    bench = out / f"bench-{realism}-{n_ecgs}-{corpus_ecgs}-s{seed}"
    if (bench / "synth.json").is_file():
        return bench
    started = time.monotonic()
    generate_benchmark(bench, n_ecgs, seed, corpus_ecgs, realism=realism,
                       workers=int(os.environ.get("BENCH_WORKERS", "1")))
    print(f"  synthesised {bench.name} in {time.monotonic() - started:.0f} s")
    return bench


def normal_report(heart_rate_bpm: float) -> str:
    """The generator's report for a normal sinus ECG at this rate (its wording, reports.py)."""
    if heart_rate_bpm < 60:
        return "Sinus bradycardia. Borderline ECG."
    if heart_rate_bpm > 100:
        return "Sinus tachycardia. Borderline ECG."
    return "Sinus rhythm. Normal ECG."


def with_normal_background(data, store_path: Path):
    """`data` plus every ECG of `store_path` paired with `normal_report` of its measured rate."""
    import numpy as np

    from qheart.data.store import SignalStore
    from qheart.measurements import measure_ecg
    from qheart.training.pretrain_data import PretrainData, normalise_report

    store = SignalStore(store_path)
    rates = [measure_ecg(store.signal(row)).heart_rate_bpm for row in range(len(store.metadata))]
    keys = [normalise_report(normal_report(75.0 if math.isnan(r) else r)) for r in rates]  # NaN: normal
    items = np.column_stack([np.full(len(keys), len(data.stores)), np.arange(len(keys))])
    return PretrainData([*data.stores, store], np.concatenate([data.items, items]).astype(np.int64),
                        [*data.report_keys, *keys])


def pretrain_variant(out: Path, bench: Path, name: str, augment: str, minutes: float | None,
                     steps: int | None, seed: int, unpaired: list[Path],
                     background: Path | None = None, statement_weight: float = 0.0,
                     crop_samples: int | None = 2500, rhythm_features: bool = False) -> Path:
    from qheart.models.encoder import EncoderConfig
    from qheart.training.pretrain import pretrain
    from qheart.training.pretrain_config import PretrainConfig
    from qheart.training.pretrain_data import PretrainData

    budget = f"{steps}steps" if steps else f"{minutes:g}min"
    run = out / f"pretrain-{name}-{bench.name}-{budget}"
    if (run / "encoder" / "config.json").is_file() and (run / "done").is_file():
        return run
    overrides: dict = {"augment": augment, "seed": seed, "statement_weight": statement_weight,
                       "crop_samples": crop_samples,
                       "encoder": EncoderConfig.from_name("cpu-small", rhythm_features=rhythm_features)}
    if steps:
        overrides["max_steps"] = steps
    config = PretrainConfig.from_name("cpu-small", **overrides)
    started = time.monotonic()
    data = PretrainData.from_path(bench, unpaired)
    if background is not None:
        data = with_normal_background(data, background)
    result = pretrain(config, data, run,
                      resume=(run / "checkpoint").is_dir(),
                      max_minutes=None if steps else minutes, progress=False)
    (run / "done").write_text(json.dumps({"steps": result.step,
                                          "seconds": time.monotonic() - started}))
    print(f"  pre-trained {name}: {result.step} steps in {time.monotonic() - started:.0f} s")
    return run


def score(run: Path, bench: Path, real: Path, scp: Path) -> dict:
    from qheart.evaluation.zero_shot import run_zero_shot

    out = {"synthetic": run_zero_shot(run, bench, "synthetic", progress=False).to_dict()}
    for group in ("super", "rhythm"):
        out[f"real-{group}"] = run_zero_shot(run, real, f"ptbxl-{group}", scp_statements=scp,
                                             all_rows=True, progress=False).to_dict()
    out["steps"] = json.loads((run / "done").read_text())["steps"]
    return out


def two_sample_auc(bench: Path, real: Path, max_ecgs: int) -> float:
    from qheart.data.compare import CompareConfig, compare_stores

    return compare_stores(bench / "store", real, CompareConfig(max_ecgs=max_ecgs)).two_sample.auc


def _fmt(value: float | None) -> str:
    return "  —  " if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def print_table(results: dict[str, dict]) -> None:
    names = list(results)
    zs = max(14, max(len(n) for n in names) + 5)  # wide enough that long names stay apart
    probe = zs + 3
    header = f"{'':34s}" + "".join(f"{n + ' zs':>{zs}s}{n + ' probe':>{probe}s}" for n in names)
    for key, title in (("real-super", "real PTB-XL superclasses"), ("real-rhythm", "real PTB-XL rhythm")):
        first = results[names[0]][key]
        print(f"\n{title} ({first['n_ecgs']} records; probe: {first['probe']})")
        print(header)
        for i, cls in enumerate(first["classes"]):
            label = f"{cls} (n={first['n_positive'][i]})"
            print(f"{label:34s}" + "".join(
                f"{_fmt(results[n][key]['zero_shot_auc'][i]):>{zs}s}"
                f"{_fmt((results[n][key]['probe_auc'] or [None] * 99)[i]):>{probe}s}" for n in names))
        print(f"{'macro':34s}" + "".join(
            f"{_fmt(results[n][key]['zero_shot_macro_auc']):>{zs}s}"
            f"{_fmt(results[n][key]['probe_macro_auc']):>{probe}s}" for n in names))
    print("\nsynthetic test split (each variant's own benchmark)")
    print(f"{'macro over findings':34s}" + "".join(
        f"{_fmt(results[n]['synthetic']['zero_shot_macro_auc']):>{zs}s}"
        f"{_fmt(results[n]['synthetic']['probe_macro_auc']):>{probe}s}" for n in names))
    print(f"{'pre-training steps':34s}" + "".join(f"{results[n]['steps']:>{zs}d}{'':>{probe}s}" for n in names))
    if all("two_sample_auc" in results[n] for n in names):
        print(f"{'two-sample AUC (synthetic vs real)':34s}" + "".join(
            f"{_fmt(results[n]['two_sample_auc']):>{zs}s}{'':>{probe}s}" for n in names))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_realism"))
    parser.add_argument("--variants", default="v3,v3+statements",
                        help=f"comma-separated, from {sorted(VARIANTS)}")
    parser.add_argument("--n-ecgs", type=int, default=2000, help="QA ECGs (demo: 2000)")
    parser.add_argument("--corpus-ecgs", type=int, default=4000, help="corpus ECGs (demo: 4000)")
    parser.add_argument("--minutes", type=float, default=5.0, help="pre-training budget (demo: 5)")
    parser.add_argument("--steps", type=int, default=None,
                        help="a fixed number of steps instead of --minutes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", type=Path, default=Path("runs/demo/ptbxl100"),
                        help="prepared store of the real PTB-XL records (qheart data prepare ptbxl)")
    parser.add_argument("--ptbxl", type=Path, default=REAL_PTBXL,
                        help="PTB-XL folder (for scp_statements.csv, and to prepare --real)")
    parser.add_argument("--deepfake", type=Path, default=Path("runs/deepfake"),
                        help="store of unlabelled ECGs for the +deepfake variant "
                             "(qheart data deepfake --out STORE --n 2800)")
    parser.add_argument("--compare", action="store_true",
                        help="also the realism report's two-sample AUC per generator")
    parser.add_argument("--compare-ecgs", type=int, default=300)
    args = parser.parse_args()

    if not (args.real / "store.json").is_file():
        from qheart.data.corpora.ptbxl import prepare_ptbxl

        print(f"preparing {args.ptbxl} into {args.real}")
        prepare_ptbxl(args.ptbxl, args.real)
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results: dict[str, dict] = {}
    for name in args.variants.split(","):
        variant = VARIANTS[name]
        realism, augment, statement_weight, crop_samples = variant[:4]
        crop = "10 s" if crop_samples is None else f"{crop_samples / 500:g} s"
        print(f"[{name}] generator {realism}, augmentation {augment}, "
              f"statement loss weight {statement_weight:g}, crops {crop}, "
              f"RR features {'on' if variant.rhythm_features else 'off'}")
        bench = make_bench(args.out, realism, args.n_ecgs, args.corpus_ecgs, args.seed)
        unpaired = [args.deepfake] if name.endswith("+deepfake") else []
        background = args.deepfake if name.endswith("+deepfake-normal") else None
        if (unpaired or background) and not (args.deepfake / "store.json").is_file():
            parser.error(f"variant {name} needs --deepfake STORE (qheart data deepfake --out STORE)")
        run = pretrain_variant(args.out, bench, name, augment, args.minutes, args.steps, args.seed,
                               unpaired, background, statement_weight, crop_samples,
                               variant.rhythm_features)
        results[name] = {"realism": realism, "augment": augment,
                         "statement_weight": statement_weight, "crop_samples": crop_samples,
                         "rhythm_features": variant.rhythm_features,
                         "bench": str(bench),
                         "run": str(run), **score(run, bench, args.real, args.ptbxl / "scp_statements.csv")}
        if args.compare:
            results[name]["two_sample_auc"] = two_sample_auc(bench, args.real, args.compare_ecgs)
    budget = f"{args.steps} steps" if args.steps else f"{args.minutes:g} min"
    print(f"\n{args.n_ecgs} QA + {args.corpus_ecgs} corpus ECGs, cpu-small pre-training, {budget}")
    print_table(results)
    results_path.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                        "results": results}, indent=1))
    print(f"\nwrote {results_path}")


if __name__ == "__main__":
    main()
