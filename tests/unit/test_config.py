"""The configuration contract: the documented layout is accepted; mistakes name their key."""

from __future__ import annotations

import tomllib
from datetime import date, datetime
from pathlib import Path

import pytest

from reporting.authorities import EU_GENERIC
from reporting.config import load_config, parse_config
from reporting.errors import ConfigError
from reporting.pipeline import prepare

REPO = Path(__file__).resolve().parents[2]


def demo() -> dict:
    return tomllib.loads((REPO / "dac7.toml").read_text(encoding="utf-8"))


def test_the_documented_layout_is_accepted_exactly_as_written() -> None:
    cfg = load_config(REPO / "dac7.toml")
    assert (cfg.operator.name, cfg.operator.nexus, cfg.operator.country) == ("Demo Marketplace UAB", "RPONEX1", "LT")
    assert (cfg.reporting.timezone, cfg.reporting.reporting_currency) == ("Europe/Vilnius", "original")
    assert (cfg.reporting.routing, cfg.reporting.environment, cfg.reporting.fx_basis) == (
        "nexus",
        "test",
        "year_end",
    )


def test_routing_defaults_to_the_filing() -> None:
    raw = demo()
    raw["reporting"].pop("routing")
    assert parse_config(raw).reporting.routing == "nexus"


@pytest.mark.parametrize("where", ["file", "run"])
def test_a_preview_is_never_a_production_filing(tmp_path: Path, where: str) -> None:
    raw = demo()
    raw["reporting"]["routing"] = "jurisdiction"
    if where == "file":
        raw["reporting"]["environment"] = "prod"
        with pytest.raises(ConfigError, match=r"routing 'jurisdiction' with environment 'prod' is refused") as e:
            parse_config(raw)
        assert "forwards each seller to its states of residence and property" in str(e.value)
        return
    cfg = tmp_path / "dac7.toml"
    text = (REPO / "dac7.toml").read_text(encoding="utf-8").replace('routing = "nexus"', 'routing = "jurisdiction"')
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"It is a preview of what each member state receives from LT"):
        prepare(
            config_path=cfg,
            year=2025,
            out_dir=tmp_path / "out",
            environment="prod",
            staging_root=tmp_path,
            timestamp=datetime(2026, 1, 15, 12, 0),
            as_of=date(2026, 1, 15),
        )
    with pytest.raises(ConfigError, match=r"mode correction: a preview"):
        prepare(
            config_path=cfg,
            year=2025,
            out_dir=tmp_path / "out",
            staging_root=tmp_path,
            timestamp=datetime(2026, 1, 15, 12, 0),
            as_of=date(2026, 1, 15),
            mode="correction",
        )


def test_authorities_of_another_state_change_nothing_and_say_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = tmp_path / "dac7.toml"
    cfg.write_text(
        (REPO / "dac7.toml").read_text(encoding="utf-8") + '\n[authorities.DE]\nbzst_id = "BZST0012345678"\n',
        encoding="utf-8",
    )
    args = {
        "config_path": cfg,
        "year": 2025,
        "out_dir": tmp_path / "out",
        "staging_root": tmp_path,
        "timestamp": datetime(2026, 1, 15, 12, 0),
        "as_of": date(2026, 1, 15),
    }
    with caplog.at_level("WARNING"):
        prepare(**args)
    assert "[authorities.DE] is ignored: this operator files in LT" in caplog.text
    # a filing is made in the filing state alone
    with pytest.raises(ConfigError, match=r"authorities DE: this operator files in LT only"):
        prepare(**args, authorities=["DE"])


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda c: c["operator"].pop("tin"), "operator.tin"),
        (lambda c: c["operator"].update(nexus="RPONEX9"), "operator.nexus"),
        (lambda c: c["operator"]["address"].update(country="XX1"), "operator.address.country"),
        (lambda c: c["reporting"].update(timezone="Mars/Olympus"), "reporting.timezone"),
        (lambda c: c["reporting"].update(routing="everywhere"), "reporting.routing"),
        (lambda c: c["reporting"].update(fx_basis="monthly"), "reporting.fx_basis"),
        (lambda c: c["reporting"].update(enviroment="prod"), "enviroment"),  # a typo is not ignored
        (lambda c: c["operator"]["address"].update(country="US"), "operator.nexus_country"),
    ],
)
def test_mistakes_name_their_key(change, key: str) -> None:  # type: ignore[no-untyped-def]
    raw = demo()
    change(raw)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config(raw)


def test_a_non_eu_operator_files_in_its_nexus_state() -> None:
    raw = demo()
    raw["operator"]["address"]["country"] = "US"
    raw["operator"]["nexus_country"] = "IE"
    raw["operator"]["nexus"] = "RPONEX5"
    assert parse_config(raw).operator.country == "IE"


def test_a_production_filing_waits_for_the_end_of_the_period(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has not ended"):
        prepare(
            config_path=REPO / "dac7.toml",
            year=2026,
            out_dir=tmp_path,
            environment="prod",
            staging_root=tmp_path,
            timestamp=datetime(2026, 11, 28, 12, 0),
            as_of=date(2026, 11, 28),
        )
    prepare(
        config_path=REPO / "dac7.toml",
        year=2026,
        out_dir=tmp_path,
        environment="test",
        staging_root=tmp_path,
        timestamp=datetime(2026, 11, 28, 12, 0),
        as_of=date(2026, 11, 28),
    )


@pytest.mark.parametrize(
    ("utc", "cet"),
    [
        (datetime(2026, 1, 15, 6, 0, 0), "2026-01-15T07:00:00"),
        (datetime(2026, 7, 1, 22, 30, 5, 999), "2026-07-01T23:30:05"),
    ],
)
def test_timestamp_is_cet_without_offset_all_year(utc: datetime, cet: str) -> None:
    assert EU_GENERIC.message_timestamp(utc).isoformat() == cet


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["reporting"].update(enviroment="prod"), "enviroment (did you mean environment?)"),
        (lambda c: c["operator"].update(nexsu="RPONEX1"), "nexsu (did you mean nexus?)"),
        (lambda c: c["operator"]["address"].update(postcode="1"), "postcode (did you mean post_code?)"),
        (
            lambda c: c.update(reportin={"routing": "nexus"}),
            "at the top level (tables): reportin (did you mean reporting?)",
        ),
        (lambda c: c.update(qualty={"max_quarantined": 3}), "qualty (did you mean quality?)"),
        (lambda c: c.update(ledger={"uri": "sqlite:///x"}), "unknown key(s) in [ledger]: uri (did you mean url?)"),
    ],
)
def test_a_typo_in_a_key_is_refused_with_the_valid_keys(change, expected: str) -> None:  # type: ignore[no-untyped-def]
    """A misspelt key would otherwise leave its setting at the default (a production run filed as a
    test, a quarantine bound of 0) without a word."""
    raw = demo()
    change(raw)
    with pytest.raises(ConfigError) as raised:
        parse_config(raw)
    message = str(raised.value)
    assert expected in message
    assert "the valid keys are: " in message


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("name", "Demo\x07Marketplace", "contains a control character (U+0007 at position 5)"),
        ("name", "Demo\x85Marketplace", "contains a control character (U+0085"),
        ("name", "Demo \u202eecalptekraM", "bidirectional override or isolate (U+202E"),
        ("name", "Demo \u2067Market\u2069", "bidirectional override or isolate (U+2067"),
        ("name", "x" * 201, "is 201 characters long; the schema allows 200"),
        ("platform_business_name", "Demo\x00", "control character (U+0000"),
        ("vat", "LT\x1b100012345678", "control character (U+001B"),
    ],
)
def test_operator_texts_are_checked_at_load_before_any_work(key: str, value: str, why: str) -> None:
    """A text the message cannot carry used to fail at render, after the whole extraction."""
    raw = demo()
    raw["operator"][key] = value
    with pytest.raises(ConfigError, match=rf"operator\.{key} ") as raised:
        parse_config(raw)
    assert why in str(raised.value)


def test_operator_texts_that_are_ordinary_pass() -> None:
    raw = demo()
    for name in (
        "x" * 200,
        "Cafe\u0301 Marche\u0301 UAB",
        "\u05e9\u05d5\u05e7 \u200f\u05d1\u05e2\u05f4\u05de",
        "Ånd Ølk\tAB",
    ):
        raw["operator"]["name"] = name
        assert parse_config(raw).operator.name == name.strip()
    raw["operator"]["address"]["city"] = "Vilnius\u2028"  # a line separator is a character XML carries
    parse_config(raw)


# ------------------------------------------------------------------ assumed and assuming operators

ASSUMED_TOML = """
[[assumed_operators]]
name = "MotoLoc.fr"
tin = "555852446"
tin_issued_by = "FR"
[assumed_operators.address]
street = "rue Bernard Ouillon"
building = "25"
post_code = "92200"
city = "Neuilly sur Seine"
country = "FR"

[[assumed_operators]]
name = "Scooters SRL"
tin = "12345670017"
tin_issued_by = "IT"
vat = "IT12345670017"
[assumed_operators.address]
city = "Roma"
country = "IT"
"""

ASSUMING_TOML = """
[assuming_operator]
name = "QuickService.de"
tin = "HRB 12345"
tin_issued_by = "DE"
vat = "DE123456789"
[assuming_operator.address]
street = "Haupstrasse"
building = "5"
post_code = "53111"
city = "Bonn"
country = "DE"
"""


def with_toml(extra: str) -> dict:
    return tomllib.loads((REPO / "dac7.toml").read_text(encoding="utf-8") + extra)


def test_assumed_operators_are_read_in_the_order_of_the_file() -> None:
    op = parse_config(with_toml(ASSUMED_TOML)).operator
    assert op.assuming_operator is None
    first, second = op.assumed_operators
    assert (first.name, first.tin, first.tin_issued_by, first.vat) == ("MotoLoc.fr", "555852446", "FR", None)
    assert (first.address.street, first.address.building, first.address.post_code) == (
        "rue Bernard Ouillon",
        "25",
        "92200",
    )
    assert (first.address.city, first.address.country) == ("Neuilly sur Seine", "FR")
    assert (second.name, second.vat, second.address.street, second.address.country) == (
        "Scooters SRL",
        "IT12345670017",
        None,
        "IT",
    )
    # the ledger key: the issuing state and a digest, never the TIN itself
    assert first.key.startswith("FR-") and len(first.key) == 19 and "555852446" not in first.key
    assert first.key != second.key


def test_the_assuming_operator_is_read() -> None:
    op = parse_config(with_toml(ASSUMING_TOML)).operator
    assert op.assumed_operators == ()
    assert op.assuming_operator is not None
    assert (op.assuming_operator.name, op.assuming_operator.tin, op.assuming_operator.vat) == (
        "QuickService.de",
        "HRB 12345",
        "DE123456789",
    )
    assert op.assuming_operator.address.city == "Bonn"


def test_without_the_tables_nothing_changes() -> None:
    op = parse_config(demo()).operator
    assert (op.assumed_operators, op.assuming_operator) == ((), None)


def test_an_operator_is_never_both_assumed_and_assuming() -> None:
    with pytest.raises(ConfigError, match=r"\[\[assumed_operators\]\] and \[assuming_operator\] are both given") as e:
        parse_config(with_toml(ASSUMED_TOML + ASSUMING_TOML))
    assert "OtherPlatformOperators holds one or the other" in str(e.value)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (ASSUMED_TOML.replace('tin = "555852446"\n', ""), r"assumed_operators\[1\]\.tin is required"),
        (ASSUMED_TOML.replace('name = "Scooters SRL"\n', ""), r"assumed_operators\[2\]\.name is required"),
        (
            ASSUMED_TOML.replace('tin_issued_by = "IT"', 'tin_issued_by = "FRA"'),
            r"assumed_operators\[2\]\.tin_issued_by = 'FRA' is not an ISO 3166",
        ),
        (
            ASSUMED_TOML.replace('country = "FR"', 'country = "France"'),
            r"assumed_operators\[1\]\.address\.country = 'France'",
        ),
        (ASSUMED_TOML.replace('city = "Roma"\n', ""), r"assumed_operators\[2\]\.address\.city is required"),
        (
            ASSUMED_TOML.replace("[assumed_operators.address]\ncity", "[assumed_operators.adress]\ncity"),
            r"unknown key\(s\) in \[assumed_operators\[2\]\]: adress \(did you mean address\?\)",
        ),
        (ASSUMED_TOML.replace('vat = "IT12345670017"', "vat = 17"), r"assumed_operators\[2\]\.vat must be a string"),
        (
            ASSUMED_TOML.replace('tin = "12345670017"', 'tin = "555852446"').replace('"IT"', '"FR"', 1),
            r"assumed_operators\[2\] has the TIN of assumed_operators\[1\]",
        ),
        (
            ASSUMING_TOML.replace('name = "QuickService.de"', 'name = "Quick\\u202eService"'),
            r"assuming_operator\.name contains a bidirectional override",
        ),
        (
            ASSUMING_TOML.replace('street = "Haupstrasse"', f'street = "{"x" * 201}"'),
            r"assuming_operator\.address\.street is 201 characters long",
        ),
        (
            ASSUMING_TOML.replace('tin = "HRB 12345"\ntin_issued_by = "DE"', 'tin = "304567891"\ntin_issued_by = "LT"'),
            r"assuming_operator has the operator's own TIN",
        ),
        (
            ASSUMING_TOML.replace("[assuming_operator]", "[[assuming_operator]]").replace(
                "[assuming_operator.address]", "[assuming_operator.address]"
            ),
            r"assuming_operator must be one table: write \[assuming_operator\]",
        ),
        (
            '\n[assumed_operators]\nname = "X"\n',
            r"assumed_operators must be an array of tables: write \[\[assumed_operators\]\]",
        ),
    ],
)
def test_mistakes_in_other_operators_name_their_key(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(with_toml(extra))


def test_assumed_operators_that_are_no_tables_are_refused() -> None:
    raw = demo()
    raw["assumed_operators"] = "X"
    with pytest.raises(ConfigError, match=r"assumed_operators must be an array of tables"):
        parse_config(raw)
    raw["assumed_operators"] = ["X"]
    with pytest.raises(ConfigError, match=r"\[assumed_operators\[1\]\] must be a table"):
        parse_config(raw)


def test_the_tables_of_a_group_operator_are_read_by_the_same_function() -> None:
    """``[operators.ID]`` of a group of operators holds the same tables: the function reads any
    table that holds them, its messages naming the table's place in the file."""
    from reporting.config import other_operators

    table = tomllib.loads(ASSUMING_TOML)
    assumed, assuming = other_operators(table, "operators.fr.", "dac7.toml")
    assert assumed == () and assuming is not None and assuming.name == "QuickService.de"
    table["assuming_operator"].pop("tin")
    with pytest.raises(ConfigError, match=r"dac7.toml: operators\.fr\.assuming_operator\.tin is required"):
        other_operators(table, "operators.fr.", "dac7.toml")


def test_other_operators_travel_with_the_run_settings(tmp_path: Path) -> None:
    """A stage loads the run's settings: both tables come back as they were read."""
    from reporting.settings import RunSettings, load_settings

    for extra in (ASSUMED_TOML, ASSUMING_TOML):
        cfg = tmp_path / "dac7.toml"
        cfg.write_text((REPO / "dac7.toml").read_text(encoding="utf-8") + extra, encoding="utf-8")
        run_dir = prepare(
            config_path=cfg,
            year=2025,
            out_dir=tmp_path / "out",
            staging_root=tmp_path,
            timestamp=datetime(2026, 1, 15, 12, 0),
        )
        settings = load_settings(run_dir)
        again = RunSettings.from_json(settings.to_json())
        assert again.config.operator == settings.config.operator == load_config(cfg).operator


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('dip_prod_url = "http://localhost.attacker.example"', "plain http only to this machine"),
        ('dip_test_url = "http://127.0.0.1.nip.io:8080"', "plain http only to this machine"),
        ('dip_test_url = "http://localhostx:80"', "plain http only to this machine"),
        ('dip_test_url = "https://user:pw@example.org"', "carries credentials"),
        ('dip_test_url = "https://mds.bzst.bund.de"', "dip_test_url names the BZSt's production host"),
        ('dip_test_url = "https://MDS.bzst.bund.de:443/"', "dip_test_url names the BZSt's production host"),
        ('dip_prod_url = "https://mds-ktst.bzst.bund.de"', "dip_prod_url names the BZSt's test host"),
        (
            'dip_test_url = "http://127.0.0.1:8080"\ndip_prod_url = "http://127.0.0.1:8080/"',
            "name the same host",
        ),
    ],
)
def test_dip_hosts_that_could_mix_test_and_production_are_refused(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(with_toml(f"\n[transmission]\n{extra}\n"))


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_plain_http_is_accepted_for_this_machine_by_exact_name(host: str) -> None:
    config = parse_config(with_toml(f'\n[transmission]\ndip_test_url = "http://{host}:8080/"\n'))
    assert config.transmission.dip_test_url == f"http://{host}:8080"
    assert config.transmission.dip_prod_url == "https://mds.bzst.bund.de"
