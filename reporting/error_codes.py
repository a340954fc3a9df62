"""What an authority's error code means, where a published table says so.

An authority's status message names its errors by code only (``40080``, ``E0020``, ``FR-12``).
This module gives each code its meaning from the published tables the preflight uses:

- the EU DAC7 business rules and file errors (DG TAXUD, DAC7 module 1.1.0, ``ErrorCode`` table),
  as :data:`reporting.checks.business.RULES` holds them, plus the codes the preflight cannot check
  (file errors, rules on the receiver's database), from the same table;
- the transport-level file errors 50001-50004 and 50006 of the OECD CRS/CTS status-message family
  (their DPI use is unconfirmed: :data:`CTS_FILE_ERRORS`);
- the Italian checker's codes (Agenzia delle Entrate, DAC7 checker ``description.properties``):
  its own format and file checks, and the ``E`` codes that mirror the EU codes
  (``E4080`` = ``40080``), with the two rules Italy words differently and its extra ``E9020``;
- the DGFiP's second-level rules 2, 12, 33, 34-1 and 34-2 (cahier des charges DPI-DAC7 v1.6, as the
  FR profile checks them, :mod:`reporting.authorities.fr`).

A code that no table has is shown as ``code N: no published meaning``: never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

#: EU codes of the DG TAXUD table that the preflight has no check for (the codes it checks take
#: their meaning from :data:`reporting.checks.business.RULES`): file errors found on receipt, and rules
#: on the receiving member state's database.
EU_ONLY_ON_RECEIPT: dict[str, str] = {
    "50005": "File error: potential security threats in the decrypted file (hyperlinks, scripts, executables).",
    "50007": "File error: the file failed validation against the XML Schema Definition.",
    "70010": "Redundant reporting by an assumed Platform Operator: the member state rejected it.",
    "80008": "The resend option (OECD0) cannot be used for the correctable record specified.",
}

#: The transport-level file errors of the OECD CRS/CTS status-message family that a status
#: message may also name (the reference, ``dac7-rules.md`` section 4.3: 50001 failed download,
#: 50002 decryption, 50003 decompression, 50004 signature, 50006 virus scan). They are not from a
#: DPI source and their DPI use is unconfirmed (the reference's section 8); 50010 and 50011 have
#: no meaning in the reference and are left out (shown as having no published meaning).
CTS_FILE_ERRORS: dict[str, str] = {
    "50001": "File error (CTS transport): the file could not be downloaded.",
    "50002": "File error (CTS transport): the file could not be decrypted.",
    "50003": "File error (CTS transport): the file could not be decompressed.",
    "50004": "File error (CTS transport): the file's signature check failed.",
    "50006": "File error (CTS transport): the file failed the virus scan.",
}

#: The Italian checker's own codes (format and file checks, warnings).
IT_CODES: dict[str, str] = {
    "C0000": "The file starts with a byte order mark (BOM).",
    "C0001": "The file is not valid UTF-8.",
    "C0002": "The file contains comments.",
    "C0003": "The file contains disallowed characters.",
    "C0004": "A character is not written as its predefined entity (for example a bare '&').",
    "C0005": "The file contains SQL-injection sequences.",
    "C0006": "The file is not declared as UTF-8.",
    "C0007": "A character entity is misspelled.",
    "C0008": "The file contains Unicode control characters.",
    "E0020": "Formal check of the Italian codice fiscale failed.",
    "E0040": "PlatformOperator IN has an invalid format.",
    "E0050": "The Italian codice fiscale of the PlatformOperator is not provided.",
    "E0110": "TransmittingCountry must be IT.",
    "E0120": "ReceivingCountry must be IT.",
    "E0130": "MessageRefId must be IT<year>IT<UUID v4>.",
    "E0140": "ReportingPeriod must be YYYY-MM-DD.",
    "E0160": "Timestamp must be YYYY-MM-DDThh:mm:ss[.nnn].",
    "E0210": "DPIBody must be present exactly once.",
    "E0220": "An EntitySeller must not have Nexus.",
    "E0230": "An EntitySeller must not have AssumedReporting.",
    "E0250": "An EntitySeller must not have PlatformBusinessName.",
    "E0260": "DocRefId must be IT<year><UUID v4>.",
    "E4050": "An assumed Platform Operator needs a member state among its Residence Country Codes.",
    "E4070": "A seller without immovable property needs a member state among its Residence Country Codes.",
    "E5007": "The file failed validation against the telematic schema.",
    "E9020": "The nil report contains one or more ReportableSeller elements.",
    "S0001": "The file failed validation against the DAC7 schema.",
    "W0010": "Warning: the VAT number fails its formal check.",
    "W0020": "Warning: a non-Italian TIN fails its formal check.",
    "W0030": "Warning: the Contact must contain a valid e-mail address.",
}

#: The DGFiP's second-level rules, as the FR profile names them (``FR-<rule>``).
FR_CODES: dict[str, str] = {
    "FR-2": "A quarterly consideration is negative, or the seller's total consideration is zero.",
    "FR-12": "The individual seller has no TIN and no birthplace; the birthplace is then mandatory.",
    "FR-33": "The seller has no relevant activity; every seller needs at least one.",
    "FR-34-1": "An entity seller has NOTIN (unknown TIN) alongside proper TINs.",
    "FR-34-2": "An individual seller has NOTIN (unknown TIN) alongside proper TINs.",
}

#: Where each table comes from, for the page that shows the meanings.
SOURCES: dict[str, str] = {
    "EU": "DG TAXUD DAC7 business rules and file errors (DAC7 module 1.1.0, ErrorCode table)",
    "IT": "Agenzia delle Entrate DAC7 checker, description.properties (codes C, E, S, W)",
    "FR": "DGFiP cahier des charges DPI-DAC7 v1.6, second-level rules 2, 12, 33, 34",
    "CTS": "OECD CRS/CTS status-message family, transport-level file errors (DPI use unconfirmed)",
}


@dataclass(frozen=True, slots=True)
class CodeMeaning:
    code: str
    meaning: str | None  # None: no published table has this code
    source: str | None  # "EU", "IT", "FR", "CTS"

    def text(self) -> str:
        """``40080: If a TIN is provided ...``, or ``code 123: no published meaning``."""
        if self.meaning is None:
            return f"code {self.code}: no published meaning"
        return f"{self.code}: {self.meaning}"


def _eu(code: str) -> str | None:
    from reporting.checks.business import RULES

    rule = RULES.get(code)
    if rule is not None and code.isdigit():
        return rule.description
    return EU_ONLY_ON_RECEIPT.get(code)


def meaning(code: str, authority: str | None = None) -> CodeMeaning:
    """The meaning of an error ``code`` that ``authority`` reported. A French code may come as
    ``FR-12`` or, from the DGFiP, as ``12``; an Italian ``E`` code that mirrors an EU code
    (``E4080``) has the EU code's meaning unless Italy words it differently."""
    code = code.strip()
    if code in FR_CODES:
        return CodeMeaning(code, FR_CODES[code], "FR")
    if authority == "FR" and f"FR-{code}" in FR_CODES:
        return CodeMeaning(code, FR_CODES[f"FR-{code}"], "FR")
    if code in IT_CODES:
        return CodeMeaning(code, IT_CODES[code], "IT")
    if len(code) == 5 and code[0] == "E" and code[1:].isdigit():
        mirrored = _eu(f"{code[1]}0{code[2:]}")  # E4080 -> 40080
        if mirrored:
            return CodeMeaning(code, mirrored, "IT")
    eu = _eu(code)
    if eu:
        return CodeMeaning(code, eu, "EU")
    if code in CTS_FILE_ERRORS:
        return CodeMeaning(code, CTS_FILE_ERRORS[code], "CTS")
    return CodeMeaning(code, None, None)
