"""The request and response bodies of the OpenAPI document (`components.schemas`).

Plain JSON Schema 2020-12 data, written from protocol §4–§5. The candidate policy of
the what-if is generated from the very pydantic model that validates it, so the
document cannot drift from the code that checks it.
"""

from __future__ import annotations

from typing import Any

from validator.policy.model import Policy

Schema = dict[str, Any]

HOLDER_REF: Schema = {"type": "string", "pattern": "^[0-9a-f]{32}$",
                      "description": "hex(HMAC-SM3(pepper, SSN)[0:16]) (protocol §1)"}
CARD_NO: Schema = {"type": "string", "pattern": "^[A-Z0-9]{9}$"}
DATE: Schema = {"type": "string", "format": "date", "description": "YYYY-MM-DD"}
FEN: Schema = {"type": "integer", "minimum": 0, "description": "amount in fen (1/100 yuan)"}
COUNT: Schema = {"type": "integer", "minimum": 0}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), *,
        closed: bool = True, description: str | None = None) -> Schema:
    """An object schema; `closed` objects reject unknown fields, as the handlers do."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _block_list(param: str, schema: Schema) -> Schema:
    listed = obj({param: schema, "reason": _nullable({"type": "string"}),
                  "until": _nullable(DATE),
                  "active": {"type": "boolean", "description": "the block applies today"}},
                 (param, "reason", "until", "active"))
    return obj({"blocks": {"type": "array", "items": listed},
                "next": _nullable({**schema, "description": "`after` of the next page; "
                                   "null on the last"})}, ("blocks", "next"))


_CATEGORY = obj({
    "code": {"type": "string", "enum": ["veteran", "disabled"]},
    "grade": {"type": "integer", "minimum": 1, "maximum": 4,
              "description": "required for disabled, absent otherwise"},
    "until": {**DATE, "description": "inclusive; absent = no expiry"},
}, ("code",))

_USAGE = obj({
    "concession_rides_today": COUNT,
    "entered_today": {"type": "boolean"},
    "spot_entries_today": COUNT,
    "companion_primary": {"type": "boolean"},
}, description="usage so far today; each field optional (0 / false)")

_FARE = obj({"class": {"type": "string", "enum": ["free", "half", "full"]},
             "amount_fen": FEN, "standard_fen": FEN}, ("class", "amount_fen", "standard_fen"))

_DECISION_FIELDS: dict[str, Schema] = {
    "decision": {"type": "string", "enum": ["accept", "deny"]},
    "reason": {"type": "string", "description": "ok, or a deny reason of protocol §2-§4"},
    "fare": {**ref("Fare"), "description": "on accept only"},
    "rule": _nullable({"type": "string"}),
    "categories": {"type": "array", "items": {"type": "string"}},
    "message": obj({"zh": {"type": "string"}, "en": {"type": "string"}}, ("zh", "en")),
}
_DECISION_REQUIRED = ("decision", "reason", "rule", "categories", "message")

_CARD_STRINGS = ("region", "ssn", "card_no", "card_id", "version", "issued", "expires", "un",
                 "cryptogram")

_WHAT_IF_FIELDS = ("count_before", "count_after", "concession_fen_before",
                   "concession_fen_after")
_SETTLEMENT_SUMS = ("count", "standard_fen", "charged_fen", "concession_fen")


def _policy_schemas() -> dict[str, Schema]:
    """The candidate policy schema and its parts, named Policy*."""
    schema = Policy.model_json_schema(by_alias=True,
                                      ref_template="#/components/schemas/Policy{model}")
    parts = {f"Policy{name}": part for name, part in schema.pop("$defs", {}).items()}
    return {"Policy": schema, **parts}


SCHEMAS: dict[str, Schema] = {
    "Error": obj({"error": {"type": "string", "examples": [
        "invalid_request", "unauthorized", "forbidden", "terminal_disabled", "not_found",
        "method_not_allowed", "request_id_conflict", "payload_too_large",
        "store_unavailable"]}, "detail": {"type": "string"}}, ("error",)),
    "Fare": _FARE,
    "Category": _CATEGORY,
    "ValidationRequest": obj({
        "request_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,64}$"},
        "scanned_at": {"type": "string", "format": "date-time"},
        "credential": {"oneOf": [ref("QrCredential"), ref("CardCredential")]},
        "companion": {"type": "boolean", "default": False},
    }, ("request_id", "scanned_at", "credential"), closed=False),
    "QrCredential": obj({"type": {"const": "essc_qr"},
                         "qr": {"type": "string", "maxLength": 2048}}, ("type", "qr"),
                        closed=False),
    "CardCredential": obj({
        "type": {"const": "ssc_card"},
        **{name: {"type": "string"} for name in _CARD_STRINGS},
        "kv": {"type": "integer", "minimum": 1, "maximum": 255},
        "atc": {"type": "integer", "minimum": 0, "maximum": 65535},
    }, ("type", *_CARD_STRINGS, "kv", "atc"), closed=False),
    "Decision": obj({"request_id": {"type": "string"}, "txn_id": {"type": "string"},
                     **_DECISION_FIELDS}, ("request_id", "txn_id", *_DECISION_REQUIRED)),
    "Holder": obj({"holder_ref": HOLDER_REF,
                   "categories": {"type": "array", "items": ref("Category")}},
                  ("holder_ref", "categories")),
    "HolderPut": obj({"holder_ref": {**HOLDER_REF, "description": "optional; must match"},
                      "categories": {"type": "array", "items": ref("Category")}},
                     ("categories",)),
    "ImportLine": obj({"holder_ref": HOLDER_REF,
                       "ssn": {"type": "string", "description": "hashed on arrival"},
                       "categories": {"type": "array", "items": ref("Category")}},
                      ("categories",), description="one NDJSON line: holder_ref xor ssn"),
    "ImportReport": obj({
        "created": COUNT, "updated": COUNT,
        "rejected": {"type": "array", "items": obj(
            {"line": {"type": "integer", "minimum": 1}, "error": {"type": "string"}},
            ("line", "error"))},
    }, ("created", "updated", "rejected")),
    "BlockPut": obj({"reason": {"type": "string", "minLength": 1, "maxLength": 200},
                     "until": {**DATE, "description": "inclusive; not before today"}}),
    "CardBlock": obj({"card_no": CARD_NO, "reason": _nullable({"type": "string"}),
                      "until": _nullable(DATE)}, ("card_no", "reason", "until")),
    "HolderBlock": obj({"holder_ref": HOLDER_REF, "reason": _nullable({"type": "string"}),
                        "until": _nullable(DATE)}, ("holder_ref", "reason", "until")),
    "CardBlockList": _block_list("card_no", CARD_NO),
    "HolderBlockList": _block_list("holder_ref", HOLDER_REF),
    "AuditEntry": obj({
        "id": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
        "who": {"type": "string", "description": "operator token name, or cli"},
        "role": {"type": "string", "enum": ["admin", "viewer", "cli"]},
        "action": {"type": "string", "enum": [
            "holder.put", "holder.delete", "holder.import", "card_block.put",
            "card_block.delete", "holder_block.put", "holder_block.delete"]},
        "target": {"type": "string"}, "old": {}, "new": {},
    }, ("id", "at", "who", "role", "action", "target", "old", "new"), closed=False),
    "AuditPage": obj({"entries": {"type": "array", "items": ref("AuditEntry")}},
                     ("entries",)),
    "EvaluateRequest": obj({
        "venue": {"type": "string", "examples": ["bus:K1", "spot:S01"]},
        "at": {"type": "string", "format": "date-time"},
        "birth_date": {"type": "string", "pattern": "^[0-9]{8}$", "examples": ["19500101"]},
        "categories": {"type": "array", "items": ref("Category")},
        "resident": {"type": "boolean", "default": False},
        "companion": {"type": "boolean", "default": False},
        "usage": _USAGE,
    }, ("venue", "at", "birth_date")),
    "Offer": obj({"rule": {"type": "string"}, "fare": ref("Fare"),
                  "categories": {"type": "array", "items": {"type": "string"}}},
                 ("rule", "fare", "categories")),
    "Evaluation": obj({
        **_DECISION_FIELDS,
        "offers": {"type": "array", "items": ref("Offer")},
        "age": {"type": "integer", "description": "completed years on the local date"},
    }, (*_DECISION_REQUIRED, "offers", "age")),
    "SettlementRow": obj({"operator": {"type": "string"}, "venue": {"type": "string"},
                          "rule": {"type": "string"},
                          "fare_class": {"type": "string", "enum": ["free", "half", "full"]},
                          "count": COUNT, "standard_fen": FEN, "charged_fen": FEN,
                          "concession_fen": FEN},
                         ("operator", "venue", "rule", "fare_class", *_SETTLEMENT_SUMS)),
    "Settlement": obj({
        "date": DATE, "rows": {"type": "array", "items": ref("SettlementRow")},
        "totals": obj({name: COUNT for name in _SETTLEMENT_SUMS}, _SETTLEMENT_SUMS),
        "final": {"type": "boolean", "description":
                  "no offline record of the day can arrive any more (protocol §8.4)"},
        "uploads_until": {"type": "string", "format": "date-time", "description":
                          "the day's end plus the upload deadline, local time"},
    }, ("date", "rows", "totals", "final", "uploads_until")),
    "WhatIfRequest": obj({"date": DATE, "policy": ref("Policy")}, ("date", "policy")),
    "WhatIfRow": obj({"operator": {"type": "string"}, "venue": {"type": "string"},
                      "rule": {"type": "string"}, **{n: COUNT for n in _WHAT_IF_FIELDS}},
                     ("operator", "venue", "rule", *_WHAT_IF_FIELDS)),
    "WhatIf": obj({
        "date": DATE, "policy_version": {"type": "string"},
        "replayed": {**COUNT, "description": "scans decided again by the candidate"},
        "skipped": {**COUNT, "description": "scans at venues the city no longer has"},
        "rows": {"type": "array", "items": ref("WhatIfRow")},
        "totals": obj({n: COUNT for n in _WHAT_IF_FIELDS}, _WHAT_IF_FIELDS),
    }, ("date", "rows", "totals")),
    **_policy_schemas(),
}
