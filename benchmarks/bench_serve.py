"""The service under load: N concurrent clients on loopback, batching on vs off, in one run.

For each mode a fresh server process runs `qheart.serving.app.create_app` under uvicorn on
127.0.0.1 (batching on: up to --max-batch questions per forward pass; off: one), and N clients
post questions with a .npy ECG upload as fast as answers come back, for --duration seconds after
a short warm-up. Printed side by side: answered requests, throughput, p50/p95 latency, mean batch
size seen by the model, errors, and the on/off ratios.

    # a real model folder (qheart train)
    .venv/bin/python benchmarks/bench_serve.py --model runs/model --clients 16 --duration 20
    # the tests' fake model: a single question costs --fake-ms, a batch of 8 costs 1.5x that
    .venv/bin/python benchmarks/bench_serve.py --fake --fake-ms 100 --clients 16 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing as mp
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = (
    "Does this ECG show atrial fibrillation?",
    "What leads show ST elevation?",
    "Does this ECG show left axis deviation?",
    "What range is the qt interval of this ECG in?",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(port: int, model_dir: str | None, fake_ms: float, batch8_cost: float, max_batch: int,
           batch_wait_ms: float) -> None:
    """Child process: load the model, serve it on 127.0.0.1:port until terminated."""
    import uvicorn

    from qheart.serving.app import create_app
    from qheart.serving.settings import ServeSettings

    if model_dir is None:
        sys.path.insert(0, str(REPO))
        from tests.serving.fake_model import FakeQHeart

        model = FakeQHeart("fake", delay_s=fake_ms / 1000, batch8_cost=batch8_cost)
    else:
        from qheart.api import QHeart

        model = QHeart.from_pretrained(model_dir)
    settings = ServeSettings(max_batch=max_batch, batch_wait_ms=batch_wait_ms, queue_size=256,
                             request_timeout_s=120, n_examples=1, token_env="QHEART_BENCH_NO_TOKEN")
    uvicorn.run(create_app(model, settings), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)


@dataclass
class Result:
    latencies_s: list[float] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def row(self) -> dict[str, float]:
        lat = sorted(self.latencies_s)
        n = len(lat)
        return {
            "answered": n,
            "throughput": n / self.elapsed_s if self.elapsed_s else 0.0,
            "p50_ms": 1000 * statistics.median(lat) if n else float("nan"),
            "p95_ms": 1000 * lat[min(n - 1, int(0.95 * n))] if n else float("nan"),
            "mean_batch": statistics.fmean(self.batch_sizes) if self.batch_sizes else float("nan"),
            "errors": sum(self.errors.values()),
        }


async def _load(url: str, clients: int, duration_s: float, warmup_s: float, payload: bytes) -> Result:
    try:
        import httpx2 as httpx
    except ImportError:
        import httpx
    result = Result()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=180, limits=limits) as client:
        start = time.perf_counter()
        measure_from = start + warmup_s
        stop_at = measure_from + duration_s

        async def one_client(k: int) -> None:
            i = k
            while time.perf_counter() < stop_at:
                question = QUESTIONS[i % len(QUESTIONS)]
                i += 1
                sent = time.perf_counter()
                response = await client.post("/v1/ask", data={"question": question, "sample_rate": "500"},
                                             files=[("files", ("ecg.npy", payload, "application/octet-stream"))])
                done = time.perf_counter()
                if sent < measure_from or done > stop_at:
                    continue  # warm-up, or finished after the window closed
                if response.status_code == 200:
                    result.latencies_s.append(done - sent)
                    result.batch_sizes.append(response.json()["serving"]["batch_size"])
                else:
                    key = str(response.status_code)
                    result.errors[key] = result.errors.get(key, 0) + 1

        await asyncio.gather(*(one_client(k) for k in range(clients)))
        result.elapsed_s = duration_s
    return result


def _wait_healthy(url: str, process: mp.Process, timeout_s: float = 300) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.is_alive():
            raise RuntimeError(f"server process exited with {process.exitcode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not become healthy")


def run_mode(args: argparse.Namespace, max_batch: int, payload: bytes) -> Result:
    port = _free_port()
    ctx = mp.get_context("spawn")
    process = ctx.Process(target=_serve, args=(port, args.model, args.fake_ms, args.batch8_cost, max_batch,
                                               args.batch_wait_ms), daemon=True)
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        return asyncio.run(_load(url, args.clients, args.duration, args.warmup, payload))
    finally:
        process.terminate()
        process.join(10)


def _payload() -> bytes:
    from qheart.data.synth.ecg import simulate

    signal = simulate(np.random.default_rng([11, 0])).signal  # (12, 5000) mV at 500 Hz
    buffer = io.BytesIO()
    np.save(buffer, signal.astype(np.float32))
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="A trained model folder (qheart train).")
    source.add_argument("--fake", action="store_true", help="The tests' fake model with a set cost.")
    parser.add_argument("--fake-ms", type=float, default=100.0, help="Fake: cost of one question (ms).")
    parser.add_argument("--batch8-cost", type=float, default=1.5, help="Fake: cost of a batch of 8 / one.")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0, help="Measured seconds per mode.")
    parser.add_argument("--warmup", type=float, default=3.0, help="Unmeasured seconds first.")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--batch-wait-ms", type=float, default=5.0)
    args = parser.parse_args()

    payload = _payload()
    what = f"model {args.model}" if args.model else (
        f"fake model: {args.fake_ms:g} ms per question, batch of 8 = {args.batch8_cost:g}x")
    print(f"{what}; {args.clients} clients on 127.0.0.1, {args.duration:g} s measured per mode "
          f"after {args.warmup:g} s warm-up; .npy upload ({len(payload) // 1024} KiB) per request")
    rows = {}
    for name, max_batch in ((f"batching on (<= {args.max_batch})", args.max_batch), ("batching off", 1)):
        result = run_mode(args, max_batch, payload)
        rows[name] = result.row()
        if result.errors:
            print(f"  {name}: errors by status {result.errors}")
    on, off = rows.values()
    header = f"{'':24s}{'answered':>10s}{'req/s':>9s}{'p50 ms':>9s}{'p95 ms':>9s}{'batch':>7s}{'errors':>8s}"
    print(header)
    for name, r in rows.items():
        print(f"{name:24s}{r['answered']:>10d}{r['throughput']:>9.1f}{r['p50_ms']:>9.0f}{r['p95_ms']:>9.0f}"
              f"{r['mean_batch']:>7.2f}{r['errors']:>8d}")
    print(f"{'on / off':24s}{'':>10s}{on['throughput'] / max(off['throughput'], 1e-9):>8.2f}x"
          f"{on['p50_ms'] / off['p50_ms']:>8.2f}x{on['p95_ms'] / off['p95_ms']:>8.2f}x")


if __name__ == "__main__":
    main()
