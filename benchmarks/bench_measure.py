"""ECG measurements against the synthetic ground truth, beside neurokit2 on the same ECGs.

Each ECG comes from the benchmark's own generator (`simulate`, the function `generate_benchmark`
calls per ECG, with `truth_row` giving the stored ground truth: exact wave boundaries, since
every synthetic wave has a known onset and end). Our `measure_ecg` (global 12-lead median-beat
delineation) runs beside neurokit2's `ecg_peaks` + `ecg_delineate` (DWT) on lead II with the
per-beat intervals' median, and beside the small delineator of the generator's tests. Printed:
mean absolute error per interval over the ECGs each method reported, the share reported, the
below/within/above class agreement with the label, and the ratio neurokit2 MAE / ours.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_measure.py --n 300

With reference measurements (PTB-XL+ style CSV keyed by ecg_id) and the PTB-XL records:

    .venv/bin/python benchmarks/bench_measure.py --reference ref.csv --ptbxl /data/ptb-xl

Throughput of measuring a signal store's ECGs (what training does before its first step) in
this process against worker processes on every core, side by side on the same rows:

    .venv/bin/python benchmarks/bench_measure.py --store runs/demo/bench/store --n 200
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from qheart.data.synth.ecg import simulate
from qheart.data.synth.findings import axis_label
from qheart.data.synth.generate import truth_row
from qheart.data.synth.morphology import measure_beat
from qheart.measurements import measure_ecg
from qheart.measurements.reference import NORMAL_RANGES

REPO = Path(__file__).resolve().parents[1]
FS = 500
FEATURES = {  # our field → (truth column, ECG-QA feature)
    "rr_mean_ms": ("rr_interval_ms", "rr interval"),
    "p_duration_ms": ("p_duration_ms", "p duration"),
    "pr_ms": ("pr_interval_ms", "pr interval"),
    "qrs_ms": ("qrs_duration_ms", "qrs duration"),
    "qt_ms": ("qt_interval_ms", "qt interval"),
    "qtc_bazett_ms": ("qt_corrected_ms", "qt corrected"),
}


def ours(signal: np.ndarray) -> dict[str, float]:
    m = measure_ecg(signal)
    return {k: getattr(m, k) for k in (*FEATURES, "axis_deg")}


def neurokit(signal: np.ndarray) -> dict[str, float]:
    """neurokit2's own pipeline on lead II: clean, R peaks, DWT delineation, median per interval;
    the axis from the net areas of I and aVF between its QRS onsets and offsets."""
    import neurokit2 as nk

    out = dict.fromkeys((*FEATURES, "axis_deg"), float("nan"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lead = nk.ecg_clean(signal[1].astype(float), sampling_rate=FS)
            _, info = nk.ecg_peaks(lead, sampling_rate=FS)
            peaks = np.asarray(info["ECG_R_Peaks"])
            _, waves = nk.ecg_delineate(lead, peaks, sampling_rate=FS, method="dwt")
    except Exception:  # neurokit2 raises on records it cannot delineate: a miss, not a crash
        return out
    if len(peaks) > 1:
        out["rr_mean_ms"] = float(np.diff(peaks).mean() * 1000 / FS)
    w = {k: np.asarray(v, dtype=float) for k, v in waves.items()}
    n = min(len(v) for v in w.values())
    w = {k: v[:n] for k, v in w.items()}

    def med(a: np.ndarray) -> float:
        return float(np.nanmedian(a) * 1000 / FS) if np.isfinite(a).any() else float("nan")

    out["p_duration_ms"] = med(w["ECG_P_Offsets"] - w["ECG_P_Onsets"])
    out["pr_ms"] = med(w["ECG_R_Onsets"] - w["ECG_P_Onsets"])
    out["qrs_ms"] = med(w["ECG_R_Offsets"] - w["ECG_R_Onsets"])
    out["qt_ms"] = med(w["ECG_T_Offsets"] - w["ECG_R_Onsets"])
    if not np.isnan(out["qt_ms"]) and not np.isnan(out["rr_mean_ms"]):
        out["qtc_bazett_ms"] = out["qt_ms"] / np.sqrt(out["rr_mean_ms"] / 1000)
    net = np.zeros(2)
    for on, off in zip(w["ECG_R_Onsets"], w["ECG_R_Offsets"], strict=True):
        if np.isfinite(on) and np.isfinite(off) and off > on:
            seg = signal[[0, 5], int(on) : int(off) + 1]
            net += (seg - seg[:, :1]).sum(axis=1)
    if net.any():
        out["axis_deg"] = float(np.degrees(np.arctan2(2 * net[1] / np.sqrt(3), net[0])))
    return out


def tests_delineator(signal: np.ndarray) -> dict[str, float]:
    """The small delineator of the generator's tests (tests/data/synth/measure.py)."""
    sys.path.insert(0, str(REPO / "tests"))
    from data.synth import measure as M

    out = dict.fromkeys((*FEATURES, "axis_deg"), float("nan"))
    try:
        rr = M.rr_ms(signal)
        beat = M.median_beat(signal)
        d = M.delineate(beat, float(np.median(rr)))
    except Exception:
        return out
    out["rr_mean_ms"] = float(rr.mean())
    out["qrs_ms"], out["qt_ms"] = d.qrs_ms, d.qt_ms
    out["pr_ms"] = float("nan") if d.pr_ms is None else d.pr_ms
    out["qtc_bazett_ms"] = d.qt_ms / np.sqrt(rr.mean() / 1000)
    out["axis_deg"] = M.frontal_axis(beat, d)
    return out


METHODS = {"ours": ours, "neurokit2": neurokit, "tests": tests_delineator}


def run_synthetic(n: int, seed: int) -> dict:
    truth, results = [], {name: [] for name in METHODS}
    seconds = dict.fromkeys(METHODS, 0.0)
    for i in range(n):
        sim = simulate(np.random.default_rng([seed, 0, i + 1]))
        row = truth_row(i + 1, sim.truth, "test")
        row["axis_deg"] = measure_beat(sim.model).axis_deg
        truth.append(row)
        for name, method in METHODS.items():
            start = time.perf_counter()
            results[name].append(method(sim.signal))
            seconds[name] += time.perf_counter() - start
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{n} ECGs", file=sys.stderr)
    return {"truth": truth, "results": results, "seconds": seconds}


def score(truth: list[dict], values: list[dict]) -> dict:
    out = {}
    for field, (column, feature) in FEATURES.items():
        t = np.array([row[column] for row in truth], dtype=float)
        v = np.array([r[field] for r in values], dtype=float)
        has = ~np.isnan(t)
        both = has & ~np.isnan(v)
        err = np.abs(v - t)[both]
        labels = [NORMAL_RANGES[feature].label(x) for x in v[both]]
        agree = np.mean([a == row["feature_ranges_parsed"][feature]
                         for a, row in zip(labels, np.array(truth, dtype=object)[both], strict=True)])
        out[field] = {
            "mae": float(err.mean()) if err.size else float("nan"),
            "p90": float(np.percentile(err, 90)) if err.size else float("nan"),
            "reported": float(both.sum() / max(has.sum(), 1)),
            "class_agreement": float(agree) if err.size else float("nan"),
            "false_reports": int((~has & ~np.isnan(v)).sum()),
        }  # fmt: skip
    t_axis = np.array([row["axis_deg"] for row in truth])
    v_axis = np.array([r["axis_deg"] for r in values], dtype=float)
    ok = ~np.isnan(v_axis)
    diff = np.abs((v_axis - t_axis + 180) % 360 - 180)[ok]
    same = [axis_label(a) == row["axis"] for a, row in zip(v_axis[ok], np.array(truth, dtype=object)[ok], strict=True)]
    out["axis_deg"] = {"mae": float(diff.mean()), "p90": float(np.percentile(diff, 90)),
                       "reported": float(ok.mean()), "class_agreement": float(np.mean(same)),
                       "false_reports": 0}  # fmt: skip
    return out


def print_table(scores: dict, seconds: dict, n: int) -> None:
    names = list(scores)
    print(f"\n{n} synthetic ECGs (noise, arrhythmia, ectopy as generated). MAE in ms (axis: degrees) "
          "over the ECGs each method reported; rep = share reported; cls = below/within/above "
          "(axis: class) agreement with the label.")
    head = f"{'measure':15s}" + "".join(f"| {m:^27s}" for m in names) + "| nk2/ours MAE"
    print(head)
    print(f"{'':15s}" + "| {:>7s} {:>6s} {:>5s} {:>5s} ".format("MAE", "p90", "rep", "cls") * len(names))
    for field in scores[names[0]]:
        line = f"{field:15s}"
        for m in names:
            s = scores[m][field]
            line += f"| {s['mae']:7.1f} {s['p90']:6.1f} {s['reported']:5.0%} {s['class_agreement']:5.0%} "
        ratio = scores["neurokit2"][field]["mae"] / scores["ours"][field]["mae"]
        line += f"| {ratio:6.1f}x"
        print(line)
    fr = {m: {f: s["false_reports"] for f, s in scores[m].items() if s["false_reports"]} for m in names}
    print(f"P/PR reported on ECGs without P waves (AF, flutter): {fr}")
    print("time per ECG (ms, this machine, shared): "
          + ", ".join(f"{m} {1000 * t / n:.1f}" for m, t in seconds.items()))


def throughput(store_dir: Path, n: int) -> None:
    """ECGs/s of `measure_rows` in this process and on every core, same rows, same results."""
    from qheart.data.store import SignalStore
    from qheart.measurements import feature_readings
    from qheart.measurements.parallel import default_workers, measure_rows

    store = SignalStore(store_dir)
    rows = list(range(min(n, len(store))))
    every_core = default_workers()
    timings, results = {}, {}
    for workers in (1, every_core):
        start = time.perf_counter()
        results[workers] = list(measure_rows(store, rows, feature_readings, workers=workers))
        timings[workers] = time.perf_counter() - start
    one, every = timings[1], timings[every_core]
    print(f"{len(rows)} ECGs of {store_dir}: 1 process {len(rows) / one:.1f} ECG/s, "
          f"{every_core} workers {len(rows) / every:.1f} ECG/s (×{one / every:.2f}); "
          f"same readings: {results[1] == results[every_core]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="Synthetic ECGs to measure.")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--json", type=Path, help="Also write the scores here.")
    parser.add_argument("--reference", type=Path, help="Reference CSV keyed by ecg_id (see README).")
    parser.add_argument("--ptbxl", type=Path, help="PTB-XL folder with ptbxl_database.csv.")
    parser.add_argument("--store", type=Path, help="Time measuring --n rows of this signal store "
                        "on one process and on every core instead.")
    args = parser.parse_args()
    if args.store is not None:
        throughput(args.store, args.n)
        return
    if args.reference is not None:
        from qheart.measurements.agreement import agreement_with_reference, ptbxl_loader

        if args.ptbxl is None:
            parser.error("--reference needs --ptbxl (where the records are)")
        print(agreement_with_reference(args.reference, ptbxl_loader(args.ptbxl)).round(3).to_string())
        return
    run = run_synthetic(args.n, args.seed)
    for row in run["truth"]:
        row["feature_ranges_parsed"] = json.loads(row["feature_ranges"])
    scores = {name: score(run["truth"], values) for name, values in run["results"].items()}
    print_table(scores, run["seconds"], args.n)
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "seed": args.seed, "scores": scores}, indent=1))


if __name__ == "__main__":
    main()
