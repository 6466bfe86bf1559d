"""The HTTP service and web page around `qheart.api.QHeart` (`qheart serve`).

`create_app(model, settings)` builds the FastAPI app: `POST /v1/ask` (multipart upload or JSON),
`GET /healthz`, `GET /v1/model`, `GET /v1/questions`, `GET /v1/examples`, plots, and the page at `/`.
FastAPI and uvicorn come with the `serve` extra, so nothing here is imported by `import qheart`.
"""

from qheart.serving.settings import ServeSettings

__all__ = ["ServeSettings"]
