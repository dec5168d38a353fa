"""`ErrorBoundary`: where a store's client errors become `StoreUnavailable`, once.

Each store implementation knows which of its client's exceptions mean "the store cannot
be reached or did not answer" (its `translate`); the boundary is the one place that
applies it around a call: `with boundary: ...`. It holds no state of a call, so one
instance serves every call of a store.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from validator.state.store import StoreUnavailable

__all__ = ["ErrorBoundary"]


class ErrorBoundary:
    """A foreign error leaving the `with` block leaves as `translate(error)`, if that
    is not None; anything else passes unchanged."""

    __slots__ = ("_translate",)

    def __init__(self, translate: Callable[[BaseException | None], StoreUnavailable | None]
                 ) -> None:
        self._translate = translate

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        mapped = self._translate(exc)
        if mapped is not None:
            raise mapped from exc
