"""EU generic profile: the DG TAXUD edition of DPI v1.0, used for every member state without
a national variant (and, until one is configured, for all of them).

Ids follow the EU exchange formats (reference §3.2, rules 50008 and 80001):
MessageRefId ``<TransmittingCountry><year><ReceivingCountry><unique>`` and DocRefId
``<TransmittingCountry><year>-<unique>``. The Timestamp is in CET without an offset, as the EU
schema annotation requires ("The default time zone is CET ... A different time zone cannot be
provided"): read literally, CET is UTC+01:00 all year; summer time (CEST) is another zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from reporting.authorities.base import DocIds, DpiWriter, UploadCheck
from reporting.checks.business import EU_DOMESTIC
from reporting.records import MessageHeader

CET = timezone(timedelta(hours=1), "CET")


class EuProfile(DpiWriter):
    code = "EU"
    edition = "EU DG TAXUD DPI v1.0"
    schema_resource = "eu/v1.0/DPIXML_v1.0.xsd"
    #: The operator's filing to a member state is domestic: the exchange-only rules do not bind it.
    rule_set = EU_DOMESTIC
    required_identifiers: tuple[str, ...] = ()
    #: Limits of one file, where the authority publishes them (none known for the EU edition);
    #: a message over a limit is split into parts.
    max_sellers_per_file: int | None = None
    max_file_bytes: int | None = None
    # In the EU exchange a DPI403 must name an AssumedPlatformOperator (rule 20030): a period
    # without sellers is nothing to file. National profiles that take nil reports say so.
    expects_nil: bool = False
    #: The declaration of an operator whose reporting another operator assumes
    #: (``[assuming_operator]``): its PlatformOperator with ``AssumedReporting`` true, the
    #: AssumingPlatformOperator and no seller. The EU schema's annotation of AssumedReporting
    #: describes it ("Platform Operator 1 will therefore provide its identification information
    #: and set the AssumedReporting element to 'true' to notify its jurisdiction of residence ...
    #: will not provide ReportableSeller element"), and it is a DPI403: the EU rules bind a
    #: domestic filing in this edition with 20010 (AssumedReporting false in a DPI401) and 20040
    #: (a DPI401 has a seller), so a DPI401 cannot carry it. A profile that files it otherwise
    #: (HMRC's assumed-reporting service sends a DPI401 without sellers) says so here, with its
    #: source. The EU annotation also calls OtherPlatformOperators and AssumedReporting
    #: "optional for the purposes of [EU DIR2021/514]": an authority may not ask for the
    #: declaration at all; none of the profiles here says so.
    assumed_message_type: str = "DPI403"
    #: Whether the edition has AssumedPlatformOperator, to name the operators whose reporting
    #: this operator assumes (``[[assumed_operators]]``); NAV's DPI_HU has not.
    names_assumed_operators: bool = True
    #: How a published message reaches the authority: ``portal`` (an upload package in the outbox,
    #: reporting.transmit.outbox) unless a profile's interface is driven (DE: ``dip``).
    transmission: str = "portal"

    def identifier_problem(self, identifiers: dict[str, str]) -> str | None:
        """What is wrong with the ``[authorities.XX]`` identifiers, if anything."""
        return None

    #: A domestic filing format sends from and to its own state (TransmittingCountry and
    #: ReceivingCountry both this code); None: from the operator's state to the receiving one.
    domestic: str | None = None

    def doc_ids(self, run_id: str, operator_country: str, receiving_country: str, year: int) -> DocIds:
        if self.domestic:
            return DocIds(run_id, self.domestic, self.domestic, year)
        return DocIds(run_id, operator_country, receiving_country, year)

    def message_ref_id(self, ids: DocIds, part: int) -> str:
        unique = ids.unique("message", ids.receiving_country, str(part))
        return f"{ids.transmitting_country}{ids.year}{ids.receiving_country}{unique}"

    def doc_ref_id(self, ids: DocIds, record_key: str) -> str:
        return f"{ids.transmitting_country}{ids.year}-{ids.unique('doc', ids.receiving_country, record_key)}"

    def bind_doc_ref_id(self, doc_ref_id: str, message_ref_id: str) -> str:
        """The DocRefId of a new record in the message ``message_ref_id``: as made, here; a
        profile whose DocRefIds start with their message's MessageRefId (GB) rewrites it."""
        return doc_ref_id

    def upload_checks(
        self, path: Path, identifiers: Mapping[str, str], *, name: str | None = None, schema: Path | None = None
    ) -> list[UploadCheck]:
        """The authority's own checks of a file at upload (under ``name``, default its own; with
        ``schema``, the main XSD file, the schema check among them), run before publishing and again
        in the outbox;
        none known here (the outbox checks size and naming for every profile)."""
        return []

    def file_name(self, header: MessageHeader) -> str:
        return f"{header.message_ref_id}.xml"

    def follows_naming(self, name: str, message_ref_id: str, reporting_year: int) -> bool:
        """Whether ``name`` is a name :meth:`file_name` gives the message (checked again at upload)."""
        return name == f"{message_ref_id}.xml"

    def doc_type_indic(self, kind: str, environment: str) -> str:
        code = {"resent": 0, "new": 1, "corrected": 2, "deleted": 3}[kind]
        return f"OECD1{code}" if environment == "test" else f"OECD{code}"

    def message_timestamp(self, utc: datetime) -> datetime:
        return utc.replace(tzinfo=UTC).astimezone(CET).replace(tzinfo=None, microsecond=0)
