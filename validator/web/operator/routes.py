"""Every operator route (and /openapi.json), registered in one call by the composition root."""

from __future__ import annotations

from aiohttp import web

from validator.web.operator import blocks, openapi, policy, registry, settlement

__all__ = ["setup_routes"]


def setup_routes(app: web.Application) -> None:
    """The registry, block lists, audit, policy, settlement and OpenAPI routes on `app`."""
    registry.setup_routes(app)
    blocks.setup_routes(app)
    policy.setup_routes(app)
    settlement.setup_routes(app)
    openapi.setup_routes(app)
