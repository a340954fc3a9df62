"""Golden files per authority profile and message kind, with pinned ids and timestamp, compared
canonically (C14N 2.0). Regenerate only with ``pytest tests/golden --regenerate-golden`` and
review the diff: a changed golden file is a changed filing."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from builders import Marketplace, write_config
from lxml import etree

from reporting.authorities import EU_GENERIC
from reporting.checks.schema import schema_for
from reporting.pipeline import run

GOLDEN = Path(__file__).parent
RUN_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
TIMESTAMP = datetime(2026, 1, 15, 6, 0, 0)


def marketplace() -> Marketplace:
    """One of each: an individual paid in PLN with a second TIN, an entity with a permanent
    establishment, an IBAN and two listings at one address, a seller without TIN (birthplace),
    services and transport rentals, a partial and a full refund."""
    m = Marketplace()
    m.rate("PLN", "2025-12-31", "4.2655")
    m.seller(
        "IND1",
        country="PL",
        tin="85010112345",
        first_name="Zofia",
        last_name="Nowak",
        birth_city="Krakow",
        birth_country="PL",
    )
    m.tin("IND1", "39001010000", "LT")
    m.account("IND1", "PL61109010140000071219812874")
    ids = m.sales("IND1", 31, 120_00, currency="PLN", fee_minor=12_00, start="2025-02-03 09:00:00")
    m.refund(ids[0], "2025-02-10 09:00:00", 20_00, fee_minor=2_00)
    m.refund(ids[1], "2025-02-10 09:00:00", 120_00, fee_minor=12_00)
    m.seller(
        "ENT1",
        seller_type="entity",
        country="DE",
        tin="DE123456789",
        legal_name="Ferienwohnungen GmbH",
        business_registration_number="HRB 12345",
        vat_id="DE123456789",
    )
    m.pe("ENT1", "AT")
    m.account("ENT1", "DE89370400440532013000", "Ferienwohnungen GmbH Treuhand")
    for listing in ("L1", "L2"):
        m.listing(
            listing,
            "ENT1",
            country="AT",
            address_street="Getreidegasse",
            address_building="9",
            address_post_code="5020",
            address_city="Salzburg",
            land_registration_number=f"EZ-{listing}",
        )
    m.tx(
        "ENT1",
        "2025-07-01 12:00:00",
        850_00,
        activity="immovable_property",
        listing_id="L1",
        fee_minor=85_00,
        tax_minor=17_00,
        rented_days=3,
    )
    m.tx(
        "ENT1",
        "2025-08-01 12:00:00",
        1250_50,
        activity="immovable_property",
        listing_id="L2",
        fee_minor=125_05,
        rented_days=4,
    )
    m.tx("ENT1", "2025-03-31 23:30:00", 99_99, activity="transportation_rental", fee_minor=10_00)
    m.seller(
        "NOTIN",
        country="LT",
        tin=None,
        first_name="Jonas",
        last_name="Jonaitis",
        birth_city="Kaunas",
        birth_country="LT",
    )
    m.sales("NOTIN", 2, 1500_00, activity="personal_services", fee_minor=150_00)
    return m


@pytest.mark.parametrize("environment", ["test", "prod"])
def test_eu_initial_message(tmp_path: Path, environment: str, request: pytest.FixtureRequest) -> None:
    url = marketplace().write(f"sqlite:///{tmp_path}/source.db")
    manifest = run(
        config_path=write_config(tmp_path / "dac7.toml", routing="nexus", environment=environment),
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
        run_id=RUN_ID,
        timestamp=TIMESTAMP,
    ).manifest
    [f] = manifest["files"]
    produced = tmp_path / "out" / f["file"]
    golden = GOLDEN / "eu" / f"initial-{environment}.xml"
    if request.config.getoption("--regenerate-golden"):
        golden.write_bytes(produced.read_bytes())
    assert golden.is_file(), f"{golden} is missing: run pytest tests/golden --regenerate-golden"
    assert canonical(produced) == canonical(golden)
    schema = schema_for(EU_GENERIC.schema_resource)
    assert schema.validate(etree.parse(str(golden))), schema.error_log


def canonical(path: Path) -> str:
    return etree.canonicalize(from_file=str(path), strip_text=True)


def filing_in(path: Path, state: str, identifiers: str, **kw: str) -> Path:
    """The demo operator filing in ``state`` (``nexus_country``), with its filing identifiers."""
    return write_config(path, filing_state=state, nexus="RPONEX4", extra=identifiers, **kw)


@pytest.mark.parametrize("environment", ["test", "prod"])
def test_de_initial_message(tmp_path: Path, environment: str, request: pytest.FixtureRequest) -> None:
    url = marketplace().write(f"sqlite:///{tmp_path}/source.db")
    cfg = filing_in(
        tmp_path / "dac7.toml", "DE", '\n[authorities.DE]\nbzst_id = "BZST0012345678"\n', environment=environment
    )
    manifest = run(
        config_path=cfg,
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
        run_id=RUN_ID,
        timestamp=TIMESTAMP,
    ).manifest
    [f] = manifest["files"]  # the filing state alone, with every seller under the German reading
    assert (f["authority"], f["sellers"]) == ("DE", 3)
    produced = tmp_path / "out" / f["file"]
    golden = GOLDEN / "de" / f"initial-{environment}.xml"
    if request.config.getoption("--regenerate-golden"):
        golden.write_bytes(produced.read_bytes())
    assert golden.is_file(), f"{golden} is missing: run pytest tests/golden --regenerate-golden"
    assert canonical(produced) == canonical(golden)


@pytest.mark.parametrize("authority", ["IT", "HU"])
def test_national_initial_messages(tmp_path: Path, authority: str, request: pytest.FixtureRequest) -> None:
    m = marketplace()
    m.seller(
        "IT1",
        country="IT",
        tin="RSSMRA80A01H501U",
        first_name="Mario",
        last_name="Rossi",
        birth_city="Roma",
        birth_country="IT",
    )
    m.sales("IT1", 35, 80_00, fee_minor=8_00, start="2025-10-01 09:00:00")
    m.seller(
        "HU1",
        country="HU",
        tin="8123456789",
        first_name="Anna",
        last_name="Kovacs",
        birth_city="Budapest",
        birth_country="HU",
    )
    m.sales("HU1", 2, 1200_00, activity="transportation_rental", start="2025-04-01 09:00:00")
    # NAV wants the address of a permanent establishment (the HU profile quarantines without it)
    m.rows["seller_permanent_establishments"][-1].update(
        address_street="Getreidegasse", address_building="1", address_post_code="5020", address_city="Salzburg"
    )
    url = m.write(f"sqlite:///{tmp_path}/source.db")
    identifiers = {
        "IT": '\n[authorities.IT]\ncodice_fiscale = "12345670017"\n',
        "HU": '\n[authorities.HU]\ntax_number = "12345678-2-42"\n',
    }
    cfg = filing_in(tmp_path / "dac7.toml", authority, identifiers[authority], environment="prod")
    manifest = run(
        config_path=cfg,
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
        run_id=RUN_ID,
        timestamp=TIMESTAMP,
    ).manifest
    [f] = manifest["files"]
    assert (f["authority"], f["sellers"]) == (authority, 5)
    produced = tmp_path / "out" / f["file"]
    golden = GOLDEN / authority.lower() / "initial-prod.xml"
    if request.config.getoption("--regenerate-golden"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_bytes(produced.read_bytes())
    assert golden.is_file(), f"{golden} is missing: run pytest tests/golden --regenerate-golden"
    assert canonical(produced) == canonical(golden)
