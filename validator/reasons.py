"""Decision reason codes (protocol §2–§4, policy.md) and the messages a gate shows."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Message(NamedTuple):
    zh: str
    en: str


class Reason(StrEnum):
    OK = "ok"
    # credential checks (protocol §2, §3)
    UNSUPPORTED_CREDENTIAL = "unsupported_credential"
    MALFORMED_CREDENTIAL = "malformed_credential"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    CREDENTIAL_EXPIRED = "credential_expired"
    CREDENTIAL_NOT_YET_VALID = "credential_not_yet_valid"
    QR_EXPIRED = "qr_expired"
    QR_NOT_YET_VALID = "qr_not_yet_valid"
    REPLAYED = "replayed"
    UNSUPPORTED_CARD_VERSION = "unsupported_card_version"
    CRYPTOGRAM_INVALID = "cryptogram_invalid"
    CARD_EXPIRED = "card_expired"
    CARD_CLONE_SUSPECTED = "card_clone_suspected"
    # holder status
    CARD_BLOCKED = "card_blocked"
    HOLDER_BLOCKED = "holder_blocked"
    # request (protocol §4)
    CLOCK_SKEW = "clock_skew"
    # policy (policy.md)
    VENUE_CLOSED = "venue_closed"
    CAPACITY_REACHED = "capacity_reached"
    ALREADY_ENTERED_TODAY = "already_entered_today"
    COMPANION_NOT_ALLOWED = "companion_not_allowed"
    # an offline record's upload (protocol §8): its QR nonce or card counter was used
    # on another terminal (or before) — one use settles, the others are this
    OFFLINE_DOUBLE_USE = "offline_double_use"
    # an offline record the terminal denied although the service would accept it: the
    # passenger was turned away, so there is no ride or entry to settle
    TERMINAL_DENIED = "terminal_denied"


DENY_MESSAGES: dict[Reason, Message] = {
    Reason.UNSUPPORTED_CREDENTIAL: Message("不支持的凭证", "Unsupported credential"),
    Reason.MALFORMED_CREDENTIAL: Message("凭证格式错误", "Malformed credential"),
    Reason.UNKNOWN_KEY: Message("未知的签发密钥", "Unknown issuer key"),
    Reason.BAD_SIGNATURE: Message("签名无效", "Invalid signature"),
    Reason.CREDENTIAL_EXPIRED: Message("电子社保卡凭证已过期", "Credential expired"),
    Reason.CREDENTIAL_NOT_YET_VALID: Message("凭证尚未生效", "Credential not yet valid"),
    Reason.QR_EXPIRED: Message("二维码已过期，请刷新", "QR code expired, please refresh"),
    Reason.QR_NOT_YET_VALID: Message("二维码时间异常", "QR code not yet valid"),
    Reason.REPLAYED: Message("凭证已被使用", "Credential already used"),
    Reason.UNSUPPORTED_CARD_VERSION: Message("不支持的卡片版本", "Unsupported card version"),
    Reason.CRYPTOGRAM_INVALID: Message("卡片认证失败", "Card authentication failed"),
    Reason.CARD_EXPIRED: Message("社保卡已过有效期", "Card expired"),
    Reason.CARD_CLONE_SUSPECTED: Message("卡片异常，请联系工作人员", "Card suspicious, see staff"),
    Reason.CARD_BLOCKED: Message("社保卡已挂失", "Card blocked"),
    Reason.HOLDER_BLOCKED: Message("持卡人已被停用", "Holder blocked"),
    Reason.CLOCK_SKEW: Message("终端时间异常", "Terminal clock out of sync"),
    Reason.VENUE_CLOSED: Message("不在开放时间", "Venue closed"),
    Reason.CAPACITY_REACHED: Message("今日游客已满", "Daily capacity reached"),
    Reason.ALREADY_ENTERED_TODAY: Message("今日已优惠入园", "Already entered today"),
    Reason.COMPANION_NOT_ALLOWED: Message("不符合陪同优惠条件", "Companion not allowed"),
    Reason.OFFLINE_DOUBLE_USE: Message("凭证已在其他终端使用", "Used on another terminal"),
    Reason.TERMINAL_DENIED: Message("终端离线时已拒绝", "Denied by the terminal offline"),
}

# Reasons that are fraud signals (validator_fraud_signals_total{kind}).
FRAUD_KINDS: dict[Reason, str] = {
    Reason.REPLAYED: "replay",
    Reason.CARD_CLONE_SUSPECTED: "card_clone",
    Reason.CARD_BLOCKED: "blocked_card",
    Reason.HOLDER_BLOCKED: "blocked_holder",
    Reason.BAD_SIGNATURE: "bad_signature",
    Reason.CRYPTOGRAM_INVALID: "bad_cryptogram",
    Reason.OFFLINE_DOUBLE_USE: "offline_double_use",
}
