"""The configuration of a filing in the United Kingdom: ``[authorities.GB]`` with the platform
operator ID HMRC issues, a GB filing state, and the partner jurisdictions an operator may set."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from reporting.authorities import profile_for, select_profile
from reporting.authorities.gb import GB
from reporting.config import parse_config
from reporting.errors import ConfigError
from reporting.jurisdictions import partner_jurisdictions

REPO = Path(__file__).resolve().parents[2]


def uk(**authorities: Any) -> dict[str, Any]:
    """The demo operator (registered in LT) filing in GB, with ``[authorities.GB]``."""
    raw = tomllib.loads((REPO / "dac7.toml").read_text(encoding="utf-8"))
    raw["operator"]["nexus_country"] = "GB"
    raw["operator"]["nexus"] = "RPONEX4"  # a permanent establishment in the UK
    raw["authorities"] = {"GB": {"platform_operator_id": "XMDPI0001234567", **authorities}}
    return raw


def uk_ltd(poid: str) -> dict[str, Any]:
    """A further operator of the group, a UK company filing in the UK with ``poid``."""
    return {
        "name": "Demo Market Ltd",
        "tin": "1234567890",
        "tin_issued_by": "GB",
        "nexus": "RPONEX1",
        "address": {"city": "London", "country": "GB"},
        "authorities": {"GB": {"platform_operator_id": poid}},
    }


def test_an_operator_files_in_the_uk_with_the_poid_hmrc_issued() -> None:
    cfg = parse_config(uk())
    assert cfg.operator.country == "GB"
    assert cfg.authorities["GB"] == {"platform_operator_id": "XMDPI0001234567"}
    assert select_profile("GB", cfg) is GB and profile_for("GB") is GB


def test_the_uk_profile_needs_its_poid() -> None:
    raw = uk()
    raw["authorities"]["GB"].pop("platform_operator_id")
    with pytest.raises(ConfigError, match=r"needs \[authorities\.GB\] platform_operator_id"):
        select_profile("GB", parse_config(raw))


@pytest.mark.parametrize("poid", ["XM DPI 1", "XM-DPI-1", "X" * 59, "PO/1"])
def test_a_poid_that_cannot_name_a_file_is_refused(poid: str) -> None:
    with pytest.raises(ConfigError, match=r"\[authorities\.GB\] platform_operator_id must be the platform operator"):
        select_profile("GB", parse_config(uk(platform_operator_id=poid)))


@pytest.mark.parametrize("poid", ["1", "X" * 58, "XMDPI0001234567", "0000123456"])
def test_a_poid_of_letters_and_digits_is_taken(poid: str) -> None:
    assert select_profile("GB", parse_config(uk(platform_operator_id=poid))) is GB


def test_two_operators_of_a_group_never_share_a_poid() -> None:
    raw = uk()
    raw["operators"] = {"uk_ltd": uk_ltd("xmdpi0001234567")}
    with pytest.raises(ConfigError, match=r"\[operators\.uk_ltd\.authorities\.GB\] platform_operator_id is the same"):
        parse_config(raw)


def test_a_group_operator_files_in_the_uk_beside_an_eu_one() -> None:
    raw = tomllib.loads((REPO / "dac7.toml").read_text(encoding="utf-8"))
    raw["operators"] = {"uk_ltd": uk_ltd("XMDPI0001234567")}
    cfg = parse_config(raw)
    assert cfg.operator.country == "LT" and cfg.for_operator("uk_ltd").operator.country == "GB"
    assert select_profile("GB", cfg.for_operator("uk_ltd")) is GB


def test_the_partner_jurisdictions_are_a_list_of_country_codes() -> None:
    cfg = parse_config(uk(partner_jurisdictions=["nz", "IE", "IE", "FR"]))
    assert cfg.authorities["GB"]["partner_jurisdictions"] == "FR,IE,NZ"
    assert partner_jurisdictions(cfg.authorities, "GB") == ["FR", "IE", "NZ"]
    # an empty list means the UK alone, not "use HMRC's list"
    assert partner_jurisdictions(parse_config(uk(partner_jurisdictions=[])).authorities, "GB") == []
    assert partner_jurisdictions(parse_config(uk()).authorities, "GB") is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("IE,NZ", r"authorities\.GB\.partner_jurisdictions must be a list of country codes"),
        (["IE", 3], r"authorities\.GB\.partner_jurisdictions must be a list of country codes"),
        (["UK"], r"authorities\.GB\.partner_jurisdictions = 'UK' is not an ISO 3166 alpha-2 country code"),
    ],
)
def test_partner_jurisdictions_that_are_no_codes_are_refused(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(uk(partner_jurisdictions=value))


def test_the_eu_notion_of_nexus_rponex5_is_refused_for_the_uk() -> None:
    raw = uk()
    raw["operator"]["nexus"] = "RPONEX5"
    with pytest.raises(ConfigError, match=r"operator\.nexus = 'RPONEX5' names the EU's Qualified Non-Union"):
        parse_config(raw)


def test_the_exchange_preview_is_refused_for_the_uk() -> None:
    raw = uk()
    raw["reporting"]["routing"] = "jurisdiction"
    with pytest.raises(ConfigError, match="GB files under the OECD Model Rules"):
        parse_config(raw)


@pytest.mark.parametrize("country", ["US", "CH"])
def test_a_jurisdiction_this_version_does_not_know_is_refused(country: str) -> None:
    raw = uk()
    raw["operator"]["nexus_country"] = country
    with pytest.raises(ConfigError, match=rf"files in {country}, which is not an EU member state, nor a jurisdiction"):
        parse_config(raw)
    raw = uk()
    raw["authorities"][country] = {"x": "1"}
    with pytest.raises(ConfigError, match=rf"\[authorities\.{country}\]: '{country}' is not an EU member state code"):
        parse_config(raw)


def test_a_uk_period_before_2024_is_refused_naming_the_key_and_the_law(tmp_path: Path) -> None:
    from reporting.pipeline import _check_period

    cfg = parse_config(uk())
    _check_period(cfg, 2024)  # SI 2023/817 applies from 1 January 2024: the first period
    with pytest.raises(ConfigError) as err:
        _check_period(cfg, 2023)
    text = str(err.value)
    assert "reporting year 2023: operator.nexus_country = 'GB'" in text
    assert "SI 2023/817" in text and "applies from the 2024 reportable period" in text
    # a group: the further operator that files in the UK (by its address) is named by its key
    raw = tomllib.loads((REPO / "dac7.toml").read_text(encoding="utf-8"))
    raw["operators"] = {"uk_ltd": uk_ltd("XMDPI0001234567")}
    group = parse_config(raw)
    _check_period(group, 2024)
    with pytest.raises(ConfigError, match=r"operators\.uk_ltd\.address\.country = 'GB'"):
        _check_period(group, 2023)
    # DAC7 (the demo operator files in LT) takes 2023, its first period
    _check_period(parse_config(tomllib.loads((REPO / "dac7.toml").read_text(encoding="utf-8"))), 2023)


@pytest.mark.parametrize(("configured", "kept"), [(["nz", "FR"], ["FR", "NZ"]), ([], []), (None, None)])
def test_the_partner_jurisdictions_survive_the_run_settings(
    configured: list[str] | None, kept: list[str] | None, tmp_path: Path
) -> None:
    """Every stage after ``prepare`` reads the configuration back from the run's settings: the
    list, the empty list (the UK alone) and its absence (HMRC's list) each come back as they were
    set (the comma-joined text the configuration keeps was refused there before)."""
    from datetime import date, datetime

    from reporting.settings import RunSettings

    cfg = parse_config(uk() if configured is None else uk(partner_jurisdictions=configured))
    settings = RunSettings(
        config=cfg,
        year=2025,
        as_of=date(2026, 1, 31),
        run_id="r1",
        timestamp=datetime(2026, 1, 31, 9),
        out_dir=str(tmp_path / "out"),
        run_dir=str(tmp_path / "run"),
    )
    data = settings.to_json()
    assert data["config"]["authorities"]["GB"].get("partner_jurisdictions") == kept
    back = RunSettings.from_json(data)
    assert partner_jurisdictions(back.config.authorities, "GB") == kept
    assert back.config.authorities == cfg.authorities
