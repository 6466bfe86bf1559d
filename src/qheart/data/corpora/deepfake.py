"""DeepFake ECGs: real 12-lead morphology without labels, from the `deepfake-ecg` generator.

Source: the PyPI wheel deepfake-ecg 1.1.2 (Thambawita et al., Sci Rep 2021,
doi:10.1038/s41598-021-01295-2). Its Pulse2Pulse GAN (a 1-D U-Net) was trained on 7,233 real
normal 10 s ECGs from two population studies and maps uniform noise (8, 5000) to 8 leads
I, II, V1–V6 at 500 Hz. There are no labels: the rows get an empty report, and every ECG is meant
to look normal. Install with `pip install 'qheart[deepfake]'` (the wheel requires only numpy,
tqdm and pandas; it imports torch without declaring it, so pip never touches torch for it).

Licence: MIT. The wheel's `deepfake_ecg-1.1.2.dist-info/LICENSE` is the MIT text, "Copyright (c)
2021 Vajira Thambawita"; METADATA has the classifier "License :: OSI Approved :: MIT License"
(its free-text `License:` field says UNKNOWN) and its README ends "License: MIT". The weights
(`deepfakeecg/checkpoints/g_stat.pt`) ship inside that wheel, with no licence of their own.

Units: the package never states them. Its `generate` writes `int(network_output * 6000)` per
sample, the output being a tanh in (-1, 1). Those values are microvolts: measured on 64 generated
ECGs against the 100 real PTB-XL records of a prepared store (mV), the median R-wave height above
the median level is 796 vs 0.94 mV in lead II, 607 vs 0.58 mV in lead I and 1194 vs 1.28 mV in V5
(ratios 850–1040), and median peak-to-peak ratios are 850–980 in I, II, V2 and V5. A MUSE-style
4.88 µV count would put lead II's R at 3.9 mV. So millivolts = output × 6000 / 1000
(`MV_PER_UNIT_OUTPUT`, ±6 mV at most); the package's rounding to whole µV is skipped (finer than
float16 storage keeps anyway).

Leads: III, aVR, aVL, aVF are derived from I and II (Einthoven: III = II − I; Goldberger:
aVR = −(I + II)/2, aVL = I − II/2, aVF = II − I/2, as the package's README also gives them).

Safety: the package's `generate` reads the checkpoint with a bare `torch.load(path)`, which
unpickles arbitrary objects on torch < 2.6 (qheart allows torch >= 2.4), and writes one text file
per ECG from unseeded noise. So this module neither imports nor calls the package: it locates the
checkpoint with `importlib.util.find_spec`, checks its SHA-256 against the 1.1.2 wheel's RECORD,
reads it with `torch.load(..., weights_only=True)` (a dict of tensors) and loads the tensors into
`Pulse2PulseGenerator` below, written here from the package's architecture (tests compare it with
the package's own class where the package is installed: identical outputs).

Seeding: ECG k (ecg_id k + 1) comes from noise drawn by `np.random.default_rng([seed, k])`, so it
does not depend on N or the chunk: a 300-ECG store is the first 300 of a 1000-ECG one. The batch
size changes only float rounding (batch 1 vs 32: 98 % of stored values identical, the rest one
float16 step apart, at most 2 µV). Speed: about 50–60 ECGs/s on one CPU thread at batch 32
(30/s at batch 1); 300 ECGs measured at 51/s, 49/s with loading and writing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from qheart.data.leads import N_LEADS, N_SAMPLES
from qheart.data.store import SignalStore, StoreWriter, write_text_atomic

PACKAGE = "deepfake-ecg"
PACKAGE_VERSION = "1.1.2"
MODULE = "deepfakeecg"
EXTRA = "deepfake"
CHECKPOINT = "checkpoints/g_stat.pt"
CHECKPOINT_SHA256 = "676619cb3b81ed637e5ef93fabd591220d047bc4f5e199ffce930a3affb05cba"
"""sha256 of g_stat.pt as listed in the 1.1.2 wheel's RECORD: the weights the units were measured on."""
GENERATED_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
MV_PER_UNIT_OUTPUT = 6.0
"""Network output (tanh) → mV: the package scales by 6000 to µV (see the module docstring)."""
PLAN_FILE = "deepfake.json"
UNUSED_WEIGHTS = frozenset(
    {"fc1.weight", "fc1.bias", "ppfilter1.weight", "ppfilter1.bias"}
    | {f"deconv_{i}.Conv1dTrans.{p}" for i in (1, 2, 3, 5, 6, 7) for p in ("weight", "bias")}
)
"""Tensors in the checkpoint that the generator's forward pass never uses (a dense input layer, a
post-filter and transposed-conv alternatives to the upsampling convolutions)."""

Network = Callable[[torch.Tensor], torch.Tensor]
"""(B, 8, 5000) noise in [-1, 1) → (B, 8, 5000) in (-1, 1), leads I, II, V1–V6."""


class DeepfakeError(RuntimeError):
    """deepfake-ecg missing or not the checkpoint this module was verified on, or a bad out folder."""


# ----------------------------------------------------------------------------- the network


class _UpConv(nn.Module):
    """Concatenate a skip connection, upsample (nearest) and convolve at the same length."""

    def __init__(self, in_channels: int, out_channels: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.conv1d = nn.Conv1d(in_channels, out_channels, 25)  # zero-padded by 12 each side

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = torch.cat((x, skip), dim=1)
        x = F.interpolate(x, scale_factor=self.factor, mode="nearest")
        return self.conv1d(F.pad(x, (12, 12)))


class Pulse2PulseGenerator(nn.Module):
    """The deepfake-ecg generator: a 1-D U-Net, 6 strided convolutions down (5000 → 2 samples)
    and 6 upsampling convolutions back, with skip connections. Parameter names follow the
    checkpoint's, so its tensors load as they are."""

    def __init__(self, width: int = 50, channels: int = len(GENERATED_LEADS)) -> None:
        super().__init__()
        w = width

        def down(cin: int, cout: int, stride: int) -> nn.Conv1d:
            return nn.Conv1d(cin, cout, 25, stride=stride, padding=12)

        self.conv_1 = down(channels, w // 5, 2)
        self.conv_2 = down(w // 5, w // 2, 5)
        self.conv_3 = down(w // 2, w, 2)
        self.conv_4 = down(w, 3 * w, 5)
        self.conv_5 = down(3 * w, 5 * w, 5)
        self.conv_6 = down(5 * w, 5 * w, 5)
        self.deconv_1 = _UpConv(5 * w, 5 * w, 5)
        self.deconv_2 = _UpConv(10 * w, 3 * w, 5)
        self.deconv_3 = _UpConv(6 * w, w, 5)
        self.deconv_5 = _UpConv(2 * w, w // 2, 2)
        self.deconv_6 = _UpConv(w, w // 5, 5)
        self.deconv_7 = _UpConv(w // 5, channels, 2)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        d1 = F.leaky_relu(self.conv_1(noise))  # (B, 10, 2500)
        d2 = F.leaky_relu(self.conv_2(d1))  # (B, 25, 500)
        d3 = F.leaky_relu(self.conv_3(d2))  # (B, 50, 250)
        d4 = F.leaky_relu(self.conv_4(d3))  # (B, 150, 50)
        d5 = F.leaky_relu(self.conv_5(d4))  # (B, 250, 10)
        x = F.leaky_relu(self.conv_6(d5))  # (B, 250, 2)
        x = F.relu(self.deconv_1(x))  # (B, 250, 10)
        x = F.relu(self.deconv_2(x, d5))  # (B, 150, 50)
        x = F.relu(self.deconv_3(x, d4))  # (B, 50, 250)
        x = F.relu(self.deconv_5(x, d3))  # (B, 25, 500)
        x = F.relu(self.deconv_6(x, d2))  # (B, 10, 2500)
        return torch.tanh(self.deconv_7(x))  # (B, 8, 5000)


def missing_package_error() -> DeepfakeError:
    return DeepfakeError(
        f"the DeepFake ECG generator needs the optional package {PACKAGE}=={PACKAGE_VERSION} "
        f"(MIT): install it with `pip install 'qheart[{EXTRA}]'`"
    )


def checkpoint_path() -> Path:
    """The installed package's g_stat.pt, located without importing (running) the package."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise missing_package_error()
    path = Path(next(iter(spec.submodule_search_locations))) / CHECKPOINT
    if not path.is_file():
        raise DeepfakeError(f"{path}: missing from the installed {PACKAGE}; reinstall "
                            f"`pip install --force-reinstall 'qheart[{EXTRA}]'`")
    return path


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def load_generator(path: Path | None = None) -> Pulse2PulseGenerator:
    """The generator with the released weights, in eval mode on the CPU."""
    path = checkpoint_path() if path is None else Path(path)
    if (sha := file_sha256(path)) != CHECKPOINT_SHA256:
        raise DeepfakeError(f"{path}: sha256 {sha[:12]}… is not the {PACKAGE} {PACKAGE_VERSION} "
                            f"checkpoint whose units were verified; install `qheart[{EXTRA}]`")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # tensors only, no code
    weights = checkpoint["stat_dict"]
    network = Pulse2PulseGenerator()
    expected = set(network.state_dict()) | UNUSED_WEIGHTS
    if set(weights) != expected:
        raise DeepfakeError(f"{path}: tensor names differ from the Pulse2Pulse generator's "
                            f"({sorted(set(weights) ^ expected)[:4]})")
    network.load_state_dict({k: v for k, v in weights.items() if k not in UNUSED_WEIGHTS})
    return network.eval()


# ----------------------------------------------------------------------------- signals


def noise(seed: int, index: int) -> np.ndarray:
    """The generator input of ECG `index`: float32 (8, 5000), uniform in [-1, 1) like the package's."""
    rng = np.random.default_rng([seed, index])
    return rng.uniform(-1.0, 1.0, size=(len(GENERATED_LEADS), N_SAMPLES)).astype(np.float32)


def to_twelve_leads(eight: np.ndarray) -> np.ndarray:
    """Network output (n, 8, 5000) [I, II, V1–V6] → canonical float32 (n, 12, 5000) in mV."""
    if eight.ndim != 3 or eight.shape[1:] != (len(GENERATED_LEADS), N_SAMPLES):
        raise DeepfakeError(f"generator output must be (n, 8, {N_SAMPLES}), got {eight.shape}")
    mv = np.asarray(eight, dtype=np.float32) * np.float32(MV_PER_UNIT_OUTPUT)  # (n, 8, 5000)
    lead_i, lead_ii = mv[:, 0], mv[:, 1]
    out = np.empty((len(mv), N_LEADS, N_SAMPLES), dtype=np.float32)  # (n, 12, 5000)
    out[:, 0], out[:, 1] = lead_i, lead_ii
    out[:, 2] = lead_ii - lead_i  # III
    out[:, 3] = -(lead_i + lead_ii) / 2  # aVR
    out[:, 4] = lead_i - lead_ii / 2  # aVL
    out[:, 5] = lead_ii - lead_i / 2  # aVF
    out[:, 6:] = mv[:, 2:]  # V1–V6
    return out


def generate(network: Network, seed: int, indices: range, batch_size: int) -> np.ndarray:
    """Canonical float32 (len(indices), 12, 5000) mV signals of ECGs `indices`."""
    out = np.empty((len(indices), N_LEADS, N_SAMPLES), dtype=np.float32)  # (n, 12, 5000)
    for start in range(0, len(indices), batch_size):
        batch = indices[start : start + batch_size]
        z = torch.from_numpy(np.stack([noise(seed, k) for k in batch]))  # (B, 8, 5000)
        with torch.inference_mode():
            eight = network(z).float().numpy()  # (B, 8, 5000)
        out[start : start + len(batch)] = to_twelve_leads(eight)
    return out


# ----------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class DeepfakeConfig:
    """What `generate_store` writes; `n`, `seed` and `chunk_size` are pinned in deepfake.json."""

    n: int
    """ECGs to generate (ecg_id 1..n)."""
    seed: int = 0
    """ECG k is drawn from np.random.default_rng([seed, k])."""
    batch_size: int = 32
    """ECGs per forward pass (changes the signals only by float rounding, ≤ 1 float16 step)."""
    chunk_size: int = 256
    """ECGs per store chunk, the unit of resuming."""

    def __post_init__(self) -> None:
        if self.n < 1 or self.batch_size < 1 or self.chunk_size < 1:
            raise DeepfakeError(f"n, batch_size and chunk_size must be >= 1: {self}")
        if self.seed < 0:
            raise DeepfakeError(f"seed must be >= 0 (numpy seeds are non-negative), got {self.seed}")

    def plan(self) -> dict:
        return {"package": f"{PACKAGE}=={PACKAGE_VERSION}", "checkpoint_sha256": CHECKPOINT_SHA256,
                "n": self.n, "seed": self.seed, "chunk_size": self.chunk_size}


def _check_plan(out: Path, plan: dict) -> None:
    """A new folder gets the plan; a folder started with the same plan is resumed; any other
    non-empty folder is refused (it would mix ECGs of two runs)."""
    plan_path = out / PLAN_FILE
    if plan_path.is_file():
        old = json.loads(plan_path.read_text(encoding="utf-8"))
        if old != plan:
            changed = sorted(k for k in plan.keys() | old.keys() if plan.get(k) != old.get(k))
            raise DeepfakeError(f"{out}: started with other options ({', '.join(changed)} differ: "
                                f"{ {k: old.get(k) for k in changed} }); use those or a new folder")
        return
    if out.exists() and any(out.iterdir()):
        raise DeepfakeError(f"{out}: not empty and holds no {PLAN_FILE}; choose an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(plan_path, json.dumps(plan, indent=1), durable=True)


def generate_store(out: str | Path, config: DeepfakeConfig, *, network: Network | None = None,
                   progress: bool = True) -> SignalStore:
    """Generate `config.n` DeepFake ECGs into a signal store at `out` (resuming a run that was
    interrupted). `network` replaces the released generator (tests pass a fake one)."""
    from tqdm import tqdm

    out = Path(out)
    if network is None:
        network = load_generator()
    _check_plan(out, config.plan())
    writer = StoreWriter(out, source="deepfake-ecg")
    done = writer.finished_chunks()
    starts = range(0, config.n, config.chunk_size)
    with tqdm(total=config.n, unit="ECG", desc="deepfake ECGs", disable=not progress) as bar:
        for chunk, start in enumerate(starts):
            indices = range(start, min(start + config.chunk_size, config.n))
            if chunk not in done:
                signals = generate(network, config.seed, indices, config.batch_size)
                rows = pd.DataFrame({"ecg_id": [k + 1 for k in indices],
                                     "patient_id": pd.array([None] * len(indices), dtype="Int64"),
                                     "report": [""] * len(indices)})  # fmt: skip
                writer.write_chunk(chunk, signals, rows)
            bar.update(len(indices))
    return writer.finalize({"deepfake": {**config.plan(), "licence": "MIT",
                                         "units": f"mV = network output × {MV_PER_UNIT_OUTPUT:g}",
                                         "config": asdict(config)}})
