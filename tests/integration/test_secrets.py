"""Secrets in database URLs: an explicit ``--ledger`` always wins and its password travels in
memory only; a secret in a query parameter (``?password=``, ``?sslpassword=``, an Airflow
Connection's extra) is masked wherever a URL is shown or stored."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from builders import Marketplace, write_config

from reporting.cli import main
from reporting.config import parse_config
from reporting.errors import ConfigError
from reporting.ledger import open_ledger
from reporting.shared_staging import SharedStaging
from reporting.source import has_secret, safe_url

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql+psycopg://dac7:{SECRET}@db.example/dac7", "postgresql+psycopg://dac7:***@db.example/dac7"),
        (
            f"postgresql+psycopg://dac7@db.example/dac7?sslmode=verify-full&sslpassword={SECRET}",
            "postgresql+psycopg://dac7@db.example/dac7?sslmode=verify-full&sslpassword=***",
        ),
        (
            f"mysql+pymysql://dac7@db/dac7?charset=utf8mb4&password={SECRET}",
            "mysql+pymysql://dac7@db/dac7?charset=utf8mb4&password=***",
        ),
        (
            f"postgresql://u@h/d?PASSWORD={SECRET}&application_name=dac7",
            "postgresql://u@h/d?PASSWORD=***&application_name=dac7",
        ),
        (f"postgresql://u@h/d?auth_token={SECRET}", "postgresql://u@h/d?auth_token=***"),
        (f"postgresql://u:{SECRET}@h/d?passwd={SECRET}", "postgresql://u:***@h/d?passwd=***"),
        (f"postgresql://u:{SECRET}@x@db.example/dac7", "postgresql://***@db.example/dac7"),  # "@" unencoded
        (f"postgresql://u@h/d?X-Amz-Signature={SECRET}", "postgresql://u@h/d?X-Amz-Signature=***"),
    ],
)
def test_every_secret_of_a_url_is_masked(url: str, shown: str) -> None:
    assert has_secret(url)
    assert safe_url(url) == shown
    assert SECRET not in safe_url(url)


def test_ordinary_parameters_are_shown_and_are_no_secret() -> None:
    url = "postgresql+psycopg://dac7@db/dac7?sslmode=require&sslkey=/etc/dac7/client.key&application_name=dac7"
    assert not has_secret(url)
    assert not has_secret("postgresql://dac7@db/ledger?passfile=/run/secrets/pgpass")  # a path, not a secret
    assert "sslkey=" in safe_url(url) and "sslmode=require" in safe_url(url)
    assert safe_url(f"not a url {SECRET}") == "(not a database URL)"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            f"s3://key:{SECRET}@bucket/dac7?region=eu-west-1&secret_access_key={SECRET}&token={SECRET}",
            "s3://bucket/dac7?region=eu-west-1&secret_access_key=***&token=***",
        ),
        (f"gs://bucket?token={SECRET}", "gs://bucket?token=***"),  # no path: the query after the host
        (f"s3://KEY:{SECRET}/x@bucket/prefix", "s3://bucket/prefix"),  # "/" unencoded in the password
        (f"s3://KEY:{SECRET}?x@bucket/prefix", "s3://bucket/prefix"),  # "?" unencoded in the password
        ("s3://bucket/path@2025/x", "s3://bucket/path@2025/x"),  # an "@" in the path is no user part
        (f"sftp://user:{SECRET}@host:22/p#token={SECRET}", "sftp://host:22/p"),
    ],
)
def test_shared_staging_urls_are_shown_without_secrets(url: str, shown: str) -> None:
    staging = SharedStaging(fs=None, root="bucket/dac7", url=url)
    assert staging.url_for_log() == shown


def test_a_url_that_cannot_be_parsed_is_never_quoted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "run",
        "--config",
        str(write_config(tmp_path / "dac7.toml")),
        "--year",
        "2025",
        "--out",
        str(tmp_path / "o"),
        "--staging",  # not the default .dac7/staging of the checkout
        str(tmp_path / "st"),
    ]
    for url in (f"postgres ql://u:{SECRET}@h/db", f"postgresql://u:{SECRET}@h:notaport/db"):
        assert main([*args, "--source", url, "--ledger", f"sqlite:///{tmp_path}/l.db"]) == 2
        assert main([*args, "--source", f"sqlite:///{tmp_path}/s.db", "--ledger", url]) == 2
        err = capsys.readouterr().err
        assert "not a usable database URL" in err and SECRET not in err


def test_a_secret_query_parameter_in_the_configuration_is_refused() -> None:
    raw = {
        "operator": {
            "name": "Demo Marketplace UAB",
            "tin": "304567891",
            "tin_issued_by": "LT",
            "nexus": "RPONEX1",
            "address": {"city": "Vilnius", "country": "LT"},
        },
        "ledger": {"url": f"postgresql://dac7@db/ledger?sslpassword={SECRET}"},
    }
    with pytest.raises(ConfigError) as raised:
        parse_config(raw)
    assert "secrets never go in the configuration file" in str(raised.value)
    assert SECRET not in str(raised.value)


def _market() -> Marketplace:
    m = Marketplace()
    m.seller("S1")
    m.sales("S1", 30, 10_00)
    return m


@pytest.mark.pg
def test_an_explicit_ledger_with_a_password_wins_over_the_environment(
    tmp_path: Path,
    pg_databases,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``--ledger`` with a password used to be replaced by $DAC7_LEDGER_URL: the filing went into
    the wrong ledger. The server trusts local connections, so the password is never checked; it
    must be found nowhere the run writes."""
    explicit = sa.make_url(pg_databases("dac7_explicit")).set(password=SECRET)
    explicit_url = explicit.render_as_string(hide_password=False) + f"?application_name=dac7&sslpassword={SECRET}"
    other = f"sqlite:///{tmp_path}/other-ledger.sqlite3"
    monkeypatch.setenv("DAC7_LEDGER_URL", other)
    source = _market().write(f"sqlite:///{tmp_path}/source.db")
    args = ["run", "--config", str(write_config(tmp_path / "dac7.toml")), "--source", source, "--year", "2025"]
    args += ["--as-of", "2026-01-31", "--out", str(tmp_path / "out"), "--staging", str(tmp_path / "st")]
    with caplog.at_level(logging.DEBUG):
        assert main(["--verbose", *args, "--ledger", explicit_url]) == 0
    with open_ledger(explicit_url) as ledger:
        assert [m.status for m in ledger.messages()] == ["published"]
    assert not Path(f"{tmp_path}/other-ledger.sqlite3").exists()  # the environment's ledger was not touched
    out = capsys.readouterr()
    written = [p for root in (tmp_path / "out", tmp_path / "st") for p in root.rglob("*") if p.is_file()]
    assert written
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in out.out + out.err + caplog.text
    [settings] = (tmp_path / "st").glob("*/settings.json")
    stored = json.loads(settings.read_text())
    assert stored["ledger_url"] is None
    assert (
        stored["ledger_shown"].endswith("?application_name=dac7&sslpassword=***") and ":***@" in stored["ledger_shown"]
    )


def test_a_stage_in_another_process_refuses_another_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run prepared with a ledger whose password stays in memory: a later stage in a process
    without it never falls back to a different $DAC7_LEDGER_URL."""
    from reporting import pipeline
    from reporting import settings as run

    source = _market().write(f"sqlite:///{tmp_path}/source.db")
    secret_ledger = f"sqlite:///{tmp_path}/ledger.sqlite3?token={SECRET}"
    run_dir = pipeline.prepare(
        config_path=write_config(tmp_path / "dac7.toml"),
        source_url=source,
        year=2025,
        as_of=date(2026, 1, 31),
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "st",
        ledger_url=secret_ledger,
    )
    settings = run.load_settings(run_dir)
    monkeypatch.setattr(run, "_SECRET_URLS", {})  # another process: nothing in memory
    from reporting.stages.plan import ledger_url

    monkeypatch.delenv("DAC7_LEDGER_URL", raising=False)
    with pytest.raises(ConfigError, match="whose password is kept in the memory of the process that prepared it"):
        ledger_url(settings)
    monkeypatch.setenv("DAC7_LEDGER_URL", f"sqlite:///{tmp_path}/another.sqlite3")
    with pytest.raises(ConfigError, match="a filing is recorded in the ledger of its run only") as raised:
        ledger_url(settings)
    assert SECRET not in str(raised.value)
    monkeypatch.setenv("DAC7_LEDGER_URL", secret_ledger)  # the same ledger, from the environment
    assert ledger_url(settings) == secret_ledger
