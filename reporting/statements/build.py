"""One statement of a filed record: its object, its page and its line of the feed.

Every process that writes statements (:mod:`reporting.statements.writer`: this one, and the
page writers beside it) turns a seller record of the published XML into its statement with the
functions of this module, so that the bytes are the same whichever process writes them.

A correction (DocTypeIndic OECD2) and a deletion (OECD3) of a record give a new statement that
replaces the statement of the record they correct (``replaces``: its ``statement_id``, derived
from the same DocRefId, so no lookup is needed).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import IO, Any

from reporting.countries import EU_MEMBER_STATES
from reporting.jurisdictions import rule_set_for
from reporting.private import private_dirs
from reporting.statements.filed import FiledSeller, MessageHead
from reporting.statements.locale import Language, resolve
from reporting.statements.pages import SHARD_CHARS, STATEMENTS_DIR, canonical, page_line

#: Statement ids are UUIDs (version 5) in this namespace, of "<environment>/<authority>/<DocRefId>"
NAMESPACE = uuid.UUID("5b0d6f0e-6c1a-5d7e-9a57-0dac7517a7e0")
_NAMESPACE_BYTES = NAMESPACE.bytes


class MixedCurrencyError(ValueError):
    """A seller record whose amounts carry more than one ``currCode``.

    The XML allows it: each amount element is a ``MonAmnt_Type`` with its own ``currCode`` (the
    DPI schema), and the OECD Model Rules report consideration in the fiat currency it was paid
    in, but no guidance says how a seller paid in several currencies is reported (an open
    question of the project's reading of the rules). This project's filings hold one currency per
    seller; a record with several is refused rather than shown under one currency, naming the
    seller id and DocRefId (never a TIN)."""


def statement_id(environment: str, authority: str, doc_ref_id: str) -> str:
    """The statement of a filed record: the same record always gives the same id,
    ``str(uuid.uuid5(NAMESPACE, "<environment>/<authority>/<DocRefId>"))`` (RFC 4122, 4.3),
    computed here without building a ``UUID`` object (a third of the time; the tests compare)."""
    name = f"{environment}/{authority}/{doc_ref_id}".encode()
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def receiving_states(
    identity: dict[str, Any], activities: Sequence[dict[str, Any]], reportable: Container[str] = EU_MEMBER_STATES
) -> list[dict[str, str]]:
    """The states the filing state forwards the record to (Directive 2011/16/EU Art. 8ac(2); EU
    rule 40070 / BR_PAR007): each state of residence (``residence``), and each state where a
    reported property is located (``property``), that is ``reportable``: the member states, or
    under the OECD Model Rules the filing jurisdiction's reportable jurisdictions
    (:func:`reportable_of`). As :func:`reporting.rules.decide` routes the exchange, read here from
    the record itself; a state that is both is listed twice."""
    out = [
        {"country": c, "reason": "residence"} for c in dict.fromkeys(identity["residence_countries"]) if c in reportable
    ]
    seen = set()
    for a in activities:
        country = (a.get("property_address") or {}).get("country")
        if a["activity"] == "immovable_property" and country in reportable and country not in seen:
            seen.add(country)
            out.append({"country": country, "reason": "property"})
    return out


def reportable_of(authority: str, year: int, configured: Sequence[str] | None = None) -> Container[str]:
    """The jurisdictions a filing with ``authority`` forwards its records to: the member states
    under DAC7; under a Model Rules jurisdiction, the reportable jurisdictions of the year as the
    rules stage resolved them (:meth:`reporting.jurisdictions.RuleSet.reportable`): ``configured``,
    the operator's ``[authorities.XX] partner_jurisdictions`` (``[]``: the filing jurisdiction
    alone), where set, else the list published for the year."""
    rule_set = rule_set_for(authority)
    return rule_set.reportable(year, configured).jurisdictions if rule_set.model_rules else EU_MEMBER_STATES


def missing_error(missing: Sequence[str]) -> LookupError:
    """The error for seller records of a batch that the ledger does not know (their DocRefIds,
    the first three: record references, no personal data)."""
    return LookupError(
        f"{len(missing)} seller record(s) of the published files are not in the ledger "
        f"(DocRefId {', '.join(missing[:3])}): statements are written from the filing only"
    )


def check_currency(record: FiledSeller, seller_id: str) -> None:
    """A record with amounts in more than one currency is refused (:class:`MixedCurrencyError`)."""
    if len(record.currencies) > 1:
        raise MixedCurrencyError(
            f"seller {seller_id} (DocRefId {record.doc_ref_id}): the filed record holds amounts in "
            f"{len(record.currencies)} currencies ({', '.join(record.currencies)}); a statement "
            "states its figures in one currency (the feed's currency): no statement was written"
        )


@dataclass(frozen=True, slots=True)
class Run:
    """What every statement of a run shares (given to each page-writing process)."""

    out_dir: str
    environment: str
    year: int
    #: the date the statements are written, ISO (the feed's ``issued``), or None
    issued: str | None
    #: the ``[statements] contact`` the page names
    contact: str | None
    #: ``(authority, codes)`` for each filing authority whose operator set its reportable
    #: jurisdictions itself (``[authorities.XX] partner_jurisdictions``): the statements name
    #: those, as the rules decided with them, not the list the authority published
    partners: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def configured_partners(self, authority: str) -> tuple[str, ...] | None:
        """The partner jurisdictions configured for ``authority``, or None (none configured)."""
        return next((codes for a, codes in self.partners if a == authority), None)


#: what the ledger and the staged sellers say of one record: its seller, the seller's
#: ``sellers.language`` (None for none) and what the ledger recorded of its statement (its
#: ``sha256`` and content) or None
Lookup = tuple[str, str | None, tuple[str, str | None] | None]


class StatementWriter:
    """Writes statements in one process: each one's page under the output directory, its line
    of the feed to ``out`` (UTF-8) and, with ``rows``, its row for the ledger (:func:`ledger_row`);
    each shard folder made once."""

    def __init__(self, run: Run, out: IO[bytes], rows: IO[bytes] | None = None) -> None:
        self.run = run
        self.out = out
        self.rows = rows
        self._folder = f"{run.out_dir}/{STATEMENTS_DIR}"
        self._shards: set[str] = set()

    def write(self, authority: str, head: MessageHead, record: FiledSeller, lookup: Lookup) -> tuple[bool, int, int]:
        """The statement of ``record``: its page written, its line appended to the output (and
        its row to the rows). Returns whether the ledger's record was kept over this build's,
        and the bytes of the line and of the row."""
        seller_id, tag, known = lookup
        check_currency(record, seller_id)
        language = resolve(tag)
        run = self.run
        statement = _statement(
            record,
            head,
            authority,
            seller_id,
            language,
            run.environment,
            run.year,
            reportable_of(authority, run.year, run.configured_partners(authority)),
        )
        sid = statement["statement_id"]
        statement["issued"] = _recorded_issued(known) or run.issued
        shard = sid[:SHARD_CHARS]
        if shard not in self._shards:
            private_dirs(f"{self._folder}/{shard}")
            self._shards.add(shard)
        line, text = page_line(run.out_dir, statement, language, head.operator_name, run.contact, known)
        data = text.encode()
        self.out.write(data)
        row = b""
        if self.rows is not None:
            row = ledger_row(line)
            self.rows.write(row)
        return line is not statement, len(data), len(row)


#: the keys of a feed object whose contents the ledger's row leaves out (it holds their canonical
#: JSON in full): only whether each is an object or a list is kept
_BULKY = frozenset(("identity", "receiving_states", "activities"))


def ledger_row(obj: dict[str, Any]) -> bytes:
    """What the ledger records of a feed object, one JSON line: ``[summary, content_hash,
    content]``, ``content`` the object's canonical JSON (sorted keys, no spaces, UTF-8 characters
    kept), ``content_hash`` the sha256 of it, and ``summary`` the object with ``identity``,
    ``receiving_states`` and ``activities`` emptied (``{}``, ``[]``; any other value as it is):
    what the ledger checks, without reading the statement back from the feed
    (``reporting.ledger.statements.record_feed`` with ``rows``). Made in the process that wrote
    the statement, so that several processes share the work."""
    content = canonical(obj)
    summary = {k: (type(v)() if k in _BULKY and isinstance(v, dict | list) else v) for k, v in obj.items()}
    digest = hashlib.sha256(content.encode()).hexdigest()
    return json.dumps([summary, digest, content], ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _statement(
    record: FiledSeller,
    head: MessageHead,
    authority: str,
    seller_id: str,
    language: Language,
    environment: str,
    year: int,
    reportable: Container[str],
) -> dict[str, Any]:
    return {
        "statement_id": statement_id(environment, authority, record.doc_ref_id),
        "kind": record.kind,
        "replaces": statement_id(environment, authority, record.corr_doc_ref_id) if record.corr_doc_ref_id else None,
        "seller_id": seller_id,
        "year": year,
        "environment": environment,
        "language": language.tag,
        "identity": record.identity,
        "filed_with": {"country": authority, "message_ref_id": head.message_ref_id, "doc_ref_id": record.doc_ref_id},
        "receiving_states": receiving_states(record.identity, record.activities, reportable),
        "currency": record.currency,
        "activities": record.activities,
    }


def _recorded_issued(known: tuple[str, str | None] | None) -> str | None:
    """The ``issued`` date of a statement the ledger recorded (None for none, or for one recorded
    without it): the notice's date is the one it was given on."""
    if known is None or known[1] is None:
        return None
    issued = json.loads(known[1]).get("issued")
    return issued if isinstance(issued, str) else None
