"""The web layer's exceptions: a leaf that imports only the standard library.

Handlers raise `ApiError`; `validator.web.errors` renders it (and the core's
`StoreUnavailable`) as the protocol's JSON error body, in one place.

    ApiError
     ├── 400 invalid_request      body not in the schema          (`invalid(detail)`)
     ├── 401 unauthorized         terminal signature / operator token
     ├── 403 terminal_disabled | forbidden
     ├── 404 not_found | offline_disabled
     ├── 409 request_id_conflict
     └── 413 payload_too_large
"""

from __future__ import annotations

__all__ = ["ApiError", "invalid"]


class ApiError(Exception):
    """An HTTP error that is not a decision: its status, `error` code and detail."""

    def __init__(self, status: int, error: str, detail: str | None = None) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail


def invalid(detail: str) -> ApiError:
    """400 `invalid_request`, `detail` naming the field and what was expected."""
    return ApiError(400, "invalid_request", detail)
