"""Card taps (protocol §3): the verifier, its check order, the simulator's card, and the
fixed conformance vectors published in docs/card-vectors.md."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import types
from typing import Any

import pytest
from cryptography.hazmat.primitives import cmac, hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from terminals_sim import card as sim
from terminals_sim.card import Card, CardExhausted, card_id_for, make_ssn, tampered
from validator.credentials import ssc_card as ssc
from validator.credentials.ssc_card import CardTap, CardVerifier, card_key, cryptogram_message
from validator.credentials.verified import Rejected
from validator.holders.ref import holder_ref
from validator.holders.ssn import ssn_check_char
from validator.reasons import Reason

TODAY = dt.date(2026, 11, 27)
NOW = 1795000000
TERMINAL = "T-BUS-K1-001"
REGION = "369900"
MK1 = bytes(range(16))
MK2 = bytes.fromhex("0123456789abcdeffedcba9876543210")
PEPPER = bytes(range(32))
X_SSN = make_ssn(REGION, dt.date(1962, 11, 27), 18)  # ends in "X"


def new_card(serial: int = 1, **changes: Any) -> Card:
    fields: dict[str, Any] = dict(
        region=REGION, ssn=make_ssn(REGION, dt.date(1950, 3, 1), 13), card_no="A00000001",
        card_id=card_id_for(REGION, serial), issued="20210301", expires="20310301",
        kv=1, master_key=MK1,
    )
    return Card(**(fields | changes))


def to_tap(credential: dict[str, str | int]) -> CardTap:
    return CardTap(**{k: v for k, v in credential.items() if k != "type"})  # type: ignore[arg-type]


def tap_of(card: Card, terminal: str = TERMINAL, at: int = NOW, un: str = "1A2B3C4D") -> CardTap:
    return to_tap(card.tap(terminal, at, un))


@pytest.fixture
def verifier() -> CardVerifier:
    return CardVerifier({(REGION, 1): MK1, (REGION, 2): MK2}, PEPPER)


def rejection(verifier: CardVerifier, tap: CardTap, terminal: str = TERMINAL,
              at: int = NOW) -> Rejected:
    with pytest.raises(Rejected) as excinfo:
        verifier.verify(tap, terminal, at, TODAY)
    return excinfo.value


def test_good_tap(verifier: CardVerifier) -> None:
    card = new_card()
    verified = verifier.verify(tap_of(card), TERMINAL, NOW, TODAY)
    assert verified.kind == "ssc_card"
    assert verified.holder_ref == holder_ref(PEPPER, card.ssn)
    assert verified.birth_date == dt.date(1950, 3, 1)
    assert (verified.region, verified.card_no) == (REGION, "A00000001")
    assert (verified.card_id, verified.atc) == (card.card_id, 1)
    assert verified.nonce is None and verified.late_denial is None


MALFORMED: dict[str, dict[str, Any]] = {
    "region 5 digits": {"region": "36990"},
    "region not digits": {"region": "36990A"},
    "ssn lower-case x": {"ssn": X_SSN.lower()},
    "ssn bad check char": {"ssn": X_SSN[:17] + "0"},
    "ssn future birth date": {"ssn": make_ssn(REGION, TODAY + dt.timedelta(days=1), 1)},
    "ssn 30 February": {"ssn": "36990019500230123" + ssn_check_char("36990019500230123")},
    "ssn 17 chars": {"ssn": X_SSN[:17]},
    "card_no lower-case": {"card_no": "a00000001"},
    "card_no 8 chars": {"card_no": "A0000001"},
    "issued 30 February": {"issued": "20210230"},
    "expires 7 digits": {"expires": "2031031"},
    "issued after expires": {"issued": "20310302", "expires": "20310301"},
    "kv 0": {"kv": 0},
    "kv 256": {"kv": 256},
    "kv bool": {"kv": True},
    "atc -1": {"atc": -1},
    "atc 65536": {"atc": 65536},
    "un 7 chars": {"un": "1A2B3C4"},
    "un not hex": {"un": "1A2B3C4G"},
    "cryptogram 15 chars": {"cryptogram": "0123456789abcde"},
    "cryptogram not hex": {"cryptogram": "0123456789abcdeg"},
    "card_id other region": {"card_id": card_id_for("110105", 1)},
    "card_id lower-case hex": {"card_id": card_id_for(REGION, 0xABCD).lower()},
    "card_id wrong RID": {"card_id": card_id_for(REGION, 1).replace("D156", "D157")},
    "card_id 31 chars": {"card_id": card_id_for(REGION, 1)[:-1]},
    "region not a string": {"region": 369900},
}


@pytest.mark.parametrize("changes", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_fields(verifier: CardVerifier, changes: dict[str, Any]) -> None:
    good = tap_of(new_card())
    for version in ("3.00", "2.00"):  # malformed wins over an unsupported version
        tap = dataclasses.replace(good, version=version, **changes)
        reject = rejection(verifier, tap)
        assert reject.reason is Reason.MALFORMED_CREDENTIAL
        assert str(tap.ssn)[:17] not in str(reject)  # field names only, never the SSN


def _outcome(check: Any, tap: CardTap) -> object:
    try:
        return check(tap, TODAY)
    except Rejected as exc:
        return (exc.reason, exc.detail)
    except TypeError:
        return TypeError


@pytest.mark.parametrize("changes", [{}, *MALFORMED.values()], ids=["good", *MALFORMED.keys()])
def test_one_pattern_and_the_checks_one_by_one_agree(changes: dict[str, Any]) -> None:
    # A well-formed tap skips the field-by-field regexes; whatever the path, the outcome
    # (dates, or the reason and the field named) must be the field-by-field one.
    tap = dataclasses.replace(tap_of(new_card()), **changes)
    assert _outcome(ssc._check_fields, tap) == _outcome(ssc._check_fields_one_by_one, tap)


@pytest.mark.parametrize("version", ["3.0", "2.00", "3.00 ", "", "3.01"])
def test_only_version_3_00_is_supported(verifier: CardVerifier, version: str) -> None:
    card = new_card(version=version)
    assert rejection(verifier, tap_of(card)).reason is Reason.UNSUPPORTED_CARD_VERSION


def test_check_order(verifier: CardVerifier) -> None:
    def reason(card: Card, **changes: Any) -> Reason:
        return rejection(verifier, dataclasses.replace(tap_of(card), **changes)).reason

    bad = {"cryptogram": "00" * 8}
    assert reason(new_card(version="2.00"), **bad) is Reason.UNSUPPORTED_CARD_VERSION
    assert reason(new_card(kv=3), **bad) is Reason.UNKNOWN_KEY
    assert reason(new_card(kv=3, version="2.00")) is Reason.UNSUPPORTED_CARD_VERSION
    other = "110105"
    assert reason(new_card(region=other, card_id=card_id_for(other, 1))) is Reason.UNKNOWN_KEY
    expired = new_card(expires="20260101", issued="20160101")
    assert reason(expired, **bad) is Reason.CRYPTOGRAM_INVALID


def test_cryptogram_is_bound_to_terminal_and_time(verifier: CardVerifier) -> None:
    card = new_card()
    tap = tap_of(card, TERMINAL, NOW)
    for terminal, at in (("T-BUS-K1-002", NOW), (TERMINAL, NOW + 1), (TERMINAL, NOW - 1)):
        assert rejection(verifier, tap, terminal, at).reason is Reason.CRYPTOGRAM_INVALID
    assert verifier.verify(tap, TERMINAL, NOW, TODAY).atc == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"un": "1A2B3C4E"},
        {"atc": 2},
        {"card_no": "A00000002"},
        {"expires": "20360301"},
        {"issued": "20210302"},
        {"ssn": X_SSN},
        {"card_id": card_id_for(REGION, 2)},
    ],
    ids=lambda changes: next(iter(changes)),
)
def test_every_field_is_covered_by_the_cryptogram(
    verifier: CardVerifier, changes: dict[str, str | int]
) -> None:
    credential = tampered(new_card().tap(TERMINAL, NOW, "1A2B3C4D"), **changes)
    assert rejection(verifier, to_tap(credential)).reason is Reason.CRYPTOGRAM_INVALID


def test_un_and_cryptogram_in_either_case(verifier: CardVerifier) -> None:
    lower_un = tap_of(new_card(), un="a1b2c3d4")  # the card MACs un.upper()
    verifier.verify(lower_un, TERMINAL, NOW, TODAY)
    for cryptogram in (lower_un.cryptogram.upper(), lower_un.cryptogram.lower()):
        tap = dataclasses.replace(lower_un, cryptogram=cryptogram, un="A1B2c3D4")
        verifier.verify(tap, TERMINAL, NOW, TODAY)


def test_two_key_versions_side_by_side(verifier: CardVerifier) -> None:
    old, new = new_card(1), new_card(2, kv=2, master_key=MK2)
    assert verifier.verify(tap_of(old), TERMINAL, NOW, TODAY).card_id == old.card_id
    assert verifier.verify(tap_of(new), TERMINAL, NOW, TODAY).card_id == new.card_id
    # A card claiming the other version, but keyed under its own, fails the cryptogram.
    assert rejection(verifier, tap_of(old.with_kv(2))).reason is Reason.CRYPTOGRAM_INVALID
    only_kv1 = CardVerifier({(REGION, 1): MK1}, PEPPER)
    assert rejection(only_kv1, tap_of(new)).reason is Reason.UNKNOWN_KEY


@pytest.mark.parametrize(("expires", "late"), [("20261126", Reason.CARD_EXPIRED),
                                                ("20261127", None)])
def test_expired_card_is_returned_for_the_counter(
    verifier: CardVerifier, expires: str, late: Reason | None
) -> None:
    # The counter must still move for an expired card, so the pipeline denies it later.
    verified = verifier.verify(tap_of(new_card(expires=expires)), TERMINAL, NOW, TODAY)
    assert (verified.late_denial, verified.atc) == (late, 1)


def test_atc_bounds_are_inclusive(verifier: CardVerifier) -> None:
    for atc in (0, 65535):
        tap = tap_of(new_card(atc=atc - 1))  # a card whose next tap carries `atc`
        assert verifier.verify(tap, TERMINAL, NOW, TODAY).atc == atc


def test_simulator_card_counter_and_faults(verifier: CardVerifier) -> None:
    card = new_card()
    atcs = [verifier.verify(tap_of(card, at=NOW + i), TERMINAL, NOW + i, TODAY).atc
            for i in range(3)]
    assert atcs == [1, 2, 3]
    # A clone still carries a valid cryptogram: only the pipeline's counter catches it.
    assert verifier.verify(tap_of(card.clone(atc=1)), TERMINAL, NOW, TODAY).atc == 2
    with pytest.raises(CardExhausted):
        new_card(atc=65535).tap(TERMINAL, NOW, "00000000")
    with pytest.raises(KeyError):
        tampered(card.tap(TERMINAL, NOW, "00000000"), colour="red")


def test_card_key_cache_is_a_bounded_lru() -> None:
    verifier = CardVerifier({(REGION, 1): MK1}, PEPPER, card_key_cache_size=2)
    cards = [new_card(serial) for serial in (1, 2, 3)]
    for card in cards + cards:
        verifier.verify(tap_of(card), TERMINAL, NOW, TODAY)
    assert verifier.cached_card_keys == 2
    assert len(verifier._holder_refs) == 2
    uncached = CardVerifier({(REGION, 1): MK1}, PEPPER, card_key_cache_size=0)
    uncached.verify(tap_of(cards[0]), TERMINAL, NOW, TODAY)
    assert uncached.cached_card_keys == 0


def test_a_returning_card_keeps_its_holder_ref_and_the_cache_keeps_no_ssn() -> None:
    verifier = CardVerifier({(REGION, 1): MK1}, PEPPER)
    cards = [new_card(serial, ssn=make_ssn(REGION, dt.date(1950, 3, serial), 13))
             for serial in (1, 2, 3)]
    assert len({card.ssn for card in cards}) == 3
    for _ in range(2):
        for card in cards:
            assert verifier.verify(tap_of(card), TERMINAL, NOW, TODAY).holder_ref == \
                holder_ref(PEPPER, card.ssn)
    assert len(verifier._holder_refs) == 3
    for name in verifier._holder_refs._items:
        assert not any(card.ssn in name for card in cards)
    # A tap whose cryptogram fails leaves no entry behind.
    with pytest.raises(Rejected):
        verifier.verify(dataclasses.replace(tap_of(new_card(4)), cryptogram="00" * 8),
                        TERMINAL, NOW, TODAY)
    assert len(verifier._holder_refs) == 3
    # Were an issuer ever to put another SSN on a card_id, the entry would not answer it.
    other = new_card(1, ssn=cards[1].ssn)
    assert other.card_id == cards[0].card_id
    assert verifier.verify(tap_of(other), TERMINAL, NOW, TODAY).holder_ref == \
        holder_ref(PEPPER, cards[1].ssn)


@pytest.mark.parametrize(
    ("keys", "size"), [({(REGION, 1): bytes(15)}, 16), ({(REGION, 1): MK1}, -1)]
)
def test_bad_configuration_is_refused(keys: dict[tuple[str, int], bytes], size: int) -> None:
    with pytest.raises(ValueError):
        CardVerifier(keys, PEPPER, card_key_cache_size=size)


def _reachable(root: object, needle: str) -> bool:
    """Whether `needle` occurs in a str/bytes reachable from `root` (modules, classes and
    function globals excluded: they reach this test module, which holds the SSNs)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType):
            continue
        seen.add(id(obj))
        if isinstance(obj, str | bytes):
            if needle.encode() in (obj.encode() if isinstance(obj, str) else obj):
                return True
        elif isinstance(obj, types.FunctionType):
            stack.extend(cell.cell_contents for cell in obj.__closure__ or ())
        elif isinstance(obj, dict):  # the collector skips string keys, the walk must not
            stack.extend(obj)
            stack.extend(obj.values())
        else:
            stack.extend(gc.get_referents(obj))
    return False


def test_the_ssn_is_not_kept(verifier: CardVerifier) -> None:
    card = new_card()
    tap = tap_of(card)
    verified = verifier.verify(tap, TERMINAL, NOW, TODAY)
    reject = rejection(verifier, dataclasses.replace(tap, cryptogram="00" * 8))
    assert _reachable(verifier, card.card_id)  # the walk does see the cache keys
    assert not _reachable(verifier, card.ssn)
    assert not _reachable(verified, card.ssn)
    assert card.ssn not in repr(tap) and card.ssn not in repr(card)
    chain: BaseException | None = reject
    while chain is not None:
        assert card.ssn not in str(chain) and card.ssn not in repr(chain.args)
        chain = chain.__cause__ or chain.__context__


# --- conformance vectors (docs/card-vectors.md) ---------------------------------------

VECTORS = [
    dict(mk="000102030405060708090a0b0c0d0e0f", region="369900", ssn="369900195003010135",
         card_no="A00000001", card_id="369900D1560000050000000000000001",
         issued="20210301", expires="20310301", kv=1, atc=1, un="1A2B3C4D",
         terminal_id="T-BUS-K1-001", scanned_at=1795000000,
         ck="566df04ec4e6d8f6a39cda45969fe078",
         m="369900D1560000050000000000000001|369900195003010135|A00000001|20210301|"
           "20310301|1|1A2B3C4D|T-BUS-K1-001|1795000000",
         cryptogram="277608b52d21d1cd"),
    dict(mk="0123456789abcdeffedcba9876543210", region="369900", ssn="36990019621127018X",
         card_no="B7Y2K9Q4Z", card_id="369900D15600000500A1B2C3D4E5F607",
         issued="20191231", expires="20291231", kv=2, atc=65535, un="a1b2c3d4",
         terminal_id="T-GATE-S01-01", scanned_at=1795000000,
         ck="89b0208ff487bd93fbb9884815f8d6ec",
         m="369900D15600000500A1B2C3D4E5F607|36990019621127018X|B7Y2K9Q4Z|20191231|"
           "20291231|65535|A1B2C3D4|T-GATE-S01-01|1795000000",
         cryptogram="d9f925e4b5233a40"),
    dict(mk="f0e1d2c3b4a5968778695a4b3c2d1e0f", region="110105", ssn="110105201602290863",
         card_no="Z99999999", card_id="110105D156000005FFFFFFFFFFFFFFFF",
         issued="20240229", expires="20340228", kv=255, atc=0, un="00000000",
         terminal_id="T-BUS-K1-002", scanned_at=1795003600,
         ck="f63236ffb6b7bbf6a64bb77fa7794e88",
         m="110105D156000005FFFFFFFFFFFFFFFF|110105201602290863|Z99999999|20240229|"
           "20340228|0|00000000|T-BUS-K1-002|1795003600",
         cryptogram="c60818a04337a7ce"),
]
_CARD_FIELDS = ("region", "ssn", "card_no", "card_id", "issued", "expires", "kv", "atc", "un")


def _sm4_ecb(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def _reference_cmac(key: bytes, message: bytes) -> bytes:
    """NIST SP 800-38B written out over raw SM4 blocks, independent of `cmac.CMAC`."""
    def double(block: bytes) -> bytes:
        value = int.from_bytes(block, "big") << 1
        return ((value ^ 0x87 if value >> 128 else value) & (1 << 128) - 1).to_bytes(16, "big")

    k1 = double(_sm4_ecb(key, bytes(16)))
    k2 = double(k1)
    blocks = [message[i:i + 16] for i in range(0, len(message), 16)] or [b""]
    last = blocks.pop()
    if len(last) == 16:
        last = bytes(a ^ b for a, b in zip(last, k1, strict=True))
    else:
        padded = last + b"\x80" + bytes(15 - len(last))
        last = bytes(a ^ b for a, b in zip(padded, k2, strict=True))
    state = bytes(16)
    for block in [*blocks, last]:
        state = _sm4_ecb(key, bytes(a ^ b for a, b in zip(state, block, strict=True)))
    return state


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"kv{v['kv']}-atc{v['atc']}")
def test_conformance_vector(vector: dict[str, Any]) -> None:
    mk = bytes.fromhex(vector["mk"])
    fields = {name: vector[name] for name in _CARD_FIELDS}
    tap = CardTap(version="3.00", cryptogram=vector["cryptogram"], **fields)
    ck = card_key(mk, vector["card_id"])
    message = cryptogram_message(tap, vector["terminal_id"], vector["scanned_at"])
    assert ck.hex() == vector["ck"] == sim.card_key(mk, vector["card_id"]).hex()
    assert message == vector["m"].encode("ascii")
    assert _reference_cmac(ck, message)[:8].hex() == vector["cryptogram"]
    assert sim.cryptogram(ck, fields, vector["terminal_id"], vector["scanned_at"]) == \
        vector["cryptogram"]
    verifier = CardVerifier({(vector["region"], vector["kv"]): mk}, PEPPER)
    verified = verifier.verify(tap, vector["terminal_id"], vector["scanned_at"], TODAY)
    assert verified.holder_ref == holder_ref(PEPPER, vector["ssn"])


def test_sm4_known_answer() -> None:
    # GB/T 32907-2016, Appendix A, example 1.
    block = bytes.fromhex("0123456789abcdeffedcba9876543210")
    assert _sm4_ecb(block, block).hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm3_known_answer() -> None:
    # GB/T 32905-2016, Appendix A, example 1: SM3("abc").
    digest = hashes.Hash(hashes.SM3())
    digest.update(b"abc")
    assert digest.finalize().hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 32, 100])
def test_library_sm4_cmac_matches_the_reference(length: int) -> None:
    # Covers the complete-last-block (K1) and padded (K2) branches of SP 800-38B.
    key, message = MK2, bytes(range(length))
    mac = cmac.CMAC(algorithms.SM4(key))
    mac.update(message)
    assert mac.finalize() == _reference_cmac(key, message)
