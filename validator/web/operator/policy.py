"""The two policy dry runs (protocol §5): `POST /v1/policy/evaluate` and `…/what-if`.

Both are open to viewers: they read configuration (and, for the what-if, the ledger)
but change nothing.
"""

from __future__ import annotations

from aiohttp import web

from validator.config_folder import ConfigError, load_policy_json
from validator.dryrun import InvalidEvaluation, explain, parse_evaluation
from validator.ledger.whatif import what_if
from validator.policy.engine import PolicyEngine
from validator.web.appkeys import CONFIG, STORE
from validator.web.exceptions import invalid
from validator.web.operator.request import json_object, parse_day, viewer

EVALUATE = "/v1/policy/evaluate"
WHAT_IF = "/v1/policy/what-if"
MAX_POLICY_BYTES = 256 * 1024  # a policy is a few KiB; leave room for a large city


def setup_routes(app: web.Application) -> None:
    app.router.add_post(EVALUATE, evaluate)
    app.router.add_post(WHAT_IF, post_what_if)


async def evaluate(request: web.Request) -> web.Response:
    """The live engine on the stated facts; no state is read or written."""
    viewer(request)
    engine = request.app[CONFIG].engine
    doc = await json_object(request)
    try:
        inp = parse_evaluation(doc, engine)
    except InvalidEvaluation as exc:
        raise invalid(str(exc)) from None
    return web.json_response(explain(engine.evaluate(inp)))


async def post_what_if(request: web.Request) -> web.Response:
    """Replay a day's ledgered scans through a candidate policy (same schema as config/)."""
    viewer(request)
    doc = await json_object(request, MAX_POLICY_BYTES)
    unknown = set(doc) - {"date", "policy"}
    if unknown:
        raise invalid(f"unknown field(s) {sorted(unknown)}")
    day = parse_day(doc.get("date"), "date")
    if "policy" not in doc:
        raise invalid("policy: required, a policy in the schema of config/policy.toml")
    try:
        policy = load_policy_json(doc["policy"])
    except ConfigError as exc:
        # Each problem names its field path, e.g. policy.bus.rule[4](bus.senior_60).min_age
        raise invalid("; ".join(
            f"policy{'.' + p.path if p.path else ''}: {p.detail}"
            + (f" (got {p.value})" if p.value is not None else "")
            for p in exc.problems)) from None
    config = request.app[CONFIG]
    candidate = PolicyEngine(config.city, config.calendar, policy)
    result = await what_if(request.app[STORE], day, candidate)
    return web.json_response(result.as_dict())
