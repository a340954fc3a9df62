"""Format checks of sellers' identifiers with python-stdnum, and their masked form.

TINs are checked against their issuing country's formats and check digits, where python-stdnum
knows that country's personal or company tax numbers (the tables below: which stdnum modules
accept a TIN of an individual, which one of an entity); a TIN of a country it does not know is
*unchecked*, never valid. VAT ids are checked as EU VAT numbers, account identifiers that look
like IBANs as IBANs.

The due-diligence report (:mod:`reporting.reports.due_diligence`) and the ``stdnum`` verification
adapter (:mod:`reporting.verification`) both answer from these functions, so that the report and
the recorded verification of an identifier never disagree. A value is never rewritten here, and
never appears in a message: :func:`mask` is the only form of it that leaves this module.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from stdnum.eu import vat as eu_vat
from stdnum.util import get_cc_module

from reporting import ibancheck
from reporting.countries import COUNTRY_NAMES, WITH_ARTICLE

#: python-stdnum modules that validate the tax numbers of individuals, per country (a TIN is
#: well-formed when one of them accepts it). Germany: the Steuer-IdNr with its check digit.
PERSONAL_TIN_MODULES: dict[str, tuple[str, ...]] = {
    "AT": ("tin",), "BE": ("nn", "bis"), "BG": ("egn", "pnf"), "CZ": ("rc",), "DE": ("idnr",), "DK": ("cpr",),
    "EE": ("ik",), "ES": ("nif",), "FI": ("hetu",), "FR": ("nif", "nir"), "GR": ("amka", "vat"), "HR": ("oib",),
    "IE": ("pps",), "IT": ("codicefiscale",), "LT": ("asmens",), "LV": ("pvn",), "MT": ("vat",), "NL": ("bsn",),
    "PL": ("pesel", "nip"), "PT": ("nif",), "RO": ("cnp",), "SE": ("personnummer",), "SI": ("emso", "ddv"),
    "SK": ("rc",), "GB": ("utr", "nino"), "NO": ("fodselsnummer",), "CH": ("ssn",), "US": ("ssn", "itin"),
}  # fmt: skip
#: ... and of entities (Germany: the Steuernummer, which has no check digit, or the VAT number).
COMPANY_TIN_MODULES: dict[str, tuple[str, ...]] = {
    "AT": ("tin", "uid"), "BE": ("vat",), "BG": ("vat",), "CY": ("vat",), "CZ": ("dic",), "DE": ("stnr", "vat"),
    "DK": ("cvr",), "EE": ("registrikood",), "ES": ("nif",), "FI": ("ytunnus",), "FR": ("siren", "nif"),
    "GR": ("vat",), "HR": ("oib",), "HU": ("anum",), "IE": ("vat",), "IT": ("iva", "codicefiscale"),
    "LT": ("pvm",), "LU": ("tva",), "LV": ("pvn",), "MT": ("vat",), "NL": ("btw",), "PL": ("nip", "regon"),
    "PT": ("nif",), "RO": ("cui",), "SE": ("orgnr",), "SI": ("ddv",), "SK": ("dph",), "GB": ("utr",),
    "NO": ("orgnr",), "CH": ("uid",), "US": ("ein",),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class IdentifierCheck:
    kind: str  # tin | vat | iban
    country: str | None
    status: str  # valid | malformed | unchecked
    detail: str


#: What every masked identifier starts with, whatever the length of the value.
MASK = "***"


def mask(value: str | None, keep: int = 3) -> str:
    """``***123``: :data:`MASK` and the last ``keep`` characters of an identifier (its spaces left
    out), whatever the length of the value; "" for none. A value of fewer than ``2 * keep``
    characters shows as ``***`` alone, since its last characters would be most of it. The masked
    form gives away neither the length of the value nor, where the length is the format, its
    kind, and fits a column of ``keep + 3`` characters for any value."""
    if not value:
        return ""
    compact = "".join(value.split())
    return MASK + compact[-keep:] if len(compact) >= 2 * keep else MASK


@functools.cache
def _tin_modules(country: str, entity: bool) -> tuple[Any, ...]:
    """The stdnum modules that check a country's tax numbers of individuals or of entities, looked
    up once per country (stdnum's lookup imports by name on every call; a run checks ~10,000 TINs)."""
    table = COMPANY_TIN_MODULES if entity else PERSONAL_TIN_MODULES
    return tuple(m for m in (get_cc_module(country.lower(), n) for n in table.get(country, ())) if m)


def country_name(code: str | None) -> str:
    """``Cyprus (CY)``; a code without a name as it is; ``an unnamed country`` for none."""
    if not code:
        return "an unnamed country"
    name = COUNTRY_NAMES.get(code.upper())
    if name and code.upper() in WITH_ARTICLE:
        name = f"the {name}"
    return f"{name} ({code})" if name else code


def check_tin(tin: str, country: str, seller_type: str = "individual") -> IdentifierCheck:
    modules = _tin_modules(country, seller_type == "entity")
    if not modules:
        return IdentifierCheck(
            "tin",
            country,
            "unchecked",
            f"no automatic format check exists for tax numbers of {country_name(country)}; check it by hand",
        )
    for module in modules:
        if module.is_valid(tin):
            return IdentifierCheck("tin", country, "valid", module.__name__.removeprefix("stdnum."))
    return IdentifierCheck(
        "tin",
        country,
        "malformed",
        f"not a valid tax number of {country_name(country)}: its format or check digits are wrong",
    )


def check_vat(value: str) -> IdentifierCheck:
    if eu_vat.is_valid(value):
        return IdentifierCheck("vat", None, "valid", "stdnum.eu.vat")
    return IdentifierCheck("vat", None, "malformed", "not a valid EU VAT number: its format or check digits are wrong")


def check_account(identifier: str) -> IdentifierCheck | None:
    compact = identifier.replace(" ", "").upper()
    if len(compact) < 5 or not (compact[:2].isalpha() and compact[2:4].isdigit()):
        return None  # not an IBAN: another account number, not checked
    if ibancheck.is_valid(compact):  # exactly stdnum's iban.is_valid, faster
        return IdentifierCheck("iban", compact[:2], "valid", "stdnum.iban")
    return IdentifierCheck("iban", compact[:2], "malformed", "not a valid IBAN: its format or check digits are wrong")
