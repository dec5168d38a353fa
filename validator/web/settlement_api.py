"""`GET /v1/settlement?date=YYYY-MM-DD[&operator=ID]` (protocol §5), JSON or CSV."""

from __future__ import annotations

import re

from aiohttp import web

from validator.ledger.settlement import settle
from validator.web.appkeys import STORE
from validator.web.errors import invalid
from validator.web.operator_request import query_date, viewer

SETTLEMENT = "/v1/settlement"
_OPERATOR = re.compile(r"[A-Z0-9-]{3,40}")  # the operator id shape of city.toml


def setup_routes(app: web.Application) -> None:
    app.router.add_get(SETTLEMENT, get_settlement)


async def get_settlement(request: web.Request) -> web.Response:
    """The accepted decisions of a local day, summed per operator × venue × rule × fare.

    An operator id of the right shape that settled nothing that day (or no longer exists
    in city.toml) gets an empty report, not an error: past days outlive configuration.
    """
    viewer(request)
    day = query_date(request)
    operator = request.query.get("operator")
    if operator is not None and not _OPERATOR.fullmatch(operator):
        raise invalid("operator: expected an operator id, 3-40 characters of [A-Z0-9-]")
    report = await settle(request.app[STORE], day, operator)
    if "text/csv" in request.headers.get("Accept", ""):
        suffix = f"-{operator}" if operator else ""
        return web.Response(
            text=report.as_csv(), content_type="text/csv", charset="utf-8",
            headers={"Content-Disposition":
                     f'attachment; filename="settlement-{day.isoformat()}{suffix}.csv"'},
        )
    return web.json_response(report.as_dict())
