"""Germany (BZSt): the DIP mass-data envelope around the EU edition of the DPI message.

The envelope ``dip:dip version="1.0"`` carries a header with the environment (``TEST`` or
``PROD``), the consignment (who delivers: the BZSt id of ``[authorities.DE] bzst_id`` with its
identity provider, when, and a unique transfer ticket id) and the application code ``DAC7``;
its body holds the ``DPI_OECD`` message. TransmittingCountry and ReceivingCountry are ``DE``,
MessageRefId ``DE<year>DE<unique>``, DocRefId ``DE<year>-<unique>``, SendingEntityIN the BZSt id
(allowed in a domestic filing). The environment is marked in the envelope; the records use
DocTypeIndic ``OECD0`` to ``OECD3`` in both.

Sources and what is unsure (reference §6.1): the structure and the BZSt texts come from a
third-party client (XDEV bzst-dip-java-client 2.0.2) that bundles the BZSt schemas and quotes
the "Kommunikationshandbuch DIP-Standard 1.4"; its copy of dip.xsd has the include of
dip-types.xsd commented out. The DocRefId format is that client's choice, not a documented BZSt
rule, and no BZSt file-size limit has been found. The German reading of the rules (de minimis
"weniger als 2 000 Euro", a mixed seller exempt for its goods only, PStTG § 4(5); the financial
account identifier, § 14(2) Nr. 6) is legal data of the member state, not of this file format:
see :mod:`reporting.variants`, which applies it to every seller of a filing in Germany, wherever
the seller lives (and never to a seller only because Germany receives it from another state).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from reporting.authorities.base import Doc, XmlStream
from reporting.authorities.eu import EuProfile
from reporting.checks.business import EU_DOMESTIC
from reporting.records import MessageHeader, OperatorRecord, OtherOperatorRecord, SellerRecord
from reporting.vocabulary import PROD

DIP_NS = "http://itzbund.de/ozg/bzst/post/dip/v1/"
IDENTITY_PROVIDERS = ("BZST-CERT", "ELSTER")


class DeProfile(EuProfile):
    code = "DE"
    domestic = "DE"
    edition = "BZSt DIP 1.0 envelope, DAC7 (EU DPI v1.0 inside)"
    # Our driver schema: the DIP envelope and the EU DPI schema, so that the message inside the
    # envelope's free-form data element is validated too.
    schema_resource = "de/dac7-dip.xsd"
    rule_set = EU_DOMESTIC
    required_identifiers: tuple[str, ...] = ("bzst_id",)
    # An operator whose reporting another operator assumes is released from reporting if it can
    # prove that the other reported (PStTG § 13(3) sentence 2). Its declaration follows the EU
    # edition inside the DIP envelope (the EU profile: a DPI403). Whether the BZSt expects that
    # declaration, or any message at all from a released operator, is not said in any BZSt text
    # found; unsure.
    assumed_message_type = "DPI403"
    #: how a published message reaches the BZSt: the DIP interface, driven end to end
    #: (reporting.transmit); every other profile takes a portal upload (the outbox)
    transmission = "dip"

    @property
    def nsmap(self) -> dict[str | None, str]:
        return {"dip": DIP_NS, "dpi": self.dpi_ns, "stf": self.stf_ns}

    def official_schema(self, xsd_dir: str | Path | None) -> Path:
        """With the BZSt's own package (dip.xsd and DPIXML_v1.0.xsd), a driver schema that imports
        both, written once to a temporary directory, so that the message inside is checked too."""
        if not xsd_dir:
            return super().official_schema(None)
        base = Path(xsd_dir).resolve()
        # One driver per version of the package: its files' names, sizes and times name it.
        stamp = "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(base.glob("*.xsd")))
        key = hashlib.sha256(f"{base}|{stamp}".encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / "dac7-xsd-drivers" / key / "dac7-dip.xsd"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(
                '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">'
                f'<xs:import namespace="{DIP_NS}" schemaLocation="{(base / "dip.xsd").as_uri()}"/>'
                f'<xs:import namespace="{self.dpi_ns}" schemaLocation="{(base / "DPIXML_v1.0.xsd").as_uri()}"/>'
                "</xs:schema>",
                encoding="utf-8",
            )
            os.replace(tmp, path)
        return path

    def identifier_problem(self, identifiers: dict[str, str]) -> str | None:
        provider = identifiers.get("identity_provider", "BZST-CERT")
        if provider not in IDENTITY_PROVIDERS:
            return f"identity_provider must be one of {', '.join(IDENTITY_PROVIDERS)}"
        if len(identifiers.get("bzst_id", "")) > 16:
            return "bzst_id has at most 16 characters (the DIP customer identifier)"
        return None

    def doc_type_indic(self, kind: str, environment: str) -> str:
        return {"resent": "OECD0", "new": "OECD1", "corrected": "OECD2", "deleted": "OECD3"}[kind]

    def sending_entity_in(self, header: MessageHeader) -> str | None:
        return header.identifiers["bzst_id"]

    def write_document(
        self,
        w: XmlStream,
        header: MessageHeader,
        operator: OperatorRecord,
        operator_doc: Doc,
        sellers: Iterable[tuple[SellerRecord, Doc]],
        others: Sequence[tuple[OtherOperatorRecord, Doc]] = (),
    ) -> int:
        provider = header.identifiers.get("identity_provider", "BZST-CERT")
        d = f"{{{DIP_NS}}}"
        with w.element(f"{d}dip", {"version": "1.0"}, nsmap=self.nsmap):
            with w.element(f"{d}header", {"environment": "PROD" if header.environment == PROD else "TEST"}):
                with w.element(f"{d}consignment"):
                    with w.element(f"{d}customerIdentifier"):
                        w.leaf(f"{d}identityProvider", provider)
                        w.leaf(f"{d}identifier", header.identifiers["bzst_id"])
                    w.leaf(f"{d}creationTime", header.timestamp.strftime("%Y-%m-%dT%H:%M:%S"))
                    w.leaf(f"{d}transferticketId", header.transfer_id)
                w.leaf(f"{d}application", None, {"code": "DAC7"})
            with w.element(f"{d}body"), w.element(f"{d}consignmentItem"), w.element(f"{d}data"):
                return self.write_message(w, header, operator, operator_doc, sellers, others=others)


DE = DeProfile()
