"""Gather concurrent questions into batches for one `model.ask_many` forward pass.

One worker task drains a bounded asyncio queue: it takes the first waiting question, then up to
`max_batch - 1` more that arrive within `max_wait_s`, and runs `ask_many` in a thread so the event
loop keeps accepting requests meanwhile. A full queue is refused at once (`QueueFullError`, 503)
rather than letting latency grow without bound. Questions whose caller gave up (timeout) are
dropped before they reach the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from qheart.data.leads import SAMPLE_RATE_HZ


class QueueFullError(RuntimeError):
    """More questions are waiting than the queue holds."""


class BatchModel(Protocol):
    def ask_many(self, ecgs: Sequence[Any], questions: Sequence[str], *,
                 sample_rate: float | None = None, decode: str = "rank") -> list[Any]: ...


@dataclass
class BatchInfo:
    """How a question was served (returned beside its answer, useful for benchmarks)."""

    batch_size: int
    queue_ms: float
    model_ms: float


@dataclass
class _Job:
    ecg: np.ndarray  # canonical (12, 5000)
    question: str
    decode: str
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)


class Batcher:
    """Owns the queue and the worker; `submit` is the only thing request handlers call."""

    def __init__(self, model: BatchModel, *, max_batch: int = 8, max_wait_s: float = 0.005,
                 queue_size: int = 64) -> None:
        if max_batch < 1 or queue_size < 1:
            raise ValueError(f"max_batch={max_batch}, queue_size={queue_size}: both must be >= 1")
        self.model = model
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.queue_size = queue_size
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None
        self.batches_run = 0
        self.questions_answered = 0

    def _ensure_started(self) -> asyncio.Queue[_Job]:
        """Start lazily on the running loop (works with or without an ASGI lifespan)."""
        if self._queue is None:
            self._queue = asyncio.Queue(maxsize=self.queue_size)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="qheart-batcher")
        return self._queue

    @property
    def waiting(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    async def submit(self, ecg: np.ndarray, question: str, decode: str = "rank") -> tuple[Any, BatchInfo]:
        """Queue one question about a canonical ECG; wait for its answer (or its exception)."""
        queue = self._ensure_started()
        job = _Job(ecg, question, decode, asyncio.get_running_loop().create_future())
        try:
            queue.put_nowait(job)
        except asyncio.QueueFull:
            raise QueueFullError(
                f"{self.queue_size} questions are already waiting for the model; retry shortly"
            ) from None
        return await job.future

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def _collect(self, queue: asyncio.Queue[_Job]) -> list[_Job]:
        """The first waiting job, then more until max_batch or max_wait_s has passed."""
        batch = [await queue.get()]
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.max_batch:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        return [job for job in batch if not job.future.done()]  # callers that gave up

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = await self._collect(self._queue)
            by_decode: dict[str, list[_Job]] = {}
            for job in batch:
                by_decode.setdefault(job.decode, []).append(job)
            for decode, jobs in by_decode.items():
                await self._answer(jobs, decode)

    async def _answer(self, jobs: list[_Job], decode: str) -> None:
        start = time.perf_counter()
        try:
            answers = await asyncio.to_thread(
                self.model.ask_many, [j.ecg for j in jobs], [j.question for j in jobs],
                sample_rate=float(SAMPLE_RATE_HZ), decode=decode,
            )
        except Exception as exc:
            if len(jobs) > 1:  # find whose question failed; the others still get answers
                for job in jobs:
                    await self._answer([job], decode)
                return
            _settle(jobs[0], exception=exc)
            return
        model_ms = (time.perf_counter() - start) * 1000
        self.batches_run += 1
        self.questions_answered += len(jobs)
        for job, answer in zip(jobs, answers, strict=True):
            info = BatchInfo(len(jobs), (start - job.queued_at) * 1000, model_ms)
            _settle(job, result=(answer, info))


def _settle(job: _Job, *, result: Any = None, exception: BaseException | None = None) -> None:
    if job.future.done():  # the caller timed out meanwhile
        return
    if exception is not None:
        job.future.set_exception(exception)
    else:
        job.future.set_result(result)
