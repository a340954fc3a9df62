"""``[source.spark]``: where Apache Spark reads the contract's tables. Exactly one of ``tables``
and ``database``; unknown keys, a second source and secrets are refused with the key named; the
settings of a run carry it to every stage."""

from __future__ import annotations

import json
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from reporting.config import Spark, parse_config, spark_conf
from reporting.errors import ConfigError
from reporting.pipeline import prepare
from reporting.settings import load_settings

REPO = Path(__file__).resolve().parents[2]


def config(spark: dict[str, Any] | None, **source: Any) -> dict[str, Any]:
    raw = tomllib.loads((REPO / "dac7.toml").read_text(encoding="utf-8"))
    raw["source"] = dict(source)
    if spark is not None:
        raw["source"]["spark"] = spark
    return raw


def test_a_folder_of_parquet_tables() -> None:
    cfg = parse_config(config({"tables": "/data/dac7"}, aggregate="source"))
    assert cfg.spark == Spark(tables="/data/dac7", master="local[*]")
    assert (cfg.source, cfg.aggregate) == (None, "source")
    assert cfg.spark.where == "Parquet tables in /data/dac7"


def test_a_catalog_database_with_the_operators_spark_settings() -> None:
    spark = {
        "database": "lake.dac7",
        "master": "local[2]",
        "conf": {"spark.sql.catalogImplementation": "hive", "spark.driver.maxResultSize": 0, "spark.x.on": True},
    }
    cfg = parse_config(config(spark))
    assert cfg.spark == Spark(
        database="lake.dac7",
        master="local[2]",
        conf={"spark.sql.catalogImplementation": "hive", "spark.driver.maxResultSize": "0", "spark.x.on": "true"},
    )
    assert cfg.spark.where == "the Spark database lake.dac7"


@pytest.mark.parametrize(
    "tables",
    [
        "abfss://container@account.dfs.core.windows.net/dac7",
        "wasbs://container@account.blob.core.windows.net/dac7",
        "s3a://bucket/dac7",
        "hdfs://namenode:8020/dac7",
    ],
)
def test_a_container_before_at_is_no_secret(tables: str) -> None:
    """Azure's paths name their container before '@': only ``user:password@`` is a credential."""
    spark = {"tables": tables, "master": "spark://spark.example:7077"}
    assert parse_config(config(spark)).spark == Spark(tables=tables, master="spark://spark.example:7077")


def test_no_spark_table_no_spark_source() -> None:
    assert parse_config(config(None, url="sqlite:///x.db")).spark is None


@pytest.mark.parametrize(
    ("spark", "message"),
    [
        ({"tables": "/data", "database": "dac7"}, r"exactly one of tables .* or database .*, not both"),
        ({}, r"exactly one of tables .* or database .*, and has neither"),
        ({"master": "local[2]"}, r"and has neither"),
        (
            {"tables": "/data", "tabels": "x"},
            r"unknown key\(s\) in \[source\.spark\]: tabels \(did you mean tables\?\)",
        ),
        ({"database": "dac7; drop"}, r"source\.spark\.database = 'dac7; drop' is not a Spark database name"),
        ({"tables": 7}, r"source\.spark\.tables must be a string"),
        ({"tables": "s3a://AKIA:secret@bucket/dac7"}, r"source\.spark\.tables holds a password \(user:password@\)"),
        ({"tables": "abfss://c@acct.dfs.core.windows.net/d?sig=x"}, r"source\.spark\.tables holds a password"),
        ({"tables": "/data", "master": "k8s://https://u:p@k8s.example:443"}, r"source\.spark\.master holds a"),
        ({"tables": "/data", "master": "spark://u:p@spark.example:7077"}, r"source\.spark\.master holds a"),
        ({"tables": "/data", "conf": {"fs.s3a.endpoint": "x"}}, r"'fs\.s3a\.endpoint': not a Spark setting"),
        (
            {"tables": "/data", "conf": {"spark.hadoop.fs.s3a.secret.key": "x"}},
            r"'spark\.hadoop\.fs\.s3a\.secret\.key' holds a secret",
        ),
        ({"tables": "/data", "conf": {"spark.driver.memory": ["4g"]}}, r"must be a string, a number or true/false"),
        ("/data", r"\[source\.spark\] must be a table"),
    ],
)
def test_mistakes_name_the_key(spark: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(config(spark))


def test_a_url_and_spark_are_two_sources() -> None:
    with pytest.raises(ConfigError, match=r"\[source\] url and \[source\.spark\] name two sources; a run reads one"):
        parse_config(config({"tables": "/data"}, url="sqlite:///x.db"))


def _config_file(tmp_path: Path, spark: str) -> Path:
    text = (REPO / "dac7.toml").read_text(encoding="utf-8")
    text = text.replace('url = "sqlite:///.demo/marketplace.db"', f'aggregate = "source"\n\n[source.spark]\n{spark}\n')
    path = tmp_path / "dac7.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_run_settings_carry_it_to_every_stage(tmp_path: Path) -> None:
    path = _config_file(tmp_path, 'database = "dac7"\n\n[source.spark.conf]\n"spark.driver.memory" = "2g"')
    run_dir = prepare(
        config_path=path,
        year=2025,
        out_dir=tmp_path / "out",
        as_of=date(2026, 1, 31),
        staging_root=tmp_path / "staging",
        timestamp=datetime(2026, 1, 15, 12, 0),
    )
    settings = load_settings(run_dir)
    assert settings.config.spark == Spark(database="dac7", conf_keys=("spark.driver.memory",))
    assert (settings.config.aggregate, settings.source_url) == ("source", None)
    assert spark_conf(settings.config) == {"spark.driver.memory": "2g"}, "the values come from the file again"


def test_the_run_settings_record_the_names_of_the_spark_settings_never_their_values(tmp_path: Path) -> None:
    """A value of [source.spark.conf] may be sensitive (an endpoint, a principal): settings.json,
    and run_settings.json copied from it, hold its name only; a stage reads the value from the
    configuration file again, and refuses a file whose settings changed since the run started."""
    conf = (
        '"spark.driver.memory" = "2g"\n"spark.hadoop.fs.azure.account.oauth2.client.endpoint" = "https://login/t-9f3a"'
    )
    path = _config_file(tmp_path, f'tables = "/data"\n\n[source.spark.conf]\n{conf}')
    run_dir = prepare(
        config_path=path,
        year=2025,
        out_dir=tmp_path / "out",
        as_of=date(2026, 1, 31),
        staging_root=tmp_path / "staging",
        timestamp=datetime(2026, 1, 15, 12, 0),
    )
    run_dir = Path(run_dir)
    recorded = (run_dir / "settings.json").read_text(encoding="utf-8")
    assert "t-9f3a" not in recorded and "2g" not in recorded
    assert json.loads(recorded)["config"]["source"]["spark"] == {
        "tables": "/data",
        "master": "local[*]",
        "conf_keys": ["spark.driver.memory", "spark.hadoop.fs.azure.account.oauth2.client.endpoint"],
    }
    settings = load_settings(run_dir)
    assert settings.config.spark is not None and settings.config.spark.conf == {}
    assert spark_conf(settings.config)["spark.hadoop.fs.azure.account.oauth2.client.endpoint"] == "https://login/t-9f3a"
    settings.save()  # a stage that saves the settings again still records the names only
    assert "t-9f3a" not in (run_dir / "settings.json").read_text(encoding="utf-8")
    assert load_settings(run_dir).config.spark == settings.config.spark
    path.write_text(path.read_text(encoding="utf-8").replace('"spark.driver.memory" = "2g"\n', ""), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[source\.spark\.conf\] settings are not those the run started with"):
        spark_conf(load_settings(run_dir).config)


def test_a_source_url_given_to_a_spark_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[source\.spark\] names the source's tables and a source URL was given"):
        prepare(
            config_path=_config_file(tmp_path, 'tables = "/data/dac7"'),
            year=2025,
            out_dir=tmp_path / "out",
            as_of=date(2026, 1, 31),
            staging_root=tmp_path / "staging",
            timestamp=datetime(2026, 1, 15, 12, 0),
            source_url="sqlite:///x.db",
        )
