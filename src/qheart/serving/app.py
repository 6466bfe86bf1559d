"""The FastAPI app around one loaded `QHeart` model: API, page, errors, auth and batching.

`create_app(model, settings)` takes any object with the `QHeart` interface (`ask_many`,
`load_ecg`, `describe`, `example_questions`), so tests run it on a fake model.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import tempfile
import time
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from qheart import __version__
from qheart.data.errors import ECGError
from qheart.serving.batching import Batcher, QueueFullError
from qheart.serving.errors import ServiceError
from qheart.serving.examples import make_examples
from qheart.serving.inputs import AskJSON, load_ecg, parse_request
from qheart.serving.plots import render_png
from qheart.serving.settings import ServeSettings
from qheart.serving.uploads import BodyLimitMiddleware

STATIC_DIR = Path(__file__).parent / "static"

_ASK_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object",
                "required": ["question"],
                "properties": {
                    "question": {"type": "string"},
                    "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                              "description": "A WFDB pair (.hea + .dat) or one .npy/.csv/.h5 file"},
                    "sample_rate": {"type": "number", "description": "Hz; needed for .npy/.csv"},
                    "example": {"type": "string", "description": "Or a bundled example's id"},
                    "decode": {"type": "string", "enum": ["rank", "generate"]},
                },
            }},
            "application/json": {"schema": AskJSON.model_json_schema()},
        },
    }
}
_ERRORS = {code: {"description": text, "content": {"application/json": {"example": {
    "error": err, "detail": "..."}}}} for code, text, err in [
    (401, "Missing or wrong bearer token", "Unauthorized"),
    (413, "Upload over the size limit", "PayloadTooLarge"),
    (415, "Neither multipart nor JSON, or an unknown file type", "UnsupportedMediaType"),
    (422, "The ECG or a field cannot be used (names the file and problem)", "TooShortError"),
    (503, "Too many questions waiting", "QueueFull"),
    (504, "No answer within the request timeout", "Timeout"),
]}


def _error(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.error, exc.detail, headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        name = HTTPStatus(exc.status_code).phrase.title().replace(" ", "").replace("-", "")
        return _error(exc.status_code, name, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        return _error(422, "InvalidRequest", problems)

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        return _error(500, "InternalError", f"{type(exc).__name__}: {exc}")


def _swagger_assets() -> Path | None:
    """Swagger UI's files from the swagger-ui-bundle wheel, so /docs works offline too."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    path = Path(swagger_ui_path)
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def _offline_docs(app: FastAPI, assets: Path) -> None:
    from fastapi.openapi.docs import get_swagger_ui_html

    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json",
                                   title="Q-HEART API", swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def create_app(model: Any, settings: ServeSettings | None = None) -> FastAPI:
    """The service for one loaded model. Token and examples are fixed when the app is made."""
    settings = settings or ServeSettings()
    token = settings.token()
    batcher = Batcher(model, max_batch=settings.max_batch, max_wait_s=settings.batch_wait_ms / 1000,
                      queue_size=settings.queue_size)
    examples = make_examples(settings.n_examples, settings.examples_seed)
    example_pngs: dict[str, bytes] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        await batcher.stop()

    docs_assets = _swagger_assets()
    app = FastAPI(
        title="Q-HEART",
        version=__version__,
        description="Ask clinical questions about a 12-lead ECG. Upload a WFDB pair (.hea + .dat) "
                    "or one .npy/.csv/.h5 file, or send the samples as JSON.",
        lifespan=lifespan,
        docs_url=None if docs_assets else "/docs",
        redoc_url=None,
    )
    if docs_assets is not None:
        _offline_docs(app, docs_assets)
    app.state.batcher = batcher
    app.state.settings = settings
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    _install_error_handlers(app)

    def require_token(authorization: str | None = Header(default=None)) -> None:
        if token is None:
            return
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise ServiceError(401, "Unauthorized",
                               "missing or wrong bearer token: send 'Authorization: Bearer <token>' "
                               f"(the value of {settings.token_env} on the server)")

    auth = [Depends(require_token)]

    async def read_ecg(request: Request, tmp: Path, needs_question: bool):
        parsed = await parse_request(request, tmp, settings.max_upload_bytes,
                                     needs_question=needs_question)
        ecg = await load_ecg(parsed.source, model.load_ecg, examples, tmp)
        return parsed, ecg

    async def answer(request: Request) -> dict:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="qheart-upload-", dir=settings.upload_dir,
                                         ignore_cleanup_errors=True) as tmp:
            parsed, ecg = await read_ecg(request, Path(tmp), needs_question=True)
        try:
            result, info = await batcher.submit(ecg, parsed.question, parsed.decode)
        except QueueFullError as exc:
            raise ServiceError(503, "QueueFull", str(exc)) from None
        except ECGError as exc:  # the model re-validates the array
            raise ServiceError(422, type(exc).__name__, str(exc)) from None
        except ValueError as exc:  # the model refused the question itself
            raise ServiceError(422, "BadQuestion", str(exc)) from None
        out = result.to_dict()
        out["ecg"] = {"source": parsed.source.label}
        out["serving"] = {"batch_size": info.batch_size, "queue_ms": round(info.queue_ms, 1),
                          "model_ms": round(info.model_ms, 1),
                          "total_ms": round((time.perf_counter() - start) * 1000, 1)}
        return out

    async def draw(request: Request) -> bytes:
        with tempfile.TemporaryDirectory(prefix="qheart-upload-", dir=settings.upload_dir,
                                         ignore_cleanup_errors=True) as tmp:
            parsed, ecg = await read_ecg(request, Path(tmp), needs_question=False)
        return await asyncio.to_thread(render_png, ecg, title=parsed.source.label)

    async def within_timeout(work):
        try:
            async with asyncio.timeout(settings.request_timeout_s):
                return await work
        except TimeoutError:
            raise ServiceError(504, "Timeout",
                               f"no answer within {settings.request_timeout_s:g} s") from None

    @app.post("/v1/ask", dependencies=auth, openapi_extra=_ASK_BODY, responses=_ERRORS,
              summary="Answer a question about an uploaded ECG")
    async def ask(request: Request) -> JSONResponse:
        """Multipart (`question`, `files`, `sample_rate`, `decode`, or `example`) or JSON."""
        return JSONResponse(await within_timeout(answer(request)))

    @app.post("/v1/plot", dependencies=auth, openapi_extra=_ASK_BODY, responses=_ERRORS,
              response_class=Response, summary="The uploaded ECG as a 12-lead PNG (paper grid)")
    async def plot(request: Request) -> Response:
        """The same inputs as /v1/ask; `question` is not needed."""
        return Response(await within_timeout(draw(request)), media_type="image/png")

    @app.get("/healthz", summary="Liveness (no token needed)")
    async def healthz() -> dict:
        return {"status": "ok", "waiting": batcher.waiting, "batches_run": batcher.batches_run,
                "questions_answered": batcher.questions_answered}

    @app.get("/v1/model", dependencies=auth, summary="What is loaded and how it is served")
    async def model_info() -> dict:
        serving = {**settings.public(), "token_required": token is not None}
        return {"model": model.describe(), "serving": serving, "version": __version__}

    @app.get("/v1/questions", dependencies=auth,
             summary="Example questions per ECG-QA question type (page suggestions)")
    async def questions() -> dict[str, list[str]]:
        return model.example_questions()

    @app.get("/v1/examples", dependencies=auth, summary="The bundled synthetic example ECGs")
    async def list_examples() -> list[dict]:
        return [e.summary() for e in examples.values()]

    def example_or_404(example_id: str):
        if example_id not in examples:
            raise ServiceError(404, "UnknownExample", f"no example {example_id!r}; see GET /v1/examples")
        return examples[example_id]

    @app.get("/v1/examples/{example_id}/plot.png", dependencies=auth, response_class=Response)
    async def example_plot(example_id: str) -> Response:
        example = example_or_404(example_id)
        if example_id not in example_pngs:
            example_pngs[example_id] = await asyncio.to_thread(
                render_png, example.signal, title=f"{example.title} (synthetic example)",
                subtitle=example.report)
        return Response(example_pngs[example_id], media_type="image/png")

    @app.get("/v1/examples/{example_id}/ecg.npy", dependencies=auth, response_class=Response,
             summary="An example as a (12, 5000) .npy in mV at 500 Hz, to try the upload")
    async def example_npy(example_id: str) -> Response:
        buffer = io.BytesIO()
        np.save(buffer, example_or_404(example_id).signal)
        return Response(buffer.getvalue(), media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{example_id}.npy"'})

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
