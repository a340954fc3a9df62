"""The demo's identifiers pass python-stdnum's validators, country by country, and the runtime
package imports without the demo package."""

from __future__ import annotations

import datetime as dt
import importlib
import random
import subprocess
import sys

import pytest
from stdnum import iban as stdnum_iban
from stdnum.us import rtn

from dac7_demo import identifiers
from dac7_demo.countries import COUNTRIES
from reporting.countries import EU_MEMBER_STATES

DRAWS = 400

#: The stdnum validator of each TIN the generator draws, per (issuing country, seller type).
TIN_VALIDATORS = {
    ("AT", "individual"): None,  # Steuernummer drawn without its check digit
    ("AT", "entity"): None,
    ("BE", "individual"): "be.nn",
    ("BE", "entity"): "be.vat",
    ("BG", "individual"): "bg.egn",
    ("BG", "entity"): "bg.vat",
    ("CH", "individual"): "ch.ssn",
    ("CH", "entity"): "ch.uid",
    ("CY", "individual"): "cy.vat",
    ("CY", "entity"): "cy.vat",
    ("CZ", "individual"): "cz.rc",
    ("CZ", "entity"): "cz.dic",
    ("DE", "individual"): "de.idnr",
    ("DE", "entity"): None,  # unified 13-digit Steuernummer, random digits
    ("DK", "individual"): "dk.cpr",
    ("DK", "entity"): "dk.cvr",
    ("EE", "individual"): "ee.ik",
    ("EE", "entity"): "ee.registrikood",
    ("ES", "individual"): "es.dni",
    ("ES", "entity"): "es.cif",
    ("FI", "individual"): "fi.hetu",
    ("FI", "entity"): "fi.ytunnus",
    ("FR", "individual"): "fr.nif",
    ("FR", "entity"): "fr.siren",
    ("GB", "individual"): "gb.utr",
    ("GB", "entity"): "gb.utr",
    ("GR", "individual"): "gr.vat",
    ("GR", "entity"): "gr.vat",
    ("HR", "individual"): "hr.oib",
    ("HR", "entity"): "hr.oib",
    ("HU", "individual"): None,  # adóazonosító jel: stdnum has no module (checked below)
    ("HU", "entity"): None,  # adószám: its first eight digits are checked below
    ("IE", "individual"): "ie.pps",
    ("IE", "entity"): "ie.pps",
    ("IT", "individual"): "it.codicefiscale",
    ("IT", "entity"): "it.iva",
    ("LT", "individual"): "lt.asmens",
    ("LT", "entity"): None,  # nine-digit legal entity code, no check digit
    ("LU", "individual"): None,  # matricule drawn without its check digits
    ("LU", "entity"): None,
    ("LV", "individual"): "lv.pvn",
    ("LV", "entity"): None,  # registration number, random digits after the 4
    ("MT", "individual"): None,  # no check digit
    ("MT", "entity"): None,
    ("NL", "individual"): "nl.bsn",
    ("NL", "entity"): "nl.bsn",
    ("NO", "individual"): "no.fodselsnummer",
    ("NO", "entity"): "no.orgnr",
    ("PL", "individual"): "pl.pesel",
    ("PL", "entity"): "pl.nip",
    ("PT", "individual"): "pt.nif",
    ("PT", "entity"): "pt.nif",
    ("RO", "individual"): "ro.cnp",
    ("RO", "entity"): "ro.cui",
    ("SE", "individual"): "se.personnummer",
    ("SE", "entity"): "se.orgnr",
    ("SI", "individual"): "si.ddv",
    ("SI", "entity"): "si.ddv",
    ("SK", "individual"): "sk.rc",
    ("SK", "entity"): "cz.dic",  # IČO, the same scheme in both countries
    ("UA", "individual"): None,  # no check digit
    ("UA", "entity"): None,
    ("US", "individual"): "us.ssn",
    ("US", "entity"): "us.ein",
}


def births(rng: random.Random) -> list[dt.date]:
    """Birth dates as the generator draws them: 1940-2005."""
    return [dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(66 * 365)) for _ in range(DRAWS)]


def test_every_country_with_a_tin_is_declared() -> None:
    assert {cc for cc, _ in TIN_VALIDATORS} == set(identifiers.TINS)
    assert set(EU_MEMBER_STATES) <= set(identifiers.TINS)
    residences = {c.code for c in COUNTRIES.values() if c.weight}
    assert residences <= set(identifiers.TINS)


@pytest.mark.parametrize(("cc", "seller_type"), sorted(TIN_VALIDATORS))
def test_tins_pass_stdnum(cc: str, seller_type: str) -> None:
    name = TIN_VALIDATORS[(cc, seller_type)]
    rng = random.Random(f"{cc}/{seller_type}")
    tins = [identifiers.tin(rng, cc, seller_type == "entity", b) for b in births(rng)]
    assert len(set(tins)) > DRAWS * 0.9  # drawn, not constant
    if name is None:
        return
    validator = importlib.import_module(f"stdnum.{name}")
    assert [t for t in tins if not validator.is_valid(t)] == []


def test_hungarian_tax_numbers() -> None:
    """No stdnum module for the individuals' number: its rule (8, days since 1867-01-01, serial,
    then the digits weighted 1..9 mod 11) is checked here; the entities' base number by stdnum."""
    from stdnum.hu import anum

    rng = random.Random("HU")
    for b in births(rng):
        number = identifiers.tin(rng, "HU", False, b)
        assert number[0] == "8" and int(number[1:6]) == (b - dt.date(1867, 1, 1)).days
        assert sum((i + 1) * int(n) for i, n in enumerate(number[:9])) % 11 == int(number[9])
        base = identifiers.tin(rng, "HU", True, None).split("-")[0]
        assert anum.is_valid(base)


@pytest.mark.parametrize("cc", sorted(identifiers.VATS))
def test_vat_numbers_pass_stdnum(cc: str) -> None:
    rng = random.Random(f"vat/{cc}")
    numbers = []
    for _ in range(DRAWS):
        numbers.append(identifiers.vat(rng, cc, None))
        numbers.append(identifiers.vat(rng, cc, identifiers.tin(rng, cc, True, None)))
    if cc in EU_MEMBER_STATES:
        from stdnum.eu import vat as validator
    elif cc == "CH":
        from stdnum.ch import vat as validator
    elif cc == "NO":
        from stdnum.no import mva as validator
    else:
        assert cc == "GB"  # random digits after GB: no check digits drawn
        return
    assert [n for n in numbers if not validator.is_valid(n)] == []


@pytest.mark.parametrize("cc", sorted(c.code for c in COUNTRIES.values() if c.weight))
def test_accounts_pass_stdnum(cc: str) -> None:
    rng = random.Random(f"iban/{cc}")
    if not COUNTRIES[cc].iban:  # the US: an ABA routing number and an account number
        routing = [identifiers.iban(rng, cc).split()[0] for _ in range(DRAWS)]
        assert [n for n in routing if not rtn.is_valid(n)] == []
        return
    numbers = [identifiers.iban(rng, cc) for _ in range(DRAWS)]
    assert [n for n in numbers if not stdnum_iban.is_valid(n)] == []  # with the national checks


def test_reporting_imports_without_the_demo_package() -> None:
    code = (
        "import sys\n"
        "import reporting.pipeline, reporting.cli\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'dac7_demo'], 'dac7_demo imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_demo_commands_say_when_the_demo_package_is_missing() -> None:
    code = (
        "import sys\n"
        "class Missing:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'dac7_demo':\n"
        "            raise ModuleNotFoundError(name, name=name)\n"
        "sys.meta_path.insert(0, Missing())\n"
        "from reporting.cli import main\n"
        "sys.exit(main(['demo-data', '--db', 'sqlite://', '--sellers', '1', '--seed', '1']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert "dac7_demo package) is not installed" in done.stderr and "Traceback" not in done.stderr
