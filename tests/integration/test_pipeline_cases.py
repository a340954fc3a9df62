"""Hand-computed cases through the whole pipeline (extract -> publish) on a real SQLite file."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from builders import Marketplace, write_config
from lxml import etree

from reporting.cli import main
from reporting.errors import DataError
from reporting.pipeline import run

NS = {"dpi": "urn:oecd:ties:dpi:v1", "stf": "urn:oecd:ties:dpistf:v1"}
RUN_ID = "6f1c2a4e-8d1b-4c7e-9a51-0c2f3d4e5a6b"


def pipeline(tmp_path: Path, m: Marketplace, *, as_of: str = "2026-01-31", **cfg: Any) -> dict[str, Any]:
    url = m.write(f"sqlite:///{tmp_path}/source.db")

    result = run(
        config_path=write_config(tmp_path / "dac7.toml", **cfg),
        source_url=url,
        year=2025,
        as_of=date.fromisoformat(as_of),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "staging",
        run_id=RUN_ID,
    )
    return result.manifest


def seller_xml(tmp_path: Path, manifest: dict[str, Any], authority: str) -> etree._Element:
    [f] = [f for f in manifest["files"] if f["authority"] == authority]
    return etree.parse(str(tmp_path / "out" / f["file"])).getroot()


def quarters(root: etree._Element, path: str) -> list[int]:
    return [int(e.text) for e in root.findall(path, NS)]


def test_quarter_in_configured_time_zone(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("S1")
    m.sales("S1", 30, 10_00)  # 30 sales in May: reportable, EUR 300 in Q2
    m.tx("S1", "2025-03-31 23:30:00", 7_00)  # 02:30 on 1 April in Vilnius: Q2
    m.tx("S1", "2025-03-31 20:59:00", 5_00)  # 23:59 on 31 March in Vilnius: Q1
    m.tx("S1", "2025-12-31 22:30:00", 99_00)  # 00:30 on 1 January 2026 in Vilnius: not in 2025
    m.tx("S1", "2024-12-31 22:30:00", 3_00)  # 00:30 on 1 January 2025 in Vilnius: Q1 of 2025
    manifest = pipeline(tmp_path, m)
    root = seller_xml(tmp_path, manifest, "LT")
    goods = ".//dpi:ReportableSeller//dpi:SaleOfGoods"
    # Q1: 5.00 + 3.00 = 8; Q2: 300.00 + 7.00 = 307
    assert quarters(root, f"{goods}/dpi:Consideration/*") == [8, 307, 0, 0]
    assert quarters(root, f"{goods}/dpi:NumberOfActivities/*") == [2, 31, 0, 0]
    assert manifest["summary"]["transactions_read"] == 33


#: (paid_at in UTC, its local time in Europe/Vilnius, the quarter of 2025 it belongs to, or None)
BOUNDARIES = [
    ("2024-12-31 21:59:59", "23:59:59 on 31 December 2024 (EET)", None),
    ("2024-12-31 22:00:00", "00:00:00 on 1 January 2025: the first instant of the year", 1),
    ("2025-03-31 20:59:59.999999", "the last microsecond of 31 March (EEST)", 1),
    ("2025-03-31 21:00:00", "00:00:00 on 1 April", 2),
    ("2025-06-30 20:59:59", "23:59:59 on 30 June", 2),
    ("2025-06-30 21:00:00", "00:00:00 on 1 July", 3),
    ("2025-09-30 20:59:59", "23:59:59 on 30 September", 3),
    ("2025-09-30 21:00:00", "00:00:00 on 1 October", 4),
    ("2025-12-31 21:59:59", "23:59:59 on 31 December 2025 (EET): the last second of the year", 4),
    ("2025-12-31 22:00:00", "00:00:00 on 1 January 2026: the next year", None),
]


def test_a_payment_at_local_midnight_belongs_to_the_quarter_it_starts(tmp_path: Path) -> None:
    """Through extract and aggregate (not a helper): each boundary seller has 30 sales of EUR 10.00
    in May and one payment of EUR 7.00 at a boundary, which must land in the quarter (and year) of
    its local time."""
    m = Marketplace()
    for i, (paid_at, _, _) in enumerate(BOUNDARIES):
        m.seller(f"B{i}")
        m.sales(f"B{i}", 30, 10_00)
        m.tx(f"B{i}", paid_at, 7_00)
    manifest = pipeline(tmp_path, m)
    assert manifest["summary"]["transactions_read"] == 30 * len(BOUNDARIES) + sum(
        q is not None for _, _, q in BOUNDARIES
    )
    root = seller_xml(tmp_path, manifest, "LT")
    assert len(root.findall(".//dpi:ReportableSeller", NS)) == len(BOUNDARIES)
    figures = json_figures(tmp_path)
    for i, (paid_at, local, quarter) in enumerate(BOUNDARIES):
        cons = figures[f"B{i}"]
        expected = [0, 300, 0, 0]
        if quarter is not None:
            expected[quarter - 1] += 7
        assert cons == expected, f"{paid_at} UTC ({local})"


def json_figures(tmp_path: Path) -> dict[str, list[int]]:
    """The reported consideration per quarter of each seller's sales of goods, from the published
    figures report (one row per quarter and currency, the reported figure on the first row)."""
    import csv

    out: dict[str, list[int]] = {}
    with (tmp_path / "out" / "reports" / "figures.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["activity"] == "sale_of_goods" and row["reported_consideration"]:
                out.setdefault(row["seller_id"], [0, 0, 0, 0])[int(row["quarter"]) - 1] = int(
                    row["reported_consideration"]
                )
    return out


@pytest.mark.parametrize(
    ("refunded_at", "applied"),
    [
        ("2026-01-31 21:59:59", True),  # 23:59:59 local (EET) on the as-of day: the last second of the cut-off
        ("2026-01-31 21:59:59.999999", True),
        ("2026-01-31 22:00:00", False),  # 00:00:00 on 1 February: the first second after it
        ("2025-12-31 22:00:00", True),  # after the year, before the as-of date: corrects the year (HMRC)
    ],
)
def test_a_refund_at_the_edges_of_the_as_of_day(tmp_path: Path, refunded_at: str, applied: bool) -> None:
    # one sale of EUR 2,100.00 refunded by EUR 100.00: applied, the seller is at EUR 2,000.00 (de minimis)
    m = Marketplace()
    m.seller("S1")
    [t1] = m.sales("S1", 1, 2100_00)
    m.refund(t1, refunded_at, 100_00)
    manifest = pipeline(tmp_path, m, as_of="2026-01-31")
    if applied:
        assert manifest["summary"]["decisions"] == {"excluded:de_minimis": 1}
    else:
        assert manifest["summary"]["reportable"] == 1
        assert quarters(seller_xml(tmp_path, manifest, "LT"), ".//dpi:SaleOfGoods/dpi:Consideration/*") == [
            0,
            2100,
            0,
            0,
        ]


def test_a_fully_refunded_rental_counts_neither_its_days_nor_itself(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("S1")
    m.listing("L1", "S1")
    stays = [
        m.tx("S1", "2025-07-01 10:00:00", 300_00, activity="immovable_property", listing_id="L1", rented_days=3),
        m.tx("S1", "2025-07-10 10:00:00", 200_00, activity="immovable_property", listing_id="L1", rented_days=2),
        m.tx("S1", "2025-07-20 10:00:00", 400_00, activity="immovable_property", listing_id="L1", rented_days=4),
    ]
    m.refund(stays[0], "2025-07-02 10:00:00", 300_00)  # cancelled in full: no stay, no rental
    m.refund(stays[2], "2025-07-21 10:00:00", 100_00)  # partly refunded: still a rental of 4 days
    # a seller whose only rental was cancelled in full has nothing to report (EU rule 30040)
    m.seller("S2")
    m.listing("L2", "S2")
    [gone] = [m.tx("S2", "2025-08-01 10:00:00", 500_00, activity="immovable_property", listing_id="L2", rented_days=5)]
    m.refund(gone, "2025-08-02 10:00:00", 500_00)
    manifest = pipeline(tmp_path, m)
    assert manifest["summary"]["decisions"] == {"reported": 1, "not_reportable:no_activity": 1}
    root = seller_xml(tmp_path, manifest, "LT")
    listing = root.find(".//dpi:PropertyListing", NS)
    assert quarters(listing, "dpi:NumberOfActivities/*") == [0, 0, 2, 0]
    assert quarters(listing, "dpi:Consideration/*") == [0, 0, 500, 0]  # 200.00 + 400.00 - 100.00
    assert listing.findtext("dpi:RentedDays", namespaces=NS) == "6"  # 2 + 4 days; the cancelled 3 are not


def test_refund_one_day_after_the_as_of_date_is_not_applied(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("S1")
    [t1] = m.sales("S1", 1, 2100_00)  # one sale of EUR 2,100.00: reportable
    m.refund(t1, "2026-02-01 10:00:00", 200_00)  # refunded the day after the as-of date
    manifest = pipeline(tmp_path, m, as_of="2026-01-31")
    assert manifest["summary"]["reportable"] == 1
    root = seller_xml(tmp_path, manifest, "LT")
    assert quarters(root, ".//dpi:SaleOfGoods/dpi:Consideration/*") == [0, 2100, 0, 0]


def test_refund_on_the_as_of_date_brings_the_seller_under_the_threshold(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("S1")
    [t1] = m.sales("S1", 1, 2100_00)
    m.refund(t1, "2026-01-31 21:30:00", 100_00)  # 23:30 local on the as-of day: applied -> EUR 2,000.00
    manifest = pipeline(tmp_path, m, as_of="2026-01-31")
    assert manifest["summary"]["decisions"] == {"excluded:de_minimis": 1}
    assert manifest["files"] == []


def test_full_refund_removes_the_activity_from_the_count(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("S1")
    ids = m.sales("S1", 30, 10_00, fee_minor=1_00)
    m.refund(ids[0], "2025-06-01 10:00:00", 10_00, fee_minor=1_00)  # full: 29 sales left
    m.refund(ids[1], "2025-06-01 10:00:00", 4_00)  # partial: still counted
    manifest = pipeline(tmp_path, m)
    assert manifest["summary"]["decisions"] == {"excluded:de_minimis": 1}  # 29 sales, EUR 286.00


def test_nothing_to_file_exits_zero_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = Marketplace()
    m.seller("S1")
    m.sales("S1", 3, 10_00)
    url = m.write(f"sqlite:///{tmp_path}/source.db")
    code = main(
        [
            "run",
            "--config",
            str(write_config(tmp_path / "dac7.toml")),
            "--source",
            url,
            "--year",
            "2025",
            "--as-of",
            "2026-01-31",
            "--out",
            str(tmp_path / "out"),
            "--staging",
            str(tmp_path / "st"),
        ]
    )
    assert code == 0
    assert "nothing to file" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["files"] == []


@pytest.mark.parametrize(
    ("mutate", "rule", "table", "key"),
    [
        (
            lambda m: m.tx("S1", "2025-05-02 10:00:00", 10_00, currency="XYZ", transaction_id="TBAD"),
            "currency.unknown",
            "transactions",
            "TBAD",
        ),
        (
            lambda m: m.tx("S1", "2025-05-02 10:00:00", 10_00, currency="SEK", transaction_id="TSEK"),
            "fx.missing_rate",
            "fx_rates",
            "SEK on or before 2025-12-31",
        ),
        (
            lambda m: (m.seller("S9", country=None, tin=None), m.tx("S9", "2025-05-02 10:00:00", 10_00)),
            "seller.no_residence_country",
            "sellers",
            "S9",
        ),
        (  # no TIN and no place of birth: EU rule 40140 cannot be met
            lambda m: (m.seller("S9", tin=None, birth_city=None), m.sales("S9", 40, 100_00)),
            "seller.birth_place_missing",
            "sellers",
            "S9",
        ),
        (
            lambda m: (m.seller("S9", birth_date=date(1850, 1, 1)), m.sales("S9", 40, 100_00)),
            "seller.birth_date_out_of_range",
            "sellers",
            "S9",
        ),
        (
            lambda m: (m.seller("S9", last_name="x" * 201), m.sales("S9", 40, 100_00)),
            "seller.text_not_reportable",
            "sellers",
            "S9",
        ),
        (
            lambda m: (m.seller("S9", address_city="Kau\x01nas"), m.sales("S9", 40, 100_00)),
            "seller.text_not_reportable",
            "sellers",
            "S9",
        ),
        (
            lambda m: (
                m.seller("S9"),
                m.listing("L9", "S9", property_type="DPI999"),
                m.tx("S9", "2025-05-02 10:00:00", 10_00, activity="immovable_property", listing_id="L9"),
            ),
            "listing.property_type",
            "property_listings",
            "L9",
        ),
        (
            lambda m: (
                m.seller("S9"),
                m.listing("L9", "S9", property_type="DPI910", other_property_type=None),
                m.tx("S9", "2025-05-02 10:00:00", 10_00, activity="immovable_property", listing_id="L9"),
            ),
            "listing.other_property_type_missing",
            "property_listings",
            "L9",
        ),
    ],
)
def test_bad_input_names_table_key_and_rule_and_publishes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mutate: Any, rule: str, table: str, key: str
) -> None:
    m = Marketplace()
    m.seller("S1")
    m.sales("S1", 40, 100_00)
    mutate(m)
    with pytest.raises(DataError) as err:
        pipeline(tmp_path, m, environment="prod")  # a production run accepts no quarantined seller
    [finding] = err.value.findings
    assert (finding.rule, finding.table, finding.key) == (rule, table, key)
    assert "Petraite" not in str(err.value) and "xxxxx" not in str(err.value)  # no personal data
    assert f"[{rule}] {table} {key}" in str(err.value)
    assert not (tmp_path / "out").exists()
    # The CLI says the same and exits 1.
    code = main(
        [
            "run",
            "--config",
            str(tmp_path / "dac7.toml"),
            "--source",
            f"sqlite:///{tmp_path}/source.db",
            "--year",
            "2025",
            "--environment",
            "prod",
            "--out",
            str(tmp_path / "out2"),
            "--staging",
            str(tmp_path / "st2"),
        ]
    )
    assert code == 1
    assert rule in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()


def test_missing_rate_for_december_even_when_later_rates_exist(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("S1", country="PL")
    m.sales("S1", 40, 100_00, currency="PLN")
    m.rate("PLN", "2026-01-02", "4.2600")  # only after the year end: not usable
    with pytest.raises(DataError) as err:
        pipeline(tmp_path, m)
    assert [f.rule for f in err.value.findings] == ["fx.missing_rate"]


def test_listings_at_the_same_normalised_address_are_one_property_listing(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("S1")
    m.listing("L1", "S1", address_street="Pilies g.", address_building="3", address_post_code="01123")
    m.listing("L2", "S1", address_street="PILIES  G", address_building="3", address_post_code="01123 ")
    m.listing("L3", "S1", address_street="Pilies g.", address_building="5", address_post_code="01123")
    for listing, amount, days in (("L1", 100_00, 2), ("L2", 50_00, 3), ("L3", 70_00, 1)):
        m.tx("S1", "2025-07-01 10:00:00", amount, activity="immovable_property", listing_id=listing, rented_days=days)
    manifest = pipeline(tmp_path, m)
    root = seller_xml(tmp_path, manifest, "LT")
    listings = root.findall(".//dpi:PropertyListing", NS)
    assert len(listings) == 2  # L1 + L2 (same street address), L3 (another building)
    merged, other = listings
    # L1 + L2: EUR 100.00 + 50.00 = 150 in Q3, 2 rentals, 2 + 3 = 5 rented days
    assert quarters(merged, "dpi:Consideration/*") == [0, 0, 150, 0]
    assert quarters(merged, "dpi:NumberOfActivities/*") == [0, 0, 2, 0]
    assert merged.findtext("dpi:RentedDays", namespaces=NS) == "5"
    assert merged.findtext("dpi:Address/dpi:AddressFix/dpi:Street", namespaces=NS) == "Pilies g."
    assert quarters(other, "dpi:Consideration/*") == [0, 0, 70, 0]
    assert other.findtext("dpi:RentedDays", namespaces=NS) == "1"


def test_explanation_reports_and_explain_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = Marketplace()
    m.rate("PLN", "2025-12-31", "4.2500")
    m.seller("S1", country="PL", tin="1234567890", first_name="Zofia", last_name="Nowak")
    m.sales("S1", 10, 850_00, currency="PLN")  # 8,500.00 PLN = EUR 2,000.00 exactly: de minimis
    m.seller("S2", country="PL", tin="9876543210")
    ids = m.sales("S2", 35, 850_00, currency="PLN")
    m.sales("S2", 1, 1_00, currency="EUR")  # paid in two currencies: converted to EUR
    m.refund(ids[0], "2025-06-01 10:00:00", 850_00)  # full refund: 35 sales counted, not 36
    manifest = pipeline(tmp_path, m)
    reports = tmp_path / "out" / "reports"
    assert sorted(p.name for p in reports.iterdir()) == [
        "decisions.csv",
        "decisions.parquet",
        "due_diligence.csv",
        "due_diligence.html",
        "figures.csv",
        "figures.parquet",
        "quarantine.csv",
        "run_summary.html",
    ]
    csv_text = (reports / "decisions.csv").read_text()
    assert "Nowak" not in csv_text and "1234567890" not in csv_text  # no personal data
    assert manifest["summary"]["decisions"] == {"excluded:de_minimis": 1, "reported": 1}

    assert main(["explain", "--seller", "S1", "--year", "2025", "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "excluded:de_minimis" in text and "EUR 2,000.0000" in text and "PLN 4.25 per EUR on 2025-12-31" in text
    assert "Nowak" not in text and "1234567890" not in text and "***890 (PL)" in text

    assert main(["explain", "--seller", "S2", "--year", "2025", "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    # 34 x 850.00 PLN / 4.25 = EUR 6,800.00 + EUR 1.00 = 6,801.00 in Q2; one refund in full
    assert "reported to LT (the filing state (nexus)), which forwards it to PL (resident: primary address)" in text
    assert "converted to EUR" in text
    assert "Reading of the rules: EU wording (Directive (EU) 2021/514, Annex V), assumed for LT" in text
    assert "Forwarded by the filing state to: PL (resident: primary address)" in text
    assert "1 refunded by the as-of date, 1 of them in full" in text
    root = seller_xml(tmp_path, manifest, "LT")
    assert quarters(root, ".//dpi:SaleOfGoods/dpi:Consideration/*") == [0, 6801, 0, 0]
    assert quarters(root, ".//dpi:SaleOfGoods/dpi:NumberOfActivities/*") == [0, 35, 0, 0]
    assert [e.get("currCode") for e in root.findall(".//dpi:SaleOfGoods/dpi:Consideration/*", NS)] == ["EUR"] * 4

    assert (
        main(["explain", "--seller", "S1", "--year", "2025", "--out", str(tmp_path / "out"), "--show-personal-data"])
        == 0
    )
    assert "Zofia Nowak" in capsys.readouterr().out


def _refund_case(kind: str) -> Marketplace:
    m = Marketplace()
    m.seller("S1")
    [t1, t2] = m.sales("S1", 2, 10_00)
    m.sales("S1", 40, 100_00)
    if kind == "larger":  # one refund of EUR 10.01 against a EUR 10.00 sale
        m.refund(t1, "2025-06-01 10:00:00", 10_01, refund_id="RBIG")
    elif kind == "together":  # EUR 6.00 + EUR 5.00 against a EUR 10.00 sale
        m.refund(t2, "2025-06-01 10:00:00", 6_00, refund_id="RA")
        m.refund(t2, "2025-06-02 10:00:00", 5_00, refund_id="RB")
    else:  # a refund of a transaction that does not exist
        m.refund("TNOPE", "2025-06-01 10:00:00", 1_00, refund_id="RORPHAN")
    return m


@pytest.mark.parametrize(
    ("kind", "rule", "table", "key"),
    [
        ("larger", "refund.exceeds_transaction", "refunds", "RBIG"),
        ("together", "refund.total_exceeds_transaction", "transactions", "T0000002"),
        ("unknown", "refund.unknown_transaction", "refunds", "RORPHAN"),
    ],
)
def test_refund_inconsistencies_are_errors_with_their_key(
    tmp_path: Path, kind: str, rule: str, table: str, key: str
) -> None:
    with pytest.raises(DataError) as err:
        pipeline(tmp_path, _refund_case(kind), environment="prod")
    assert [(f.rule, f.table, f.key) for f in err.value.findings] == [(rule, table, key)]
    assert not (tmp_path / "out").exists()  # never netted to a negative amount and published


def test_payment_date_rates(tmp_path: Path) -> None:
    m = Marketplace()
    m.rate("PLN", "2025-01-14", "4.2000")
    m.rate("PLN", "2025-07-14", "4.0000")
    m.rate("PLN", "2025-12-31", "5.0000")  # the year-end rate, not used on this basis
    m.seller("S1", country="PL")
    # 23:30 UTC on 14 January = 01:30 on 15 January in Vilnius: the rate of 14 January (last before the 15th)
    m.sales("S1", 20, 420_00, currency="PLN", start="2025-01-14 23:30:00")  # 20 x 420 / 4.20 = EUR 2,000.00
    m.sales("S1", 10, 400_00, currency="PLN", start="2025-07-20 10:00:00")  # 10 x 400 / 4.00 = EUR 1,000.00
    manifest = pipeline(tmp_path, m, currency="EUR", fx_basis="payment_date")
    root = seller_xml(tmp_path, manifest, "LT")
    assert quarters(root, ".//dpi:SaleOfGoods/dpi:Consideration/*") == [2000, 0, 1000, 0]
    # At the year-end rate it would be 12,400 PLN / 5 = EUR 2,480: the basis matters.
    d = (tmp_path / "out" / "reports" / "decisions.csv").read_text()
    assert "PLN at the rate of each payment day (2 rate(s), 2025-01-14 to 2025-07-14)" in d


def test_payment_date_rate_missing_names_currency_and_date(tmp_path: Path) -> None:
    m = Marketplace()
    m.rate("PLN", "2025-01-03", "4.2000")
    m.seller("S1", country="PL")
    m.sales("S1", 40, 100_00, currency="PLN", start="2025-01-02 10:00:00")
    with pytest.raises(DataError) as err:
        pipeline(tmp_path, m, currency="EUR", fx_basis="payment_date")
    assert [(f.rule, f.key) for f in err.value.findings] == [("fx.missing_rate", "PLN on or before 2025-01-02")]


def test_validate_command_checks_schema_and_business_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = Marketplace()
    m.seller("S1")
    m.sales("S1", 40, 100_00)
    manifest = pipeline(tmp_path, m)
    [f] = manifest["files"]
    path = tmp_path / "out" / f["file"]
    assert main(["validate", "--rules", str(path)]) == 0
    assert "valid (EU exchange rules)" in capsys.readouterr().out
    # Break a business rule that the schema allows: a Nationality for an individual (40010).
    text = path.read_text(encoding="utf-8").replace(
        "</dpi:Address>\n              <dpi:BirthInfo>",
        "</dpi:Address>\n              <dpi:Nationality>LT</dpi:Nationality>\n              <dpi:BirthInfo>",
    )
    broken = tmp_path / "broken.xml"
    broken.write_text(text, encoding="utf-8")
    assert main(["validate", str(broken)]) == 0  # schema-valid
    assert main(["validate", "--rules", "--authority", "LT", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "[40010 BR_PAR_001] error in record LT2025-" in out and "dpi:Nationality" in out


def test_rented_days_zero_is_omitted_and_other_property_type_only_with_dpi910(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("S1")
    m.listing("L1", "S1", address_street="Pilies g.", property_type="DPI905", other_property_type="ignored text")
    m.listing("L2", "S1", address_street="Didzioji g.", property_type="DPI910", other_property_type="Yurt")
    m.tx("S1", "2025-07-01 10:00:00", 100_00, activity="immovable_property", listing_id="L1", rented_days=0)
    m.tx("S1", "2025-07-01 10:00:00", 100_00, activity="immovable_property", listing_id="L2", rented_days=2)
    root = seller_xml(tmp_path, pipeline(tmp_path, m), "LT")
    first, second = root.findall(".//dpi:PropertyListing", NS)
    assert first.find("dpi:RentedDays", NS) is None  # 0 days: omitted
    assert first.find("dpi:OtherPropertyType", NS) is None  # never with DPI905 (EU rule 30060)
    assert first.findtext("dpi:PropertyType", namespaces=NS) == "DPI905"
    assert second.findtext("dpi:OtherPropertyType", namespaces=NS) == "Yurt"
    assert second.findtext("dpi:RentedDays", namespaces=NS) == "2"


def test_a_test_run_quarantines_a_bad_seller_and_files_everyone_else(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("GOOD")
    m.sales("GOOD", 40, 100_00)
    m.seller("BAD")
    m.sales("BAD", 40, 100_00)
    m.tx("BAD", "2025-05-02 10:00:00", 10_00, currency="XYZ", transaction_id="TXYZ")
    m.seller("NORES", country=None, tin=None)
    m.sales("NORES", 40, 100_00)
    manifest = pipeline(tmp_path, m)  # environment "test"
    assert manifest["summary"]["decisions"] == {
        "quarantined:currency.unknown": 1,
        "quarantined:seller.no_residence_country": 1,
        "reported": 1,
    }
    [f] = manifest["files"]
    assert f["sellers"] == 1
    quarantine = (tmp_path / "out" / "reports" / "quarantine.csv").read_text()
    assert "BAD,currency.unknown,transactions,TXYZ" in quarantine
    assert "NORES,seller.no_residence_country,sellers,NORES" in quarantine
    decisions = (tmp_path / "out" / "reports" / "decisions.csv").read_text()
    assert "BAD,individual,quarantined:currency.unknown" in decisions  # not dropped: decided and explained


def test_quality_max_quarantined_lets_a_production_run_accept_some(tmp_path: Path) -> None:
    m = Marketplace()
    m.seller("GOOD")
    m.sales("GOOD", 40, 100_00)
    m.seller("BAD")
    m.tx("BAD", "2025-05-02 10:00:00", 10_00, currency="XYZ", transaction_id="TXYZ")
    url = m.write(f"sqlite:///{tmp_path}/source.db")
    cfg = write_config(tmp_path / "dac7.toml", environment="prod", max_quarantined=1)
    manifest = run(
        config_path=cfg,
        source_url=url,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
    ).manifest
    assert manifest["summary"]["decisions"] == {"quarantined:currency.unknown": 1, "reported": 1}


def test_sellers_without_tin_are_reported_as_unknown_and_listed_for_action(tmp_path: Path) -> None:
    """No TIN: TIN unknown="true" (with the birth place for an individual, EU rule 40140); an
    entity without TIN is reported too (rule 40100 binds only the platform operator). Both are
    in the due-diligence report, the entity's missing registration number as a warning."""
    m = Marketplace()
    m.seller("IND", tin=None)
    m.sales("IND", 40, 100_00)
    m.seller("ENT", seller_type="entity", tin=None, business_registration_number=None)
    m.sales("ENT", 40, 100_00)
    manifest = pipeline(tmp_path, m)
    assert manifest["summary"]["decisions"] == {"reported": 2}
    root = seller_xml(tmp_path, manifest, "LT")
    sellers = root.findall(".//dpi:ReportableSeller", NS)
    assert len(sellers) == 2
    for s in sellers:
        [tin] = s.findall(".//dpi:TIN", NS)
        assert tin.get("unknown") == "true" and not tin.text
    [individual] = root.xpath("//dpi:ReportableSeller[.//dpi:IndividualSeller]", namespaces=NS)
    assert individual.xpath("string(.//dpi:BirthInfo/dpi:BirthPlace/dpi:City)", namespaces=NS) == "Kaunas"
    rows = (tmp_path / "out" / "reports" / "due_diligence.csv").read_text().splitlines()
    kinds = {(r.split(",")[0], r.rsplit(",", 1)[1]) for r in rows[1:]}
    assert {("IND", "TIN unknown"), ("ENT", "TIN unknown"), ("ENT", "data check warning")} <= kinds
    assert manifest["due_diligence"]["by_kind"]["TIN unknown"] == 2


def decided(tmp_path: Path, **cfg: Any) -> str:
    """A run of two sellers (resident in LT and PL) driven stage by stage up to its decisions, as
    the Airflow tasks drive it; returns its staging directory."""
    from reporting import pipeline

    m = Marketplace()
    m.seller("LT1")
    m.sales("LT1", 40, 100_00)
    m.seller("PL1", country="PL")
    m.sales("PL1", 40, 100_00)
    run_dir = pipeline.prepare(
        config_path=write_config(tmp_path / "dac7.toml", **cfg),
        source_url=m.write(f"sqlite:///{tmp_path}/source.db"),
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
        run_id=RUN_ID,
    )
    for stage in (pipeline.extract, pipeline.aggregate, pipeline.apply_rules):
        stage(run_dir)
    return run_dir


def test_each_authority_renders_validates_and_publishes_on_its_own(tmp_path: Path) -> None:
    """The stages per authority (a mapped task each in Airflow): nothing is published until every
    planned authority validated, and the manifest waits for every authority's files."""
    from reporting import pipeline
    from reporting.errors import XmlValidationError

    # the preview of what each state receives: one authority per state of residence
    run_dir = decided(tmp_path, routing="jurisdiction")
    assert pipeline.plan(run_dir) == ["LT", "PL"]
    rendered = {a: pipeline.render(run_dir, a) for a in ("PL", "LT")}  # in any order
    assert [m["authority"] for m in rendered["LT"]["messages"]] == ["LT"]
    pipeline.validate(run_dir, "LT")
    with pytest.raises(XmlValidationError, match="not validated\\) for PL"):
        pipeline.publish(run_dir, "LT")  # one authority's files wait for the other's validation
    pipeline.validate(run_dir, "PL")
    pipeline.publish(run_dir, "PL", triggered_by="ana", approved_by="jonas")
    with pytest.raises(XmlValidationError, match="not published yet for LT"):
        pipeline.finalize(run_dir)
    pipeline.publish(run_dir, "LT")
    pipeline.publish(run_dir, "LT")  # a retried publish publishes nothing twice
    manifest = pipeline.finalize(run_dir)
    assert manifest["preview"] is True and manifest["filing_state"] == "LT"
    assert [(f["authority"], f["message_type_indic"], f["sellers"]) for f in manifest["files"]] == [
        ("LT", "DPI401", 1),
        ("PL", "DPI401", 1),
    ]
    assert all((tmp_path / "out" / f["file"]).is_file() for f in manifest["files"])
    # the audit trail: who triggered the run and who approved, with each message of the preview's
    # own ledgers (one per authority, in the run's staging); the filing ledger holds nothing of it
    from reporting.ledger import open_ledger
    from reporting.settings import load_settings
    from reporting.stages.plan import ledger_url

    settings = load_settings(run_dir)
    people = {}
    for authority in ("LT", "PL"):
        with open_ledger(ledger_url(settings, authority)) as ledger:
            people.update({m.authority: (m.triggered_by, m.approved_by) for m in ledger.messages(year=2025)})
    with open_ledger(os.environ["DAC7_LEDGER_URL"]) as ledger:
        assert ledger.messages() == []
    assert people == {"PL": ("ana", "jonas"), "LT": (None, None)}


def test_the_filing_records_who_triggered_and_who_approved_in_the_ledger(tmp_path: Path) -> None:
    from reporting import pipeline
    from reporting.ledger import open_ledger

    run_dir = decided(tmp_path)
    assert pipeline.plan(run_dir) == ["LT"]  # the filing state alone, with both sellers
    pipeline.render(run_dir, "LT")
    pipeline.validate(run_dir, "LT")
    pipeline.publish(run_dir, "LT", triggered_by="ana", approved_by="jonas")
    manifest = pipeline.finalize(run_dir)
    assert [(f["authority"], f["sellers"]) for f in manifest["files"]] == [("LT", 2)]
    assert manifest["preview"] is False and manifest["reading"]["label"].startswith("EU wording")
    with open_ledger(os.environ["DAC7_LEDGER_URL"]) as ledger:
        assert [(m.authority, m.triggered_by, m.approved_by) for m in ledger.messages(year=2025)] == [
            ("LT", "ana", "jonas")
        ]


def test_a_run_as_of_a_day_in_the_year_reads_the_payments_made_by_its_end(tmp_path: Path) -> None:
    """As of 30 September (Europe/Vilnius, EEST): the last second of the day counts, the next
    one does not; the refund cut-off is the same instant."""
    m = Marketplace()
    m.seller("S1")
    m.sales("S1", 30, 10_00)  # in May
    m.tx("S1", "2025-09-30 20:59:59", 7_00)  # 23:59:59 on 30 September: read
    m.tx("S1", "2025-09-30 21:00:00", 5_00)  # 00:00:00 on 1 October: not yet paid as of 30 September
    m.tx("S1", "2025-12-01 10:00:00", 3_00)
    manifest = pipeline(tmp_path, m, as_of="2025-09-30")
    assert manifest["summary"]["transactions_read"] == 31
    root = seller_xml(tmp_path, manifest, "LT")
    assert quarters(root, ".//dpi:SaleOfGoods/dpi:Consideration/*") == [0, 300, 7, 0]


def _validate_outputs(run_dir: str) -> dict[str, bytes]:
    folder = Path(run_dir) / "validate"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.json"))}


def _three_states_preview(tmp_path: Path) -> str:
    """A preview run prepared for a seller resident in each of LT, PL and DE."""
    from reporting import pipeline

    m = Marketplace()
    for country in ("LT", "PL", "DE"):
        m.seller(f"{country}1", country=country)
        m.sales(f"{country}1", 40, 100_00)
    run_dir = pipeline.prepare(
        config_path=write_config(tmp_path / "dac7.toml", routing="jurisdiction"),
        source_url=m.write(f"sqlite:///{tmp_path}/source.db"),
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
        run_id=RUN_ID,
    )
    return run_dir


@pytest.mark.parametrize("broken", ["none", "invalid", "cut off"])
def test_the_files_of_all_authorities_validated_in_parallel_as_one_after_the_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    """``validate`` of every authority checks their files in worker processes: the same reports,
    written in the same order, and the same error (a file that breaks the schema; one that is cut
    off, raised from the worker with its own type and message) as checked one after the other."""
    from reporting import pipeline
    from reporting.stages import validate as _validate

    run_dir = _three_states_preview(tmp_path)
    monkeypatch.setattr(_validate, "cpu_count", lambda: 1)  # no validation beside the render: validated below
    for stage in (pipeline.extract, pipeline.aggregate, pipeline.apply_rules, pipeline.render):
        stage(run_dir)
    assert pipeline.plan(run_dir) == ["DE", "LT", "PL"]
    assert not (Path(run_dir) / "validate" / "overlapped").exists()
    [lt] = (Path(run_dir) / "render" / "LT").glob("*.xml")  # the middle one
    data = lt.read_bytes()
    if broken == "invalid":
        lt.write_bytes(data.replace(b"<dpi:MessageSpec>", b"<dpi:MessageSpec><dpi:Unknown/>", 1))
    elif broken == "cut off":
        lt.write_bytes(data[: len(data) // 2])

    def outcome(workers: int) -> tuple[Any, dict[str, bytes]]:
        shutil.rmtree(Path(run_dir) / "validate", ignore_errors=True)
        monkeypatch.setattr(_validate, "workers_for", lambda jobs: min(jobs, workers))
        monkeypatch.setattr(_validate, "BYTES_PER_WORKER", 1)  # small files: worth a worker all the same
        try:
            result: Any = pipeline.validate(run_dir)
        except Exception as exc:
            result = (type(exc), str(exc))
        return result, _validate_outputs(run_dir)

    one_by_one = outcome(1)
    assert outcome(2) == one_by_one
    assert outcome(3) == one_by_one
    written = sorted(one_by_one[1])
    if broken == "none":
        assert one_by_one[0]["valid"] and len(one_by_one[0]["files"]) == 3
        assert written == ["authorities/DE.json", "authorities/LT.json", "authorities/PL.json", "validate.json"]
    elif broken == "invalid":
        kind, message = one_by_one[0]
        assert kind.__name__ == "XmlValidationError" and "Unknown" in message
        assert written == ["authorities/DE.json", "authorities/LT.json", "authorities/PL.json", "validate.json"]
    else:
        kind, message = one_by_one[0]
        assert kind.__name__ == "XmlFileError" and message.startswith(f"{lt}: not well-formed XML")
        assert written == ["authorities/DE.json"]  # the authorities before the one that raised


def test_the_reports_made_beside_the_render_are_the_validate_stages_own_while_the_files_are_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The render of every authority has each one's files checked in a worker while it renders
    the next (``validate/overlapped``): the validate stage then writes the same reports as its own
    check of the same files, and checks again (here: refuses) a file changed since."""
    from reporting import pipeline
    from reporting.errors import XmlValidationError
    from reporting.stages import validate as _validate

    run_dir = _three_states_preview(tmp_path)
    monkeypatch.setattr(_validate, "cpu_count", lambda: 2)  # a worker also on a one-core machine
    for stage in (pipeline.extract, pipeline.aggregate, pipeline.apply_rules, pipeline.render):
        stage(run_dir)
    folder = Path(run_dir) / "validate"
    made = {p.name: p.read_bytes() for p in (folder / "overlapped").iterdir()}
    assert sorted(made) == ["DE.json", "LT.json", "PL.json"]
    checks: list[str] = []
    check = _validate._check
    monkeypatch.setattr(
        _validate, "_check", lambda settings, a, only=None: checks.append(a) or check(settings, a, only)
    )
    adopted = pipeline.validate(run_dir)
    assert checks == [] and adopted["valid"] and len(adopted["files"]) == 3
    reports = {p.name: p.read_bytes() for p in (folder / "authorities").iterdir()}
    shutil.rmtree(folder)
    assert pipeline.validate(run_dir) == adopted  # checked here, in this process
    assert checks == ["DE", "LT", "PL"]
    assert {p.name: p.read_bytes() for p in (folder / "authorities").iterdir()} == reports
    # a file changed after its check: checked again, and refused; the others' reports taken
    (folder / "overlapped").mkdir()
    for name, data in made.items():
        (folder / "overlapped" / name).write_bytes(data)
    [lt] = (Path(run_dir) / "render" / "LT").glob("*.xml")
    lt.write_bytes(lt.read_bytes().replace(b"<dpi:MessageSpec>", b"<dpi:MessageSpec><dpi:Unknown/>", 1))
    checks.clear()
    with pytest.raises(XmlValidationError, match="Unknown"):
        pipeline.validate(run_dir)
    assert checks == ["LT"]
