"""The validation request body (protocol §4): parsed by hand, strictly and fast.

A body that is not this schema is a 400 with a detail naming the field; a value of the
right JSON type but the wrong shape inside a credential is left to the verifiers, which
answer `malformed_credential` (protocol §3).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from validator.credentials.ssc_card import CardTap
from validator.decide import QrScan
from validator.web.body import parse_json_object
from validator.web.exceptions import invalid

MAX_QR_CHARS = 2048
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_CARD_STR_FIELDS = ("region", "ssn", "card_no", "card_id", "version", "issued", "expires",
                    "un", "cryptogram")
_CARD_INT_FIELDS = ("kv", "atc")


class ParsedBody:
    __slots__ = ("companion", "credential", "request_id", "scanned_at", "scanned_at_text")

    def __init__(self, request_id: str, scanned_at: dt.datetime, scanned_at_text: str,
                 credential: QrScan | CardTap, companion: bool) -> None:
        self.request_id = request_id
        self.scanned_at = scanned_at
        self.scanned_at_text = scanned_at_text
        self.credential = credential
        self.companion = companion


def request_id_of(doc: dict[str, Any], field: str) -> str:
    """A terminal's id for a request or an offline record: 8-64 of [A-Za-z0-9_-]."""
    value = doc.get(field)
    if not isinstance(value, str) or not _REQUEST_ID.fullmatch(value):
        raise invalid(f"{field}: 8-64 characters of [A-Za-z0-9_-] required")
    return value


def scanned_at_text_of(doc: dict[str, Any]) -> str:
    """`scanned_at` as sent (parse_rfc3339 reads it)."""
    value = doc.get("scanned_at")
    if not isinstance(value, str):
        raise invalid("scanned_at: an RFC 3339 timestamp with an offset is required")
    return value


def companion_of(doc: dict[str, Any]) -> bool:
    """The optional `companion` flag (default false)."""
    value = doc.get("companion", False)
    if not isinstance(value, bool):
        raise invalid("companion: must be a boolean")
    return value


def parse_validation(body: bytes) -> ParsedBody:
    doc = parse_json_object(body)
    request_id = request_id_of(doc, "request_id")
    scanned_text = scanned_at_text_of(doc)
    companion = companion_of(doc)
    return ParsedBody(request_id, parse_rfc3339(scanned_text), scanned_text,
                      _credential(doc.get("credential")), companion)


def parse_rfc3339(text: str) -> dt.datetime:
    # fromisoformat is a superset of RFC 3339; insist on the parts RFC 3339 requires.
    if len(text) < 20 or text[10] not in "Tt ":
        raise invalid("scanned_at: not an RFC 3339 date-time")
    try:
        value = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise invalid("scanned_at: not an RFC 3339 date-time") from None
    if value.tzinfo is None:
        raise invalid("scanned_at: the offset (Z or ±HH:MM) is required")
    return value


def _credential(cred: Any) -> QrScan | CardTap:
    if not isinstance(cred, dict):
        raise invalid("credential: an object is required")
    kind = cred.get("type")
    if kind == "essc_qr":
        qr = cred.get("qr")
        if not isinstance(qr, str):
            raise invalid("credential.qr: a string is required")
        if len(qr) > MAX_QR_CHARS:
            raise invalid(f"credential.qr: longer than {MAX_QR_CHARS} characters")
        return QrScan(qr)
    if kind == "ssc_card":
        for name in _CARD_STR_FIELDS:
            if not isinstance(cred.get(name), str):
                raise invalid(f"credential.{name}: a string is required")
        for name in _CARD_INT_FIELDS:
            value = cred.get(name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise invalid(f"credential.{name}: an integer is required")
        return CardTap(**{n: cred[n] for n in _CARD_STR_FIELDS + _CARD_INT_FIELDS})
    raise invalid("credential.type: must be \"essc_qr\" or \"ssc_card\"")


# A credential object as §4 has it, also inside an uploaded offline record.
parse_credential = _credential
