"""Italy (Agenzia delle Entrate): the telematic supply ``DPI23`` around the DPI message.

``tm:Messaggio`` / ``tm:Intestazione/tm:CodiceFiscaleFornitore`` (the submitter's codice
fiscale, ``[authorities.IT] codice_fiscale``) / ``tm:Contenuto CodiceFornitura="DPI23"`` /
``dpitel:Fornitura`` / ``dpi:DPI_OECD version="1.09"``. The DPI schema v1.09 has the structure
of the EU edition. TransmittingCountry and ReceivingCountry are ``IT`` (checks E0110, E0120);
MessageRefId ``IT<YYYY>IT<UUID v4>`` (E0130) and DocRefId ``IT<YYYY><UUID v4>`` (E0260), the
UUIDs derived from the run id and the record, so that a rerun with the same run id is identical.

Sources and what is unsure (reference §4.2, §6.4): the envelope and the checks come from the
Sogei checker jar of the AdE ("Controllo di comunicazioni di Disclosure (DAC7)" v01.09.00) as
stored in a third-party repository. The schema accepts any five-character supply code and any
root: this profile writes ``DPI23`` and the ``tm:Messaggio`` root, as the checker's plugin.xml
names them. The checker's file-hygiene checks (C0000-C0008) are not yet run by the preflight.
"""

from __future__ import annotations

import codecs
import re
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from reporting.authorities.base import Doc, DocIds, XmlStream
from reporting.authorities.eu import EuProfile
from reporting.checks.business import EU_DOMESTIC, RuleFinding
from reporting.records import MessageHeader, OperatorRecord, OtherOperatorRecord, SellerRecord

TM_NS = "www.agenziaentrate.gov.it:specificheTecniche:telent:v1"
DPITEL_NS = "urn:www.agenziaentrate.gov.it:specificheTecniche:dpitel"
CODICE_FISCALE = re.compile(r"[0-9]{11}|[A-Z0-9]{16}")


# The checker's file-hygiene checks, as its configuration enables them by default (C0002, comments,
# and C0003/C0007 are off there: C0002 is reported as a warning). C0004 (a bare '&') and C0005 (SQL
# sequences, whose patterns are not published) are not checked: the first cannot occur in a
# well-formed file, the second is not specified.
_CONTROL = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")
_DECLARATION = re.compile(rb"""^<\?xml[^>]*encoding=["']UTF-8["']""", re.IGNORECASE)


def file_hygiene(path: Path, chunk: int = 1 << 20) -> list[RuleFinding]:
    """The AdE checker's file checks C0000, C0001, C0002, C0006 and C0008, streamed over the file."""
    found: dict[str, RuleFinding] = {}

    def hit(code: str, message: str, severity: str = "error") -> None:
        found.setdefault(code, RuleFinding(code, "AdE file check", severity, None, "/", message))

    decoder = codecs.getincrementaldecoder("utf-8")()
    with Path(path).open("rb") as fh:
        first = fh.read(chunk)
        if first.startswith(codecs.BOM_UTF8):
            hit("C0000", "the file starts with a byte order mark: write UTF-8 without BOM")
        if not _DECLARATION.match(first.removeprefix(codecs.BOM_UTF8)):
            hit("C0006", 'the XML declaration does not declare UTF-8: start with <?xml ... encoding="UTF-8"?>')
        tail, data = "", first
        while data:
            try:
                text = decoder.decode(data)
            except UnicodeDecodeError:
                hit("C0001", "the file is not valid UTF-8: re-encode it")
                break
            window = tail + text
            if "<!--" in window:
                hit("C0002", "the file contains comments, which the checker can refuse: remove them", "warning")
            if _CONTROL.search(text):
                hit("C0008", "the file contains Unicode control characters: remove them")
            tail, data = window[-3:], fh.read(chunk)
    return sorted(found.values(), key=lambda f: f.code)


def uuid4_shaped(ids: DocIds, *parts: str) -> str:
    """A UUID in version-4 form (as the AdE checks require), derived from the run and the parts."""
    return str(uuid.UUID(bytes=uuid.uuid5(uuid.UUID(ids.run_id), "/".join(parts)).bytes, version=4))


class ItProfile(EuProfile):
    code = "IT"
    # the AdE checker takes nil reports: E2050/E9020 check a DPI403 without sellers (§4.2)
    expects_nil = True
    # The AdE checker refuses a DPI401 without sellers (E2040) and takes a DPI403 without them
    # (E2050, E9020): an assumed operator's declaration is a DPI403. No AdE text on the assumed
    # operator's declaration itself was found (reference §4.2).
    assumed_message_type = "DPI403"
    domestic = "IT"
    edition = "AdE telematic supply DPI23, DPI v1.09"
    schema_resource = "it/telematico/fornituraDPIT_v1.0.0.xsd"
    # the AdE checker's E4050 in place of the exchange's 40050: an assumed operator is resident in a
    # member state, any one (reference §4.2)
    rule_set = EU_DOMESTIC.derive("AdE domestic", add=("E4050",))
    required_identifiers: tuple[str, ...] = ("codice_fiscale",)
    version = "1.09"

    @property
    def nsmap(self) -> dict[str | None, str]:
        return {"tm": TM_NS, "dpitel": DPITEL_NS, "dpi": self.dpi_ns, "stf": self.stf_ns}

    def extra_checks(self, path: Path) -> list[RuleFinding]:
        return file_hygiene(path)

    def identifier_problem(self, identifiers: dict[str, str]) -> str | None:
        if not CODICE_FISCALE.fullmatch(identifiers.get("codice_fiscale", "")):
            return "codice_fiscale must be 11 digits or 16 upper-case letters and digits"
        return None

    def message_ref_id(self, ids: DocIds, part: int) -> str:
        return f"IT{ids.year}IT{uuid4_shaped(ids, 'message', str(part))}"

    def doc_ref_id(self, ids: DocIds, record_key: str) -> str:
        return f"IT{ids.year}{uuid4_shaped(ids, 'doc', record_key)}"

    def write_document(
        self,
        w: XmlStream,
        header: MessageHeader,
        operator: OperatorRecord,
        operator_doc: Doc,
        sellers: Iterable[tuple[SellerRecord, Doc]],
        others: Sequence[tuple[OtherOperatorRecord, Doc]] = (),
    ) -> int:
        with w.element(f"{{{TM_NS}}}Messaggio", nsmap=self.nsmap):
            with w.element(f"{{{TM_NS}}}Intestazione"):
                w.leaf(f"{{{TM_NS}}}CodiceFiscaleFornitore", header.identifiers["codice_fiscale"])
            with (
                w.element(f"{{{TM_NS}}}Contenuto", {"CodiceFornitura": "DPI23"}),
                w.element(f"{{{DPITEL_NS}}}Fornitura"),
            ):
                return self.write_message(w, header, operator, operator_doc, sellers, others=others)


IT = ItProfile()
