"""Identifiers in each country's own shape: TINs, VAT numbers, IBANs and register numbers.

One small function per country and kind, looked up in a table by country code (:data:`TINS`,
:data:`VATS`); :func:`tin`, :func:`vat`, :func:`iban` and :func:`brn` are what the generator
calls. Every function draws from the ``random.Random`` it is given, in a fixed order, so the same
stream gives the same numbers.

Check digits come from python-stdnum: its ``calc_check_digit(s)`` where it has one, else its
``checksum`` (the digit that brings the checksum to zero), else its validator (the digit it
accepts). Four are written here because stdnum has no public function that computes them: the
Belgian national number (``be.nn`` keeps its checksum private), the Finnish HETU check character
(``fi.hetu._calc_checksum`` is private), the Czech and Slovak birth number (``cz.rc`` only
validates a whole number, and its validator reads a birth date, not just the check digit) and the
Hungarian tax number of individuals (stdnum has no module for the adóazonosító jel).

Some numbers have no check digit at all (a German Steuernummer, a Luxembourg matricule, a US SSN
...): they are random digits in the usual layout.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from stdnum import ean, luhn
from stdnum import iban as stdnum_iban
from stdnum.at import uid as at_uid
from stdnum.be import vat as be_vat
from stdnum.bg import egn
from stdnum.bg import vat as bg_vat
from stdnum.ch import uid as ch_uid
from stdnum.cy import vat as cy_vat
from stdnum.cz import dic
from stdnum.dk import cvr
from stdnum.ee import ik, kmkr
from stdnum.es import ccc, cif, dni
from stdnum.fi import alv
from stdnum.fr import nif as fr_nif
from stdnum.fr import siren
from stdnum.gb import utr
from stdnum.gr import vat as gr_vat
from stdnum.hu import anum
from stdnum.ie import vat as ie_vat
from stdnum.iso7064 import mod_11_10
from stdnum.it import codicefiscale
from stdnum.lt import pvm
from stdnum.lu import tva
from stdnum.lv import pvn
from stdnum.mt import vat as mt_vat
from stdnum.nl import bsn
from stdnum.no import fodselsnummer, kontonr, orgnr
from stdnum.pl import nip, pesel
from stdnum.pt import nif as pt_nif
from stdnum.ro import cnp, cui
from stdnum.si import ddv
from stdnum.sk import dph
from stdnum.us import rtn

from dac7_demo.countries import COUNTRIES

Rng = random.Random

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ALNUM = _UPPER + "0123456789"

# ----------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------


def _compile(pattern: str) -> tuple[tuple[str, object], ...]:
    """A pattern as runs: ('#', n) digits, ('@', n) letters, ('?', n) letters/digits, ('', s)."""
    runs: list[list] = []
    for ch in pattern:
        kind = ch if ch in "#@?" else ""
        if runs and runs[-1][0] == kind:
            runs[-1][1] = runs[-1][1] + 1 if kind else runs[-1][1] + ch
        else:
            runs.append([kind, 1 if kind else ch])
    return tuple((k, v) for k, v in runs)


_PATTERNS: dict[str, tuple[tuple[str, object], ...]] = {}


def fill(rng: Rng, pattern: str) -> str:
    """A pattern filled in: ``#`` a digit, ``@`` a capital letter, ``?`` either, anything else
    itself (``"##-###"`` -> ``"04-217"``). Post codes and register numbers use it too."""
    runs = _PATTERNS.get(pattern)
    if runs is None:
        runs = _PATTERNS[pattern] = _compile(pattern)
    out = []
    for kind, v in runs:
        if kind == "#":
            out.append(f"{rng.randrange(10**v):0{v}d}")  # type: ignore[operator]
        elif kind == "@":
            out.append("".join(rng.choices(_UPPER, k=v)))  # type: ignore[arg-type]
        elif kind == "?":
            out.append("".join(rng.choices(_ALNUM, k=v)))  # type: ignore[arg-type]
        else:
            out.append(v)  # type: ignore[arg-type]
    return "".join(out)


def digits(rng: Rng, n: int, first_min: int = 0) -> str:
    """n digits, the first at least ``first_min``."""
    lo = first_min * 10 ** (n - 1)
    return f"{rng.randrange(lo, 10**n):0{n}d}"


def checked(make: Callable[[], str], calc: Callable[[str], str]) -> str:
    """body + check, drawing a new body while the check is not a single character."""
    while True:
        body = make()
        check = calc(body)
        if len(check) == 1:
            return body + check


def _completing(valid: Callable[[str], object]) -> Callable[[str], str]:
    """The check digit as the one digit that makes ``body + digit`` valid ('' when none does,
    so that :func:`checked` draws a new body). ``valid`` is a stdnum validator, or a test of a
    stdnum checksum; each of them accepts at most one last digit for a body."""

    def calc(body: str) -> str:
        return next((d for d in "0123456789" if valid(body + d)), "")

    return calc


def _weighted(body: str, weights: tuple[int, ...]) -> int:
    return sum(w * int(n) for w, n in zip(weights, body, strict=False))


# ----------------------------------------------------------------------------------------------
# TINs: (rng, entity, birth date) -> TIN
# ----------------------------------------------------------------------------------------------


def _tin_de(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # Steuernummer (no check digit in the unified 13-digit form used here)
        return fill(rng, "#############")
    # IdNr: ten digits, one of them twice, then the ISO 7064 MOD 11,10 check
    ten = rng.sample("0123456789", 9)
    ten.insert(rng.randrange(1, 10), rng.choice(ten))
    if ten[0] == "0":
        j = next(i for i, ch in enumerate(ten) if ch != "0")
        ten[0], ten[j] = ten[j], ten[0]
    body = "".join(ten)
    return body + mod_11_10.calc_check_digit(body)


def _tin_hr(rng: Rng, entity: bool, b: dt.date) -> str:  # OIB
    return checked(lambda: digits(rng, 10, 1), mod_11_10.calc_check_digit)


def _tin_es(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # CIF of a sociedad limitada
        body = "B" + digits(rng, 7)
        return body + cif.calc_check_digits(body)[0]
    body = digits(rng, 8)  # DNI
    return body + dni.calc_check_digit(body)


def _tin_pl(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # NIP
        return checked(lambda: digits(rng, 9, 1), _completing(lambda n: nip.checksum(n) == 0))
    month = b.month + (20 if b.year >= 2000 else 0)  # PESEL
    body = f"{b.year % 100:02d}{month:02d}{b.day:02d}" + digits(rng, 4)
    return body + pesel.calc_check_digit(body)


def _tin_nl(rng: Rng, entity: bool, b: dt.date) -> str:  # BSN / RSIN, the 11-test
    return checked(lambda: digits(rng, 8, 1), _completing(lambda n: bsn.checksum(n) == 0))


def _tin_pt(rng: Rng, entity: bool, b: dt.date) -> str:  # NIF
    body = ("5" if entity else str(rng.randint(1, 2))) + digits(rng, 7)
    return body + pt_nif.calc_check_digit(body)


def _tin_fr(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # SIREN
        body = digits(rng, 8, 1)
        return body + luhn.calc_check_digit(body)
    body = str(rng.randint(0, 3)) + digits(rng, 9)  # numéro fiscal
    return body + fr_nif.calc_check_digits(body)


def _tin_it(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # partita IVA: 7 digits, a tax office 001-100, Luhn check
        body = digits(rng, 7, 1) + f"{rng.randint(1, 100):03d}"
        return body + luhn.calc_check_digit(body)
    day = b.day + (40 if rng.random() < 0.5 else 0)  # codice fiscale
    body = fill(rng, "@@@@@@") + f"{b.year % 100:02d}" + "ABCDEHLMPRST"[b.month - 1] + f"{day:02d}" + fill(rng, "@###")
    return body + codicefiscale.calc_check_digit(body)


def _tin_be(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # enterprise number 0xxx.xxx.xxx: the two check digits complete be.vat's checksum
        body = "0" + digits(rng, 7, 2)
        return f"{body}{97 - be_vat.checksum(body + '00'):02d}"
    # national number: 97 minus the number mod 97, with a 2 in front for births from 2000
    # (written here: stdnum.be.nn keeps its checksum private)
    body = b.strftime("%y%m%d") + digits(rng, 3)
    n = int(("2" if b.year >= 2000 else "") + body)
    return f"{body}{97 - n % 97:02d}"


def _tin_ee(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # registrikood: isikukood's check over seven digits
        body = "1" + digits(rng, 6)
        return body + ik.calc_check_digit(body + "0")
    return _isikukood(rng, b)


def _tin_lt(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # juridinio asmens kodas (no check digit in the old nine-digit codes)
        return digits(rng, 9, 1)
    return _isikukood(rng, b)  # asmens kodas: the Estonian scheme


def _isikukood(rng: Rng, b: dt.date) -> str:
    body = str((3 if b.year < 2000 else 5) + rng.randint(0, 1)) + b.strftime("%y%m%d") + digits(rng, 3)
    return body + ik.calc_check_digit(body + "0")


def _tin_fi(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # Y-tunnus
        body = _ytunnus(rng)
        return f"{body[:7]}-{body[7]}"
    # HETU (check character written here: stdnum.fi.hetu keeps its function private)
    ddmmyy = b.strftime("%d%m%y")
    serial = rng.randint(2, 899)
    check = "0123456789ABCDEFHJKLMNPRSTUVWXY"[int(f"{ddmmyy}{serial:03d}") % 31]
    return f"{ddmmyy}{'-' if b.year < 2000 else 'A'}{serial:03d}{check}"


def _ytunnus(rng: Rng) -> str:
    return checked(lambda: digits(rng, 7), _completing(lambda n: alv.checksum(n) == 0))


def _tin_se(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # organisationsnummer
        body = "5" + digits(rng, 1) + str(rng.randint(2, 9)) + digits(rng, 6)
        return f"{body[:6]}-{body[6:]}{luhn.calc_check_digit(body)}"
    yymmdd = b.strftime("%y%m%d")  # personnummer
    body = yymmdd + digits(rng, 3)
    return f"{yymmdd}-{body[6:]}{luhn.calc_check_digit(body)}"


def _tin_dk(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:
        return _cvr(rng)
    # CPR: the first serial digit tells the century (0-3: 1900s, 4 or 9: 1937-2036); no check
    # digit since 2007
    first = str(rng.randint(0, 3)) if b.year < 2000 else rng.choice("49")
    return f"{b.strftime('%d%m%y')}-{first}{digits(rng, 3)}"


def _cvr(rng: Rng) -> str:
    return checked(lambda: digits(rng, 7, 1), _completing(lambda n: cvr.checksum(n) == 0))


def _tin_bg(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # EIK (BULSTAT)
        body = digits(rng, 8, 1)
        return body + bg_vat.calc_check_digit_legal(body)
    month = b.month + (40 if b.year >= 2000 else 0)  # EGN
    body = f"{b.year % 100:02d}{month:02d}{b.day:02d}" + digits(rng, 3)
    return body + egn.calc_check_digit(body)


def _tin_cz_sk(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # IČO
        body = str(rng.randint(1, 8)) + digits(rng, 6)
        return body + dic.calc_check_digit_legal(body)
    # rodné číslo: the ten digits are divisible by 11 (written here: stdnum.cz.rc only validates)
    yymmdd = b.strftime("%y%m%d")
    body = checked(lambda: yymmdd + digits(rng, 3), lambda s: str(-int(s) * 10 % 11))
    return f"{body[:6]}/{body[6:]}"


def _tin_ro(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # CUI
        body = digits(rng, 7, 1)
        return body + cui.calc_check_digit(body)
    sex_century = rng.randint(1, 2) + (4 if b.year >= 2000 else 0)  # CNP
    body = str(sex_century) + b.strftime("%y%m%d") + f"{rng.randint(1, 46):02d}" + digits(rng, 3)
    return body + cnp.calc_check_digit(body)


def _tin_lv(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # reģistrācijas numurs (the check is the VAT number's, see _vat_lv)
        return "4" + digits(rng, 10)
    century = "1" if b.year < 2000 else "2"  # personas kods
    body = checked(lambda: b.strftime("%d%m%y") + century + digits(rng, 3), pvn.calc_check_digit_pers)
    return f"{body[:6]}-{body[6:]}"


def _tin_hu(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:  # adószám: base number, VAT code, county code
        return f"{_anum(rng)}-{rng.randint(1, 5)}-{rng.randint(2, 44):02d}"
    # adóazonosító jel: 8, days since 1867-01-01, a serial, then the weighted sum mod 11
    # (written here: stdnum has no module for it)
    days = (b - dt.date(1867, 1, 1)).days

    def check(s: str) -> str:
        return str(sum((i + 1) * int(n) for i, n in enumerate(s)) % 11)

    return checked(lambda: f"8{days:05d}{digits(rng, 3)}", check)


def _anum(rng: Rng) -> str:
    return checked(lambda: digits(rng, 7, 1), _completing(lambda n: anum.checksum(n) == 0))


def _tin_gr(rng: Rng, entity: bool, b: dt.date) -> str:  # AFM
    body = digits(rng, 8, 1)
    return body + gr_vat.calc_check_digit(body)


def _tin_si(rng: Rng, entity: bool, b: dt.date) -> str:  # davčna številka
    return checked(lambda: digits(rng, 7, 1), ddv.calc_check_digit)


def _tin_ie(rng: Rng, entity: bool, b: dt.date) -> str:  # PPS number
    body = digits(rng, 7)
    return body + ie_vat.calc_check_digit(body)


def _tin_cy(rng: Rng, entity: bool, b: dt.date) -> str:
    body = ("10" if entity else "0" + str(rng.randint(0, 9))) + digits(rng, 6)
    return body + cy_vat.calc_check_digit(body)


def _tin_lu(rng: Rng, entity: bool, b: dt.date) -> str:  # no check digits drawn
    return digits(rng, 8, 1) if entity else b.strftime("%Y%m%d") + digits(rng, 5)


def _tin_mt(rng: Rng, entity: bool, b: dt.date) -> str:  # no check digits drawn
    return digits(rng, 9, 1) if entity else digits(rng, 7) + "M"


def _tin_at(rng: Rng, entity: bool, b: dt.date) -> str:  # Steuernummer, no check digit drawn
    return fill(rng, "##-###/####")


def _tin_us(rng: Rng, entity: bool, b: dt.date) -> str:  # EIN / SSN (no check digits)
    if entity:
        prefix = rng.choice(("12", "20", "27", "45", "46", "47", "81", "82", "83", "84", "85", "86"))
        return f"{prefix}-{digits(rng, 7)}"
    return f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _tin_gb(rng: Rng, entity: bool, b: dt.date) -> str:  # UTR: the check digit comes first
    body = digits(rng, 9)
    return utr.calc_check_digit(body) + body


def _tin_ch(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:
        return "CHE-" + _uid(rng)
    body = "756" + digits(rng, 9)  # AHV number, an EAN-13
    check = ean.calc_check_digit(body)
    return f"{body[:3]}.{body[3:7]}.{body[7:11]}.{body[11:]}{check}"


def _uid(rng: Rng) -> str:
    body = checked(lambda: digits(rng, 8, 1), ch_uid.calc_check_digit)
    return f"{body[:3]}.{body[3:6]}.{body[6:]}"


def _tin_no(rng: Rng, entity: bool, b: dt.date) -> str:
    if entity:
        return _orgnr(rng)

    def check(s: str) -> str:
        c1 = fodselsnummer.calc_check_digit1(s)
        return "" if len(c1) > 1 else c1 + fodselsnummer.calc_check_digit2(s + c1)

    ddmmyy = b.strftime("%d%m%y")
    while True:  # individual numbers 000-499: 1900-1999, 500-999: 2000-2039
        body = ddmmyy + f"{rng.randrange(500) + (500 if b.year >= 2000 else 0):03d}"
        digits2 = check(body)
        if len(digits2) == 2:
            return body + digits2


def _orgnr(rng: Rng) -> str:
    return checked(lambda: digits(rng, 8, 8), _completing(lambda n: orgnr.checksum(n) == 0))


def _tin_ua(rng: Rng, entity: bool, b: dt.date) -> str:  # no check digit drawn
    return digits(rng, 8 if entity else 10, 1)


TinMaker = Callable[[Rng, bool, dt.date], str]

#: The TIN of each issuing country: (rng, entity, birth date) -> TIN.
TINS: dict[str, TinMaker] = {
    "DE": _tin_de,
    "HR": _tin_hr,
    "ES": _tin_es,
    "PL": _tin_pl,
    "NL": _tin_nl,
    "PT": _tin_pt,
    "FR": _tin_fr,
    "IT": _tin_it,
    "BE": _tin_be,
    "EE": _tin_ee,
    "LT": _tin_lt,
    "FI": _tin_fi,
    "SE": _tin_se,
    "DK": _tin_dk,
    "BG": _tin_bg,
    "CZ": _tin_cz_sk,
    "SK": _tin_cz_sk,
    "RO": _tin_ro,
    "LV": _tin_lv,
    "HU": _tin_hu,
    "GR": _tin_gr,
    "SI": _tin_si,
    "IE": _tin_ie,
    "CY": _tin_cy,
    "LU": _tin_lu,
    "MT": _tin_mt,
    "AT": _tin_at,
    "US": _tin_us,
    "GB": _tin_gb,
    "CH": _tin_ch,
    "NO": _tin_no,
    "UA": _tin_ua,
}


def tin(rng: Rng, cc: str, entity: bool, birth: dt.date | None) -> str:
    """A TIN issued by ``cc`` in that country's usual shape (valid check digits where the
    country has them); ten digits for a country without a function here."""
    make = TINS.get(cc)
    if make is None:
        return digits(rng, 10, 1)
    return make(rng, entity, birth or dt.date(1980, 1, 1))


# ----------------------------------------------------------------------------------------------
# VAT numbers: (rng, the seller's TIN or None) -> VAT number with its prefix (GR uses EL)
# ----------------------------------------------------------------------------------------------


def _vat_de(rng: Rng, tin_: str | None) -> str:
    body = digits(rng, 8, 1)
    return "DE" + body + mod_11_10.calc_check_digit(body)


def _vat_at(rng: Rng, tin_: str | None) -> str:
    body = "U" + digits(rng, 7)
    return "AT" + body + at_uid.calc_check_digit(body)


def _vat_fr(rng: Rng, tin_: str | None) -> str:
    number = tin_ if tin_ and len(tin_) == 9 else digits(rng, 8, 1) + "0"
    return "FR" + siren.to_tva(number[:8] + luhn.calc_check_digit(number[:8]))


def _vat_nl(rng: Rng, tin_: str | None) -> str:
    rsin = tin(rng, "NL", True, None)
    return f"NL{rsin}B{rng.randint(1, 3):02d}"


def _vat_from_tin(cc: str) -> Callable[[Rng, str | None], str]:
    """The country prefix and the entity's TIN (a new one when the seller has none)."""
    prefix = "EL" if cc == "GR" else cc

    def make(rng: Rng, tin_: str | None) -> str:
        return prefix + (tin_ if tin_ and tin_.isalnum() else tin(rng, cc, True, None))

    return make


def _vat_es(rng: Rng, tin_: str | None) -> str:
    return "ES" + (tin_ if tin_ and tin_[0] == "B" else tin(rng, "ES", True, None))


def _vat_dk(rng: Rng, tin_: str | None) -> str:
    return "DK" + _cvr(rng)


def _vat_fi(rng: Rng, tin_: str | None) -> str:
    return "FI" + _ytunnus(rng)


def _vat_se(rng: Rng, tin_: str | None) -> str:
    body = "5" + digits(rng, 1) + str(rng.randint(2, 9)) + digits(rng, 6)
    return f"SE{body}{luhn.calc_check_digit(body)}01"


def _vat_lu(rng: Rng, tin_: str | None) -> str:
    body = digits(rng, 6, 1)
    return f"LU{body}{tva.calc_check_digits(body)}"


def _vat_hu(rng: Rng, tin_: str | None) -> str:
    return "HU" + _anum(rng)


def _vat_cz(rng: Rng, tin_: str | None) -> str:
    return "CZ" + tin(rng, "CZ", True, None)


def _vat_sk(rng: Rng, tin_: str | None) -> str:
    make = lambda: digits(rng, 2, 1) + rng.choice("234789") + digits(rng, 6)  # noqa: E731
    return "SK" + checked(make, _completing(lambda n: dph.checksum(n) == 0))


def _vat_ee(rng: Rng, tin_: str | None) -> str:
    return "EE" + checked(lambda: "10" + digits(rng, 6), _completing(lambda n: kmkr.checksum(n) == 0))


def _vat_ie(rng: Rng, tin_: str | None) -> str:
    return "IE" + tin(rng, "IE", True, None)


def _vat_lt(rng: Rng, tin_: str | None) -> str:
    return "LT" + checked(lambda: digits(rng, 7, 1) + "1", pvm.calc_check_digit)


def _vat_lv(rng: Rng, tin_: str | None) -> str:  # legal entities: weighted sum of all 11 digits = 3 (mod 11)
    return "LV" + checked(lambda: "4" + digits(rng, 9), _completing(lambda n: pvn.checksum(n) == 3))


def _vat_mt(rng: Rng, tin_: str | None) -> str:
    # the two check digits weigh 10 and 1: their value is what brings mt.vat's checksum to 0
    body = digits(rng, 6, 1)
    return f"MT{body}{-mt_vat.checksum(body + '00') % 37:02d}"


def _vat_gb(rng: Rng, tin_: str | None) -> str:  # random digits: no check digits drawn
    return "GB" + digits(rng, 9, 1)


def _vat_ch(rng: Rng, tin_: str | None) -> str:
    return f"CHE-{_uid(rng)} MWST"


def _vat_no(rng: Rng, tin_: str | None) -> str:
    return "NO" + _orgnr(rng) + "MVA"


VatMaker = Callable[[Rng, str | None], str]

#: The VAT number of each country that has one here: (rng, the seller's TIN or None) -> VAT number.
VATS: dict[str, VatMaker] = {
    "DE": _vat_de,
    "AT": _vat_at,
    "FR": _vat_fr,
    "NL": _vat_nl,
    **{cc: _vat_from_tin(cc) for cc in ("BE", "BG", "CY", "GR", "HR", "IT", "PL", "PT", "RO", "SI")},
    "ES": _vat_es,
    "DK": _vat_dk,
    "FI": _vat_fi,
    "SE": _vat_se,
    "LU": _vat_lu,
    "HU": _vat_hu,
    "CZ": _vat_cz,
    "SK": _vat_sk,
    "EE": _vat_ee,
    "IE": _vat_ie,
    "LT": _vat_lt,
    "LV": _vat_lv,
    "MT": _vat_mt,
    "GB": _vat_gb,
    "CH": _vat_ch,
    "NO": _vat_no,
}


def vat(rng: Rng, cc: str, tin_: str | None) -> str | None:
    """A VAT identification number with its country prefix (GR uses EL), built on the seller's
    TIN where the country's VAT number is the TIN; None for a country without VAT numbers here."""
    make = VATS.get(cc)
    return make(rng, tin_) if make else None


# ----------------------------------------------------------------------------------------------
# Accounts and register numbers
# ----------------------------------------------------------------------------------------------


def iban(rng: Rng, cc: str) -> str:
    """An IBAN (valid MOD 97 check and, for BE/ES/NO, national check digits); for a country
    without IBAN (US), an ABA routing number and an account number."""
    country = COUNTRIES[cc]
    if not country.iban:
        return f"{checked(lambda: digits(rng, 8), rtn.calc_check_digit)} {digits(rng, 10, 1)}"
    bban = fill(rng, country.iban)
    if cc == "BE":  # bank code, account, then the account mod 97 (97 for 0)
        body = f"{rng.randrange(100):03d}" + bban[3:10]
        bban = f"{body}{int(body) % 97 or 97:02d}"
    elif cc == "ES":
        bban = bban[:8] + "00" + bban[10:]
        bban = bban[:8] + ccc.calc_check_digits(bban) + bban[10:]
    elif cc == "NO":
        bban = checked(lambda: digits(rng, 10, 1), _completing(kontonr.is_valid))
    return cc + stdnum_iban.calc_check_digits(cc + "00" + bban) + bban


#: Business register numbers per country (the rest: ten digits).
_BRN: dict[str, str] = {
    "DE": "HRB ######",
    "AT": "FN ######@",
    "PL": "0000######",
    "NL": "########",
    "IT": "@@-#######",
    "ES": "@-######",
    "GB": "########",
    "IE": "######",
    "CZ": "########",
    "SK": "########",
    "LU": "B######",
    "CY": "HE######",
    "MT": "C #####",
    "US": "########",
    "CH": "CH-###.#.###.###-#",
}
#: Countries whose register number is the entity's TIN.
_BRN_IS_TIN = ("FR", "BE", "PT", "HR", "SI", "EE", "LT", "BG", "FI", "NO")


def brn(rng: Rng, cc: str, tin_: str | None) -> str:
    """A business registration number in the country's usual shape."""
    if cc in _BRN_IS_TIN and tin_:
        return tin_  # the same register number
    return fill(rng, _BRN.get(cc, "##########"))
