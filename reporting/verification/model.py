"""What the verification adapters take and give: an identifier to check (:class:`Item`), the
answer of one call (:class:`Answer`), and the typed result recorded in the due-diligence state
(:class:`VerificationResult`).

An item's value is personal data (the TIN of an individual, the VAT number of a sole trader): it
is never in a ``repr``, a log line, an exception message or a result's text. It leaves this
package only inside the request to the service that checks it; the ledger keeps a keyed hash
(:func:`identifier_hash`) and the last three characters (:func:`reporting.identifiers.mask`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime

from reporting.errors import ConfigError, PermanentError
from reporting.identifiers import mask
from reporting.ledger.model import INVALID, UNVERIFIED, VERIFIED

TIN, VAT = "tin", "vat"
KINDS = (TIN, VAT)
STATES = (VERIFIED, INVALID, UNVERIFIED)

#: What a verified answer rests on, from the weakest to the strongest: the format and check digits
#: as python-stdnum knows them; the structure and syntax that the member states published to the
#: Commission (TIN on the Web); the registration in the member state's VAT register (VIES).
FORMAT, OFFICIAL_FORMAT, REGISTRATION = "format", "official_format", "registration"
LEVELS = (FORMAT, OFFICIAL_FORMAT, REGISTRATION)

#: the longest ``seller_id`` an item takes (``ledger_verification_calls.seller_id``)
MAX_SELLER_ID = 200
#: the longest identifier an item takes, as the source holds it: no TIN or VAT number comes near
MAX_VALUE = 64

#: the environment variable that holds the key of the identifier hashes (never in a file)
KEY_ENV = "DAC7_VERIFICATION_KEY"
MIN_KEY_BYTES = 16

_SEPARATORS = re.compile(r"[\s.\-/]+")


def vies_country(code: str) -> str:
    """VIES's code of a country (and TIN on the Web's): EL for Greece (GR in ISO 3166), the code
    itself otherwise."""
    code = code.upper()
    return "EL" if code == "GR" else code


def split_vat(item: Item) -> tuple[str, str]:
    """VIES's country code of a VAT number and the number without its prefix (as VIES is asked):
    the prefix is the item's country, or for Greece either spelling, GR or EL."""
    country = vies_country(item.country)
    compact = item.compact
    for prefix in {country, item.country.upper(), "GR" if country == "EL" else country}:
        if compact.startswith(prefix):
            return country, compact[len(prefix) :]
    return country, compact


def _hashed_text(item: Item) -> str:
    """``kind:country:compact value``, the text an identifier's hash is made of. A VAT number is
    taken as VIES is asked about it, its country VIES's code and its number after it
    (:func:`split_vat`): ``vat:EL:EL094259216`` whether the source says ``GR094259216``,
    ``EL 094 259 216`` or ``094259216`` with the country GR or EL; a number that already carries
    its own prefix (``DE136695976``) is hashed as it always was."""
    if item.kind != VAT:
        return f"{item.kind}:{item.country.upper()}:{item.compact}"
    country, number = split_vat(item)
    return f"{item.kind}:{country}:{country}{number}"


class VerificationError(PermanentError):
    """A verification batch cannot start or a verification file cannot be read: the message names
    the file, the line and the rule, never an identifier."""


@dataclass(frozen=True, slots=True, repr=False)
class Item:
    """An identifier a seller gave: ``kind`` tin or vat, ``country`` the issuing member state (a
    TIN's ``issued_by``; a VAT number's prefix, ``EL`` for Greece, ``XI`` for Northern Ireland),
    ``value`` as the source holds it, ``entity`` for a seller that is not an individual."""

    seller_id: str
    kind: str
    country: str
    value: str
    entity: bool = False

    def __post_init__(self) -> None:
        """Refuse, before anything is asked or recorded, what the record could not hold: a
        ``seller_id`` of more than :data:`MAX_SELLER_ID` characters, a ``value`` of more than
        :data:`MAX_VALUE`, a ``country`` that is not two letters, a ``kind`` not tin or vat. The
        message names the seller (the beginning of an over-long id) and the rule, never the value."""
        if not isinstance(self.seller_id, str) or not self.seller_id or len(self.seller_id) > MAX_SELLER_ID:
            start = self.seller_id if isinstance(self.seller_id, str) else type(self.seller_id).__name__
            start = start[:40] + ("..." if len(start) > 40 else "")
            raise VerificationError(
                f"seller {start!r}: seller_id must be a text of 1 to {MAX_SELLER_ID} characters (the record's "
                "column); nothing of it was verified"
            )
        if self.kind not in KINDS:
            raise VerificationError(f"seller {self.seller_id}: identifier kind {self.kind!r}; expected tin or vat")
        country = self.country if isinstance(self.country, str) else ""
        if len(country) != 2 or not (country.isascii() and country.isalpha()):
            raise VerificationError(
                f"seller {self.seller_id}: the country of a {self.kind} must be a two-letter code (the TIN's issuing "
                "state, the VAT number's prefix)"
            )
        if not isinstance(self.value, str) or len(self.value) > MAX_VALUE:
            raise VerificationError(
                f"seller {self.seller_id}: the {self.kind} is longer than {MAX_VALUE} characters (or not a text): "
                "not a TIN or VAT number; nothing of it was verified"
            )

    def __repr__(self) -> str:  # never the value
        return f"Item({self.seller_id!r}, {self.kind}, {self.country}, {self.masked})"

    @property
    def masked(self) -> str:
        """``***`` and the last three characters of the compact value, as the ledger records it
        (six characters at most, whatever the value's length)."""
        return mask(self.compact)

    @property
    def compact(self) -> str:
        """The value without spaces, dots, hyphens and slashes, in upper case: the form that is
        hashed and sent (two spellings of one number share their cache and their history)."""
        return _SEPARATORS.sub("", self.value).upper()


@dataclass(frozen=True, slots=True)
class Answer:
    """What one call of an adapter found. ``retry``: the call failed for a reason that may pass
    (the service or the member state busy or unavailable, a timeout, an HTTP 5xx, an answer that
    could not be read); ``scope`` says how far such a failure reaches: this ``item``, every item
    of its ``country``, or the whole ``service`` (the batch then asks no more of it)."""

    state: str
    detail: str
    evidence: str | None = None
    request_date: date | None = None
    retry: bool = False
    scope: str = "item"  # item | country | service


@dataclass(frozen=True, slots=True, repr=False)
class VerificationResult:
    """The answer of one adapter about one item, as the due-diligence state records it.

    ``state`` verified, invalid or unverified (could not be checked); ``level`` what a verified
    answer rests on (:data:`LEVELS`); ``source`` the service, its operation and its address (or
    python-stdnum and its version); ``checked_at`` when the answer was given (aware UTC; the time
    of the cached answer when ``cached``); ``evidence`` VIES's consultation number
    (requestIdentifier); ``request_date`` the service's own date; ``detail`` the reason, in the
    service's words where it gave any; ``identifier_hash`` finds the calls in the ledger."""

    item: Item
    adapter: str
    state: str
    level: str
    source: str
    checked_at: datetime
    detail: str
    identifier_hash: str
    evidence: str | None = None
    request_date: date | None = None
    cached: bool = False
    attempts: int = 0  # calls made for this result (0: from the cache, or not asked)

    def __repr__(self) -> str:
        return (
            f"VerificationResult({self.item!r}, {self.adapter}, {self.state}, {self.level}, {self.detail!r}"
            + (f", evidence={self.evidence!r}" if self.evidence else "")
            + (", cached" if self.cached else "")
            + ")"
        )

    @property
    def conclusive(self) -> bool:
        return self.state in (VERIFIED, INVALID)


def hash_key(text: str | None) -> bytes:
    """The key of the identifier hashes from its text (``DAC7_VERIFICATION_KEY``): at least
    :data:`MIN_KEY_BYTES` bytes, else :class:`ConfigError` saying how to make one."""
    key = (text or "").encode()
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"{KEY_ENV} is {'too short' if key else 'not set'}: the verification record keeps a keyed hash of each "
            f"identifier, never the identifier, and needs a secret of at least {MIN_KEY_BYTES} bytes (e.g. the output "
            "of `python -c 'import secrets; print(secrets.token_hex(32))'`, kept like a password; a new key starts "
            "the cache afresh)"
        )
    return key


def identifier_hash(key: bytes, item: Item) -> str:
    """HMAC-SHA256 of ``kind:country:compact value`` under ``key``, hexadecimal (a VAT number as
    VIES is asked about it, Greece as EL: :func:`_hashed_text`). Unkeyed, the hash of an
    identifier with few possible values (an 11-digit TIN) would be found by trying them all;
    keyed, only the holder of the key can recompute it from a value (to find its history)."""
    return hmac.new(key, _hashed_text(item).encode(), hashlib.sha256).hexdigest()


def cache_key(key: bytes, item: Item) -> str:
    """The key of an item's answers in an adapter's cache (``ledger_verification_cache``'s
    ``identifier_hash``): a VAT number's :func:`identifier_hash`; for a TIN, the HMAC-SHA256 of the
    identifier and the seller type (``tin:country:compact value:individual`` or ``:entity``),
    because the answer about a TIN depends on it: python-stdnum checks an individual's and an
    entity's TIN against other formats (a German Steuernummer is an entity's TIN, not an
    individual's), and TIN on the Web judges only individuals' TINs."""
    if item.kind != TIN:
        return identifier_hash(key, item)
    seller_type = "entity" if item.entity else "individual"
    return hmac.new(key, f"{_hashed_text(item)}:{seller_type}".encode(), hashlib.sha256).hexdigest()
