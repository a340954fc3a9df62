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
        "jurisdiction",
        "test",
        "year_end",
    )


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
