"""Realism report: how far synthetic ECGs are from real ones, on what can be measured on both.

Every ECG of both stores goes through the same code: `qheart.measurements.measure_ecg` (rate, PR,
QRS, QT, QTc, frontal axis, per-lead ST and T), the same package's beat detection and median beat
for per-lead R and S amplitudes, its > 40 Hz noise estimate, and a Welch spectrum per lead (baseline
wander, powerline and band powers). Then, per feature, the Wasserstein distance and the univariate
AUC, and a classifier two-sample test: an L2 logistic regression trained to tell synthetic from
real on all features at once; its cross-validated AUC is 0.5 when the two are indistinguishable.
Real records are for measuring only: the report says where the generator is off, it is not a
target to fit feature by feature.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import welch
from scipy.stats import rankdata, wasserstein_distance

from qheart.data.leads import LEADS
from qheart.measurements import delineate as D
from qheart.measurements import measure_ecg
from qheart.measurements.beats import FS, BeatConfig, find_beats, highpass, lowpass, median_beat, ms
from qheart.measurements.quality import QualityConfig, hf_noise, is_flat

GLOBAL_FEATURES = ("heart_rate_bpm", "rr_sd_ms", "p_duration_ms", "pr_ms", "qrs_ms", "qt_ms",
                   "qtc_bazett_ms", "axis_deg")  # fmt: skip
BANDS_HZ: tuple[tuple[float, float], ...] = ((0.0, 0.5), (0.5, 5.0), (5.0, 15.0), (15.0, 40.0), (40.0, 100.0))
"""Spectrum bands: baseline wander, P/T waves, QRS, QRS edges, muscle/powerline."""
PER_LEAD = ("r_mv", "s_mv", "t_mv", "st_mv", "noise_mv", "wander_mv", "powerline_db",
            *(f"band_{lo:g}-{hi:g}hz_db" for lo, hi in BANDS_HZ))  # fmt: skip
"""Per-lead features, named `name[lead]`: R and S (largest positive and negative QRS deflection
against the PR baseline, mV), T and ST (measure_ecg), > 40 Hz noise RMS, < 0.5 Hz wander SD (mV),
and log band powers (dB re 1 mV²)."""
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "intervals and axis": GLOBAL_FEATURES,
    "QRS/ST/T amplitudes": ("r_mv", "s_mv", "t_mv", "st_mv"),
    "noise and wander": ("noise_mv", "wander_mv", "powerline_db"),
    "spectrum bands": tuple(f"band_{lo:g}-{hi:g}hz_db" for lo, hi in BANDS_HZ),
}
"""Feature families, each also tested alone: which one gives the synthetic ECGs away."""
WELL_MEASURED = 0.2
"""The "well measured" test keeps features NaN in at most this share of either store."""
KEY_FEATURES = ("heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms", "axis_deg", "r_mv[II]", "s_mv[V1]",
                "r_mv[V5]", "t_mv[II]", "t_mv[V2]", "noise_mv[II]", "wander_mv[II]")  # fmt: skip
"""Shown as histograms in the figure and always listed in the table."""
WELCH_SAMPLES = 1000
"""Welch segment length: 2 s, 0.5 Hz resolution."""


@dataclass(frozen=True)
class CompareConfig:
    max_ecgs: int = 500
    """At most this many ECGs per store, drawn at random (measuring takes ~20-100 ms per ECG)."""
    seed: int = 0
    folds: int = 5
    """Cross-validation folds of the two-sample classifier (stratified)."""
    l2: float = 1.0
    """Ridge penalty of the logistic regression (on standardised features)."""

    def __post_init__(self) -> None:
        if self.max_ecgs < 2 or self.folds < 2 or self.l2 <= 0:
            raise ValueError("max_ecgs >= 2, folds >= 2 and l2 > 0 required")


# ------------------------------------------------------------------------------ measuring


def _db(power: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(power, 1e-12))


def _qrs_amplitudes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(12,) R and S amplitudes (mV) on the median beat of a high-passed record; NaN if no beat."""
    nan = np.full(len(LEADS), np.nan)
    usable = ~is_flat(x, QualityConfig())
    beats = find_beats(x, usable, BeatConfig())
    if beats.selected.sum() < 2:
        return nan, nan
    beat, _ = median_beat(beats.segments, BeatConfig())
    beat = np.nan_to_num(beat)
    on, off, _ = D.find_qrs(beat, usable.astype(float), beats.pre, D.DelineationConfig())
    if on is None or off is None or on < ms(16):
        return nan, nan
    base = beat[:, on - ms(16) : on - ms(4)].mean(axis=1)
    qrs = beat[:, on : off + 1] - base[:, None]
    return np.maximum(qrs.max(axis=1), 0.0), np.maximum(-qrs.min(axis=1), 0.0)


def ecg_features(signal: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
    """Features of one (12, 5000) ECG at 500 Hz (mV) and its (12, F) Welch spectrum (mV²/Hz)."""
    raw = np.nan_to_num(np.asarray(signal, dtype=np.float64))
    m = measure_ecg(raw, FS)
    out: dict[str, float] = {name: float(getattr(m, name)) for name in GLOBAL_FEATURES}
    x = highpass(raw)
    r, s = _qrs_amplitudes(x)
    peaks = find_beats(x, ~is_flat(x, QualityConfig()), BeatConfig()).peaks
    noise = hf_noise(raw, peaks)
    wander = lowpass(raw - raw.mean(axis=1, keepdims=True), 0.5).std(axis=1)
    freqs, psd = welch(raw, fs=FS, nperseg=WELCH_SAMPLES, axis=-1)
    df = freqs[1] - freqs[0]
    mains = ((freqs >= 48) & (freqs <= 52)) | ((freqs >= 58) & (freqs <= 62))
    for k, lead in enumerate(LEADS):
        lm = m.leads[k] if len(m.leads) == len(LEADS) else None
        values = {
            "r_mv": r[k], "s_mv": s[k],
            "t_mv": lm.t_mv if lm else math.nan, "st_mv": lm.st_mv if lm else math.nan,
            "noise_mv": noise[k], "wander_mv": wander[k],
            "powerline_db": _db(psd[k, mains].sum() * df),
        }  # fmt: skip
        for lo, hi in BANDS_HZ:
            band = (freqs >= lo) & (freqs < hi)
            values[f"band_{lo:g}-{hi:g}hz_db"] = _db(psd[k, band].sum() * df)
        out.update({f"{name}[{lead}]": float(v) for name, v in values.items()})
    return out, psd


@dataclass
class Measured:
    """The features (one row per ECG) and Welch spectra (n, 12, F) of the ECGs measured in a store."""

    features: pd.DataFrame
    psd: np.ndarray
    freqs: np.ndarray
    ecg_ids: np.ndarray


def measure_store(store_dir: str | Path, config: CompareConfig,
                  progress: Callable[[int], None] | None = None) -> Measured:  # fmt: skip
    """Measure up to `config.max_ecgs` ECGs of a signal store, drawn with `config.seed`."""
    from qheart.data.store import SignalStore

    store = SignalStore(store_dir)
    n = len(store)
    rows = np.arange(n)
    if n > config.max_ecgs:
        rows = np.sort(np.random.default_rng(config.seed).choice(n, config.max_ecgs, replace=False))
    records, spectra = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for start in range(0, len(rows), 64):
            batch = rows[start : start + 64]
            for signal in store.signals(batch):
                features, psd = ecg_features(signal)
                records.append(features)
                spectra.append(psd.astype(np.float32))
            if progress is not None:
                progress(len(batch))
    freqs = np.fft.rfftfreq(WELCH_SAMPLES, 1.0 / FS)
    return Measured(pd.DataFrame.from_records(records), np.stack(spectra), freqs, store.ids[rows])


# ------------------------------------------------------------------------------ statistics


def auc_score(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann–Whitney) formula; ties count one half."""
    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def feature_distances(synthetic: pd.DataFrame, real: pd.DataFrame) -> pd.DataFrame:
    """Per feature: medians, NaN shares, Wasserstein-1 (in the feature's units and over the
    pooled robust scale) and the univariate AUC (synthetic scored higher → > 0.5)."""
    rows = []
    for name in synthetic.columns:
        a, b = synthetic[name].to_numpy(float), real[name].to_numpy(float)
        a_ok, b_ok = a[np.isfinite(a)], b[np.isfinite(b)]
        row = {"feature": name, "synthetic_median": math.nan, "real_median": math.nan,
               "synthetic_nan": 1 - len(a_ok) / max(len(a), 1), "real_nan": 1 - len(b_ok) / max(len(b), 1),
               "wasserstein": math.nan, "wasserstein_scaled": math.nan, "auc": math.nan}  # fmt: skip
        if len(a_ok) and len(b_ok):
            pooled = np.concatenate([a_ok, b_ok])
            q75, q25 = np.percentile(pooled, [75, 25])
            scale = (q75 - q25) / 1.349 or pooled.std() or 1.0
            w = wasserstein_distance(a_ok, b_ok)
            labels = np.r_[np.ones(len(a_ok), bool), np.zeros(len(b_ok), bool)]
            row.update(synthetic_median=float(np.median(a_ok)), real_median=float(np.median(b_ok)),
                       wasserstein=float(w), wasserstein_scaled=float(w / scale),
                       auc=auc_score(labels, pooled))  # fmt: skip
        rows.append(row)
    table = pd.DataFrame(rows)
    return table.sort_values("wasserstein_scaled", ascending=False, na_position="last").reset_index(drop=True)


def _design(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Impute NaN with the training median, add missing-value indicators, standardise on train."""
    median = np.nanmedian(np.where(np.isfinite(train), train, np.nan), axis=0)
    median = np.nan_to_num(median)
    missing_cols = ~np.isfinite(train).all(axis=0)

    def build(x: np.ndarray) -> np.ndarray:
        bad = ~np.isfinite(x)
        filled = np.where(bad, median, x)
        return np.hstack([filled, bad[:, missing_cols].astype(float)])

    a, b = build(train), build(test)
    mu, sd = a.mean(axis=0), a.std(axis=0)
    sd[sd == 0] = 1.0
    return (a - mu) / sd, (b - mu) / sd


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 25) -> np.ndarray:
    """L2 logistic regression by Newton's method, classes weighted to equal total weight;
    returns [bias, coefficients...]."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    weight = np.where(y == 1, 0.5 / max(y.sum(), 1), 0.5 / max((1 - y).sum(), 1)) * len(y)
    beta = np.zeros(xb.shape[1])
    penalty = np.full(xb.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ beta, -30, 30)))
        grad = xb.T @ (weight * (p - y)) + penalty * beta
        hess = (xb * (weight * p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-6:
            break
    return beta


@dataclass
class TwoSample:
    """Cross-validated AUC of telling synthetic (1) from real (0), and what the classifier used."""

    auc: float
    fold_aucs: list[float]
    weights: pd.Series
    """Coefficient per feature (and `missing:` indicator) of a fit on all ECGs, standardised
    units; positive = more synthetic. Sorted by magnitude."""


def two_sample_test(synthetic: pd.DataFrame, real: pd.DataFrame, config: CompareConfig) -> TwoSample:
    """Classifier two-sample test on the features both share (stratified k-fold CV)."""
    columns = [c for c in synthetic.columns if c in real.columns]
    x = np.vstack([synthetic[columns].to_numpy(float), real[columns].to_numpy(float)])
    y = np.r_[np.ones(len(synthetic)), np.zeros(len(real))]
    rng = np.random.default_rng(config.seed)
    folds = np.empty(len(y), dtype=int)
    for label in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == label))
        folds[idx] = np.arange(len(idx)) % config.folds
    scores = np.empty(len(y))
    fold_aucs = []
    for k in range(config.folds):
        test = folds == k
        a, b = _design(x[~test], x[test])
        beta = fit_logistic(a, y[~test], config.l2)
        scores[test] = beta[0] + b @ beta[1:]
        fold_aucs.append(auc_score(y[test] == 1, scores[test]))
    a, _ = _design(x, x[:1])
    beta = fit_logistic(a, y, config.l2)
    missing = [f"missing:{c}" for c, bad in zip(columns, ~np.isfinite(x).all(axis=0), strict=True) if bad]
    weights = pd.Series(beta[1:], index=[*columns, *missing])
    weights = weights.reindex(weights.abs().sort_values(ascending=False).index)
    return TwoSample(auc_score(y == 1, scores), fold_aucs, weights)


# ------------------------------------------------------------------------------ the report


def group_columns(columns: list[str], group: str) -> list[str]:
    """The columns of one `FEATURE_GROUPS` family (global names, or per-lead `name[lead]`)."""
    names = FEATURE_GROUPS[group]
    return [c for c in columns if c in names or c.split("[")[0] in names]


@dataclass
class RealismReport:
    synthetic: Measured
    real: Measured
    distances: pd.DataFrame
    two_sample: TwoSample
    group_aucs: dict[str, float] = field(default_factory=dict)
    """Two-sample AUC per feature family, and on the well-measured features only."""
    meta: dict = field(default_factory=dict)

    def summary(self, top: int = 10) -> dict:
        """JSON-safe headline numbers (saved as compare.json)."""
        d = self.distances.dropna(subset=["wasserstein_scaled"])
        return {
            **self.meta,
            "n_synthetic": len(self.synthetic.features), "n_real": len(self.real.features),
            "two_sample_auc": round(self.two_sample.auc, 4),
            "fold_aucs": [round(a, 4) for a in self.two_sample.fold_aucs],
            "group_aucs": {k: round(v, 4) for k, v in self.group_aucs.items()},
            "most_different": [
                {"feature": r.feature, "wasserstein_scaled": round(r.wasserstein_scaled, 3),
                 "auc": round(r.auc, 3), "synthetic_median": round(r.synthetic_median, 4),
                 "real_median": round(r.real_median, 4)}
                for r in d.head(top).itertuples()
            ],
            "classifier_weights": {k: round(float(v), 3) for k, v in self.two_sample.weights.head(top).items()},
        }  # fmt: skip


def compare_stores(synthetic: str | Path, real: str | Path, config: CompareConfig | None = None,
                   progress: Callable[[int], None] | None = None) -> RealismReport:  # fmt: skip
    """Measure both stores, then per-feature distances and the two-sample classifier."""
    config = config or CompareConfig()
    syn = measure_store(synthetic, config, progress)
    real_m = measure_store(real, config, progress)
    distances = feature_distances(syn.features, real_m.features)
    test = two_sample_test(syn.features, real_m.features, config)
    columns = list(syn.features.columns)
    groups = {name: group_columns(columns, name) for name in FEATURE_GROUPS}
    nan = distances.set_index("feature")[["synthetic_nan", "real_nan"]].max(axis=1)
    groups[f"well measured (NaN ≤ {WELL_MEASURED:.0%} in both)"] = [c for c in columns if nan[c] <= WELL_MEASURED]
    group_aucs = {name: two_sample_test(syn.features[cols], real_m.features[cols], config).auc
                  for name, cols in groups.items() if cols}  # fmt: skip
    meta = {"synthetic": str(synthetic), "real": str(real), "max_ecgs": config.max_ecgs,
            "seed": config.seed, "folds": config.folds}  # fmt: skip
    return RealismReport(syn, real_m, distances, test, group_aucs, meta)


def plot_report(report: RealismReport, path: str | Path) -> Path:
    """One figure: histograms of the key features, the median spectrum (lead II, V2) and the
    per-lead median R, S and T amplitudes, synthetic vs real."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 5, figsize=(22, 16))
    syn, real = report.synthetic.features, report.real.features
    colours = {"synthetic": "tab:blue", "real": "tab:red"}
    for ax, name in zip(axes.flat, KEY_FEATURES, strict=False):
        a, b = syn[name].to_numpy(float), real[name].to_numpy(float)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(a) + len(b):
            lo, hi = np.percentile(np.concatenate([a, b]), [1, 99])
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
            ax.hist(a, bins, density=True, alpha=0.5, color=colours["synthetic"], label=f"synthetic ({len(a)})")
            ax.hist(b, bins, density=True, alpha=0.5, color=colours["real"], label=f"real ({len(b)})")
        row = report.distances.set_index("feature").loc[name]
        ax.set_title(f"{name}  W/σ={row.wasserstein_scaled:.2f}  AUC={row.auc:.2f}", fontsize=10)
        ax.legend(fontsize=8)
    flat = list(axes.flat)
    freqs = report.synthetic.freqs
    for ax, lead in zip(flat[12:14], ("II", "V2"), strict=True):
        k = LEADS.index(lead)
        for label, m in (("synthetic", report.synthetic), ("real", report.real)):
            med = np.median(m.psd[:, k], axis=0)
            q25, q75 = np.percentile(m.psd[:, k], [25, 75], axis=0)
            ax.semilogy(freqs, med, color=colours[label], label=label)
            ax.fill_between(freqs, q25, q75, color=colours[label], alpha=0.2)
        ax.set_xlim(0, 100)
        ax.set_xlabel("Hz")
        ax.set_title(f"Welch spectrum, lead {lead} (median, IQR; mV²/Hz)", fontsize=10)
        ax.legend(fontsize=8)
    x = np.arange(len(LEADS))
    for ax, what in zip(flat[14:17], ("r_mv", "s_mv", "t_mv"), strict=True):
        for shift, (label, df) in zip((-0.2, 0.2), (("synthetic", syn), ("real", real)), strict=True):
            values = [df[f"{what}[{lead}]"].dropna().to_numpy() for lead in LEADS]
            ax.boxplot(values, positions=x + shift, widths=0.35, showfliers=False, patch_artist=True,
                       boxprops={"facecolor": colours[label], "alpha": 0.5})
        ax.set_xticks(x, LEADS, fontsize=8)
        ax.set_title(f"{what} per lead (blue synthetic, red real)", fontsize=10)
    ax = flat[17]
    top = report.distances.dropna(subset=["wasserstein_scaled"]).head(15)[::-1]
    ax.barh(top["feature"], top["wasserstein_scaled"], color="grey")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("largest distances (Wasserstein / pooled σ)", fontsize=10)
    ax = flat[18]
    w = report.two_sample.weights.head(15)[::-1]
    ax.barh(w.index, w.to_numpy(), color=["tab:blue" if v > 0 else "tab:red" for v in w])
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("classifier weights (+ = synthetic)", fontsize=10)
    flat[19].axis("off")
    groups = "\n".join(f"  {name}: {auc:.3f}" for name, auc in report.group_aucs.items())
    flat[19].text(0.0, 0.5, f"two-sample AUC {report.two_sample.auc:.3f}\n(0.5 = indistinguishable)\n"
                  f"{len(syn)} synthetic vs {len(real)} real ECGs\n\nper feature family:\n{groups}",
                  fontsize=11, va="center")  # fmt: skip
    fig.suptitle("Realism report: synthetic vs real, same measurement code", fontsize=14)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_report(report: RealismReport, out: str | Path) -> list[Path]:
    """compare.json (headline), distances.csv (every feature), features_{synthetic,real}.csv and
    compare.png in `out`."""
    import json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "compare.json", out / "distances.csv", out / "features_synthetic.csv",
             out / "features_real.csv"]  # fmt: skip
    paths[0].write_text(json.dumps(report.summary(), indent=1) + "\n", encoding="utf-8")
    report.distances.to_csv(paths[1], index=False, float_format="%.5g")
    for path, m in ((paths[2], report.synthetic), (paths[3], report.real)):
        m.features.assign(ecg_id=m.ecg_ids).to_csv(path, index=False, float_format="%.5g")
    paths.append(plot_report(report, out / "compare.png"))
    return paths
