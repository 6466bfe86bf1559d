"""The service's one error shape: `{"error": type, "detail": message naming the file/problem}`."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service answers with `status` and a JSON error body (never a crash)."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail

    def body(self) -> dict[str, str]:
        return {"error": self.error, "detail": self.detail}
