"""`GET /v1/settlement?date=YYYY-MM-DD[&operator=ID]` (protocol §5), JSON or CSV."""

from __future__ import annotations

from aiohttp import web

from validator.ledger.settlement import InvalidOperator, parse_operator, settle
from validator.offline.finality import finality
from validator.web.appkeys import CLOCK, CONFIG, OFFLINE_CONFIG, STORE
from validator.web.exceptions import invalid
from validator.web.operator.request import query_date, viewer

SETTLEMENT = "/v1/settlement"


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
    if operator is not None:
        try:
            operator = parse_operator(operator)
        except InvalidOperator as exc:
            raise invalid(str(exc)) from None
    report = await settle(request.app[STORE], day, operator)
    # Final once no offline record of the day can arrive any more (protocol §8.4).
    offline = request.app.get(OFFLINE_CONFIG)
    final = finality(day, request.app[CONFIG].city.time_zone,
                     offline.upload_deadline_s if offline is not None else None,
                     request.app[CLOCK].now())
    if "text/csv" in request.headers.get("Accept", ""):
        suffix = f"-{operator}" if operator else ""
        return web.Response(
            text=report.as_csv(), content_type="text/csv", charset="utf-8",
            headers={"Content-Disposition":
                     f'attachment; filename="settlement-{day.isoformat()}{suffix}.csv"',
                     "X-Settlement-Final": "true" if final["final"] else "false"},
        )
    return web.json_response(report.as_dict() | final)
