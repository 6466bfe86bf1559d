"""Turn an HTTP request into (question, canonical ECG): multipart upload, JSON array, or example.

Every refusal is a `ServiceError` with a 4xx status whose detail names the field or file; reader
errors (`qheart.data.errors.ECGError`) become 422 named after their class, with the temporary
folder stripped from the message so the client sees its own file name.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qheart.data.errors import ECGError
from qheart.serving.errors import ServiceError
from qheart.serving.uploads import MAX_FILES, record_path, save_uploads

DECODES = ("rank", "generate")
MAX_QUESTION_CHARS = 1000


class AskJSON(BaseModel):
    """The JSON form of POST /v1/ask (and /v1/plot, where `question` is not needed)."""

    model_config = ConfigDict(extra="forbid")

    question: str | None = Field(None, description="The question, e.g. 'Does this ECG show atrial fibrillation?'")
    signal: list[list[float]] | None = Field(
        None, description="The ECG in mV: 12 rows (I II III aVR aVL aVF V1-V6) of samples, or samples × 12")
    sample_rate: float | None = Field(None, description="Sampling rate of `signal` in Hz")
    example: str | None = Field(None, description="Or the id of a bundled example (GET /v1/examples)")
    decode: str = Field("rank", description="rank (score the options) or generate (free text)")


@dataclass
class EcgSource:
    """Where the ECG of a request comes from (exactly one of path, array, example)."""

    label: str
    path: Path | None = None
    array: np.ndarray | None = None
    example: str | None = None
    sample_rate: float | None = None


@dataclass
class AskInput:
    question: str | None
    decode: str
    source: EcgSource


def _question(value: Any, needed: bool) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if needed:
            raise ServiceError(422, "MissingQuestion", "field 'question' is missing or empty")
        return None
    if len(text) > MAX_QUESTION_CHARS:
        raise ServiceError(422, "QuestionTooLong",
                           f"question has {len(text)} characters; at most {MAX_QUESTION_CHARS}")
    return text


def _decode(value: Any) -> str:
    decode = "rank" if value is None else value.strip() if isinstance(value, str) else value
    if decode not in DECODES:
        raise ServiceError(422, "BadDecode", f"decode={value!r}: use one of {', '.join(DECODES)}")
    return decode


def _sample_rate(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ServiceError(422, "SampleRateError", f"sample_rate={value!r} is not a number") from None
    if not math.isfinite(rate):
        raise ServiceError(422, "SampleRateError", f"sample_rate={value!r} is not finite")
    return rate


async def parse_json(request, needs_question: bool) -> AskInput:
    body = await request.body()
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ServiceError(400, "BadJSON", f"request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ServiceError(400, "BadJSON", f"JSON body must be an object, got {type(payload).__name__}")
    try:
        parsed = AskJSON.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][:2])) or 'body'}: {e['msg']}"
                             for e in exc.errors()[:3])
        raise ServiceError(422, "InvalidRequest", f"JSON body: {problems}") from None
    question = _question(parsed.question, needs_question)
    decode = _decode(parsed.decode)
    if (parsed.signal is None) == (parsed.example is None):
        raise ServiceError(422, "NoECG", "give exactly one of 'signal' (with 'sample_rate') or 'example'")
    if parsed.example is not None:
        return AskInput(question, decode, EcgSource(f"example {parsed.example}", example=parsed.example))
    try:
        array = np.asarray(parsed.signal, dtype=np.float32)
    except ValueError:
        raise ServiceError(422, "UnreadableRecordError",
                           "JSON signal: rows have different lengths") from None
    rate = _sample_rate(parsed.sample_rate)
    return AskInput(question, decode, EcgSource("JSON signal", array=array, sample_rate=rate))


async def parse_multipart(form: Mapping[str, Any], tmp: Path, max_bytes: int,
                          needs_question: bool) -> AskInput:
    """A parsed multipart form → AskInput; uploaded files are copied into `tmp`."""
    question = _question(form.get("question"), needs_question)
    decode = _decode(form.get("decode"))
    rate = _sample_rate(form.get("sample_rate"))
    files = form.getlist("files")  # type: ignore[attr-defined]
    if any(isinstance(f, str) for f in files):
        raise ServiceError(422, "NoFile", "field 'files' must carry files, not text")
    example = form.get("example")
    example = example.strip() if isinstance(example, str) and example.strip() else None
    if files and example:
        raise ServiceError(422, "NoECG", "give either 'files' or 'example', not both")
    if example:
        return AskInput(question, decode, EcgSource(f"example {example}", example=example))
    saved = await save_uploads(files, tmp, max_bytes)
    path = record_path(saved)
    label = ", ".join(p.name for p in saved)
    return AskInput(question, decode, EcgSource(label, path=path, sample_rate=rate))


async def parse_request(request, tmp: Path, max_bytes: int, *, needs_question: bool = True) -> AskInput:
    """Dispatch on Content-Type; the caller owns `tmp` (a TemporaryDirectory) and removes it."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return await parse_json(request, needs_question)
    if content_type in {"multipart/form-data", "application/x-www-form-urlencoded"}:
        async with request.form(max_files=MAX_FILES, max_fields=16) as form:
            return await parse_multipart(form, tmp, max_bytes, needs_question)
    raise ServiceError(415, "UnsupportedMediaType",
                       f"Content-Type {content_type or '(none)'!r}: send multipart/form-data "
                       "(question + files) or application/json (question + signal + sample_rate)")


async def load_ecg(source: EcgSource, loader: Callable[..., np.ndarray],
                   examples: Mapping[str, Any], tmp: Path) -> np.ndarray:
    """The canonical (12, 5000) ECG of a request; reading runs in a thread (it is CPU work)."""
    if source.example is not None:
        if source.example not in examples:
            raise ServiceError(404, "UnknownExample",
                               f"no example {source.example!r}; see GET /v1/examples")
        return examples[source.example].signal
    if source.array is not None and source.sample_rate is None:
        raise ServiceError(422, "SampleRateError", f"{source.label}: sample rate missing: give "
                           "'sample_rate' (Hz) with the signal")
    target = source.path if source.path is not None else source.array
    try:
        return await asyncio.to_thread(loader, target, source.sample_rate)
    except ECGError as exc:
        raise ServiceError(422, type(exc).__name__, _strip(str(exc), tmp, source)) from None
    except (ValueError, IndexError, OSError) as exc:  # readers' untyped refusals (e.g. h5 index)
        raise ServiceError(422, "UnreadableRecordError", _strip(str(exc), tmp, source)) from None


def _strip(message: str, tmp: Path, source: EcgSource) -> str:
    """Name the client's file, not our temporary folder; arrays are called 'JSON signal'."""
    message = message.replace(f"{tmp}/", "").replace(str(tmp), "upload")
    if source.array is not None:
        message = re.sub(r"^<?array>?:", f"{source.label}:", message)
    return message
