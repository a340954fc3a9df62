"""Groups of operators in the configuration (``[operators.ID]``), the run's settings and the
choice of a run's operators: what is accepted, and what is refused with the key that is wrong."""

from __future__ import annotations

import json
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from reporting.authorities import select_profile
from reporting.config import parse_config
from reporting.errors import ConfigError
from reporting.pipeline import operator_runs, prepare, run_operators, run_problems
from reporting.pushdown import OperatorFilter
from reporting.settings import load_settings, operator_out_dir, operator_run_id

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "0e7a1f4c-2b5d-4c8e-9f3a-6d1b7c2e5a90"

DE_GMBH = {
    "name": "Demo Marktplatz GmbH",
    "tin": "12345678901",
    "tin_issued_by": "DE",
    "vat": "DE123456789",
    "nexus": "RPONEX1",
    "address": {"street": "Unter den Linden", "building": "1", "post_code": "10117", "city": "Berlin", "country": "DE"},
    "authorities": {"DE": {"bzst_id": "BZST0012345678"}},
}
LT2 = {
    "name": "Second Market UAB",
    "tin": "305555555",
    "tin_issued_by": "LT",
    "nexus": "RPONEX1",
    "address": {"city": "Kaunas", "country": "LT"},
}


def group(**operators: dict[str, Any]) -> dict[str, Any]:
    raw = tomllib.loads((REPO / "dac7.toml").read_text(encoding="utf-8"))
    raw["operators"] = operators
    return raw


# ------------------------------------------------------------------------------------ the file


def test_further_operators_are_parsed_with_the_keys_of_operator_and_their_own_identifiers() -> None:
    cfg = parse_config(group(de_gmbh=DE_GMBH, lt2=LT2))
    assert cfg.operator_ids == ("default", "de_gmbh", "lt2")  # the default first, then the file's order
    assert cfg.operator.name == "Demo Marketplace UAB" and cfg.operator_id == "default"
    de = cfg.for_operator("de_gmbh")
    assert (de.operator.name, de.operator.tin, de.operator.country, de.operator_id) == (
        "Demo Marktplatz GmbH",
        "12345678901",
        "DE",
        "de_gmbh",
    )
    assert de.operator.address.city == "Berlin" and de.operator.vat == "DE123456789"
    # its own identifiers, never the default operator's; everything else is the group's
    assert de.authorities == {"DE": {"bzst_id": "BZST0012345678"}}
    assert cfg.for_operator("lt2").authorities == {}
    assert de.reporting == cfg.reporting and de.source == cfg.source
    assert cfg.for_operator("default") is cfg
    # each operator's filing state decides its profile: the German one for de_gmbh alone
    assert select_profile("DE", de).code == "DE" and select_profile("DE", cfg).code != "DE"
    assert de.authorities_table("DE") == "operators.de_gmbh.authorities.DE"
    assert cfg.authorities_table("DE") == "authorities.DE"


def test_an_unknown_operator_is_named_only_when_it_is_an_operator_id() -> None:
    """What a person typed (``--operator``) is echoed only when it has the form of an id."""
    cfg = parse_config(group(lt2=LT2))
    with pytest.raises(ConfigError, match=r"operator 'fr_sas' is not configured; the operators are: default, lt2"):
        cfg.for_operator("fr_sas")
    with pytest.raises(ConfigError, match=r"operator \(not an operator id\) is not configured") as refused:
        cfg.for_operator("Jane Doe <jane@example.eu>")
    assert "Jane" not in str(refused.value)


@pytest.mark.parametrize("tin", ["304567891", "304 567 891", "LT304567891", "lt-304.567.891"])
def test_one_tin_written_another_way_is_still_one_legal_entity(tin: str) -> None:
    """[operator]'s TIN is 304567891 issued by LT: spaces, punctuation, case and the issuing
    state's code in front do not make another legal entity."""
    with pytest.raises(ConfigError, match=r"\[operators.lt2\] has the TIN of \[operator\] \(LT\)"):
        parse_config(group(lt2={**LT2, "tin": tin}))


def test_two_operators_under_one_identifier_of_an_authority_are_refused() -> None:
    """The French profile files [authorities.FR] siren as the operator's TIN (and in its file
    name): two operators with one SIREN would file as one entity."""
    raw = group(lt2={**LT2, "authorities": {"FR": {"siren": "555 753 159"}}})
    raw["authorities"] = {**raw.get("authorities", {}), "FR": {"siren": "555753159"}}
    with pytest.raises(ConfigError, match=r"\[operators.lt2.authorities.FR\] siren is the same as \[authorities.FR\]"):
        parse_config(raw)
    raw["operators"]["lt2"]["authorities"]["FR"]["siren"] = "555753160"
    assert parse_config(raw).for_operator("lt2").authorities == {"FR": {"siren": "555753160"}}
    # a sender's or an account's identifier (an intermediary filing for both) may be shared
    raw["authorities"]["DE"] = {"bzst_id": "BZST0012345678"}
    raw["operators"]["lt2"]["authorities"]["DE"] = {"bzst_id": "BZST0012345678"}
    assert parse_config(raw).for_operator("lt2").authorities["DE"] == {"bzst_id": "BZST0012345678"}


def test_without_operators_the_configuration_is_the_single_operator_it_was() -> None:
    raw = group()
    raw.pop("operators")
    cfg = parse_config(raw)
    assert cfg.operators == {} and cfg.operator_ids == ("default",)


def test_an_operator_missing_identifiers_of_its_profile_is_named_by_its_own_table() -> None:
    de = dict(DE_GMBH, authorities={})
    view = parse_config(group(de_gmbh=de)).for_operator("de_gmbh")
    with pytest.raises(ConfigError, match=r"needs \[operators\.de_gmbh\.authorities\.DE\] bzst_id"):
        select_profile("DE", view)


@pytest.mark.parametrize(
    ("operator_id", "expected"),
    [
        ("De_GmbH", r"'De_GmbH' is not an operator id: a lower-case letter"),
        ("1abc", r"'1abc' is not an operator id"),
        ("de-gmbh", r"'de-gmbh' is not an operator id"),
        ("a" * 33, r"32 characters at most"),
        ("default", r"\[operators\.default\]: 'default' is the id of \[operator\]"),
    ],
)
def test_an_operator_id_is_a_safe_name(operator_id: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        parse_config(group(**{operator_id: LT2}))


def test_the_longest_id_is_accepted() -> None:
    assert parse_config(group(**{"a" * 32: LT2})).operator_ids[1] == "a" * 32


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"nexsu": "RPONEX1"}, r"unknown key\(s\) in \[operators\.lt2\]: nexsu \(did you mean nexus\?\)"),
        ({"tin": None}, r"operators\.lt2\.tin is required"),
        ({"nexus": "RPONEX9"}, r"operators\.lt2\.nexus = 'RPONEX9'; expected one of RPONEX1"),
        ({"tin_issued_by": "UK"}, r"operators\.lt2\.tin_issued_by = 'UK' is not an ISO 3166"),
        ({"address": {"city": "Oslo", "country": "NO"}}, r"the operator of \[operators\.lt2\] files in NO"),
        ({"address": {"country": "LT"}}, r"operators\.lt2\.address\.city is required"),
        ({"address": {"city": "Kaunas", "country": "LT", "zip": "1"}}, r"in \[operators\.lt2\.address\]: zip"),
        ({"name": "Market\x07UAB"}, r"operators\.lt2\.name"),
        ({"authorities": {"US": {"x": "1"}}}, r"\[operators\.lt2\.authorities\.US\]: 'US' is not an EU member"),
        ({"tin": "304567891"}, r"\[operators\.lt2\] has the TIN of \[operator\] \(LT\): one legal entity"),
    ],
)
def test_a_mistake_in_a_further_operator_names_its_key(change: dict[str, Any], expected: str) -> None:
    lt2 = {k: v for k, v in {**LT2, **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=expected):
        parse_config(group(lt2=lt2))


def test_two_further_operators_with_one_tin_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"\[operators\.b\] has the TIN of \[operators\.a\]"):
        parse_config(group(a=LT2, b=dict(LT2, name="Another name")))


def test_operators_must_be_tables() -> None:
    with pytest.raises(ConfigError, match=r"\[operators\.lt2\] must be a table"):
        parse_config(group(lt2="Second Market UAB"))  # type: ignore[arg-type]
    raw = group()
    raw["operators"] = "lt2"
    with pytest.raises(ConfigError, match=r"\[operators\] must be a table"):
        parse_config(raw)


# ------------------------------------------------------------------------------------ the run


def test_the_default_operator_keeps_the_run_id_and_output_and_the_others_get_their_own() -> None:
    assert operator_run_id(RUN_ID, "default") == RUN_ID
    lt2 = operator_run_id(RUN_ID, "lt2")
    assert lt2 != RUN_ID and lt2 == operator_run_id(RUN_ID, "lt2")  # a rerun of the run: the same ids
    assert operator_run_id(RUN_ID, "de_gmbh") not in (RUN_ID, lt2)
    assert operator_out_dir("out/2025", "default") == Path("out/2025")
    assert operator_out_dir("out/2025", "lt2") == Path("out/2025/operators/lt2")


def test_a_run_files_for_the_operators_named_or_every_one() -> None:
    cfg = parse_config(group(de_gmbh=DE_GMBH, lt2=LT2))
    assert run_operators(cfg, None) == ["default", "de_gmbh", "lt2"]
    assert run_operators(cfg, ["lt2", "default"]) == ["default", "lt2"]  # in the configuration's order
    # a filing narrowed to authorities: the operators that file there
    assert run_operators(cfg, None, authorities=["DE"]) == ["de_gmbh"]
    assert run_operators(cfg, None, authorities=["LT"]) == ["default", "lt2"]
    with pytest.raises(ConfigError, match=r"operator\(s\) 'fr_sas': not configured; the operators of .* are default"):
        run_operators(cfg, ["fr_sas"])
    with pytest.raises(ConfigError, match=r"\(not an operator id\)"):
        run_operators(cfg, ["Robert'); drop table"])
    with pytest.raises(ConfigError, match=r"no operator of the run files there \(lt2 in LT\)"):
        run_operators(cfg, ["lt2"], authorities=["DE"])
    # what an authority asked of one operator is filed for that operator alone
    with pytest.raises(ConfigError, match=r"mode correction files what an authority asked of one operator"):
        run_operators(cfg, None, mode="correction")
    assert run_operators(cfg, ["lt2"], mode="correction") == ["lt2"]


def test_the_trigger_page_sees_what_prepare_refuses() -> None:
    cfg = parse_config(group(de_gmbh=DE_GMBH))
    assert run_problems(cfg, environment="test", authorities=["DE"]) == []
    assert run_problems(cfg, environment="test", authorities=["FR"])[0].startswith("Refused for authorities FR")
    assert "name it" in run_problems(cfg, environment="test", mode="nil")[0]


def test_prepare_stages_one_run_per_operator_with_its_own_settings(tmp_path: Path) -> None:
    config = tmp_path / "dac7.toml"
    config.write_text(
        (REPO / "dac7.toml").read_text(encoding="utf-8")
        + '\n[operators.lt2]\nname = "Second Market UAB"\ntin = "305555555"\ntin_issued_by = "LT"\nnexus = "RPONEX1"\n'
        '\n[operators.lt2.address]\ncity = "Kaunas"\ncountry = "LT"\n',
        encoding="utf-8",
    )
    args: dict[str, Any] = {
        "config_path": config,
        "year": 2025,
        "out_dir": tmp_path / "out",
        "staging_root": tmp_path / "staging",
        "timestamp": datetime(2026, 1, 15, 12, 0),
        "as_of": date(2026, 1, 15),
        "run_id": RUN_ID,
        "ledger_url": f"sqlite:///{tmp_path}/ledger.sqlite3",
    }
    lead = prepare(**args)
    runs = operator_runs(lead)
    assert [op for op, _ in runs] == ["default", "lt2"]
    assert runs[0][1] == lead and runs[1][1] == str(Path(lead) / "operators" / "lt2")
    default, lt2 = (load_settings(d) for _, d in runs)
    assert (default.operator_id, default.run_id, default.out_dir) == ("default", RUN_ID, str(tmp_path / "out"))
    assert (lt2.operator_id, lt2.run_id) == ("lt2", operator_run_id(RUN_ID, "lt2"))
    assert lt2.out_dir == str(tmp_path / "out" / "operators" / "lt2")
    assert lt2.config.operator.name == "Second Market UAB" and lt2.operator_ids == ("default", "lt2")
    assert Path(runs[1][1]).stat().st_mode & 0o777 == 0o700  # staging holds personal data
    # a rerun for one operator: that operator alone, in a run of its own
    only = prepare(**{**args, "run_id": "9b1c2d3e-4f50-4a6b-8c7d-8e9f0a1b2c3d", "operators": ["lt2"]})
    assert [op for op, _ in operator_runs(only)] == ["lt2"]
    assert load_settings(only).out_dir == str(tmp_path / "out" / "operators" / "lt2")
    with pytest.raises(ConfigError, match="not configured"):
        prepare(**{**args, "operators": ["nobody"]})


def test_a_single_operators_settings_are_written_as_before(tmp_path: Path) -> None:
    lead = prepare(
        config_path=REPO / "dac7.toml",
        year=2025,
        out_dir=tmp_path / "out",
        staging_root=tmp_path,
        timestamp=datetime(2026, 1, 15, 12, 0),
        as_of=date(2026, 1, 15),
        ledger_url=f"sqlite:///{tmp_path}/ledger.sqlite3",
    )
    written = json.loads((Path(lead) / "settings.json").read_text(encoding="utf-8"))
    assert "operator_id" not in written and "operator_ids" not in written
    assert not (Path(lead) / "operators.json").exists()
    assert operator_runs(lead) == [("default", lead)]


# ------------------------------------------------------------------ which transactions are whose

VALUES = [None, "", "   ", "default", " default ", "lt2", "  lt2", "LT2", "lt2\t", "Default", "fr_sas", "lt22"]
#: by the contract's reading: trimmed of spaces, compared exactly
EXPECTED = ["default"] * 5 + ["lt2", "lt2"] + [None] * 5


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_each_transaction_is_one_operators_or_no_operators(engine: str) -> None:
    """The conditions of the queries: every value of operator_id is taken by exactly one
    operator's run, or is the unknown operator that stops the run; never both, never two."""
    group_ids = ("default", "lt2")
    scopes = {op: OperatorFilter(op, group_ids, column=True) for op in group_ids}
    value = OperatorFilter.value("operator_id", engine)
    columns = [f"case when {s.mine(value)} then 1 else 0 end" for s in scopes.values()]
    columns.append(f"case when {scopes['default'].unknown(value)} then 1 else 0 end")
    sql = f"select {', '.join(columns)} from t order by i"
    if engine == "sqlite":
        import sqlite3

        con: Any = sqlite3.connect(":memory:")
    else:
        con = duckdb.connect()
    con.execute("create table t (i integer, operator_id varchar)")
    con.executemany("insert into t values (?, ?)", list(enumerate(VALUES)))
    rows = con.execute(sql).fetchall()
    con.close()
    owners = [("default", "lt2", None)[r.index(1)] for r in rows]
    assert all(sum(r) == 1 for r in rows)
    assert owners == EXPECTED


def test_a_source_without_the_column_is_the_default_operators() -> None:
    default = OperatorFilter("default", ("default", "lt2"), column=False)
    lt2 = OperatorFilter("lt2", ("default", "lt2"), column=False)
    assert default.everything and not lt2.everything
    assert (default.mine("x"), lt2.mine("x"), default.unknown("x")) == ("1 = 1", "1 = 0", "1 = 0")
    assert OperatorFilter().everything  # a single operator's run: the queries as they always were


@pytest.mark.parametrize(
    ("operator_id", "known"), [("lt2", ("default",)), ("x'; --", ("default", "x'; --")), ("lt2", ("lt2",))]
)
def test_only_configured_safe_ids_are_written_into_sql(operator_id: str, known: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="not operator ids of a configuration"):
        OperatorFilter(operator_id, known, column=True)


# ------------------------------------------------- an operator of the group and other operators

MOTOLOC = {
    "name": "MotoLoc.fr",
    "tin": "555852446",
    "tin_issued_by": "FR",
    "address": {
        "street": "rue Bernard Ouillon",
        "building": "25",
        "post_code": "92200",
        "city": "Neuilly",
        "country": "FR",
    },
}
#: [operator] of dac7.toml, as another operator's table names it
DEMO = {
    "name": "Demo Marketplace UAB",
    "tin": "304567891",
    "tin_issued_by": "LT",
    "address": {"city": "Vilnius", "country": "LT"},
}


def test_a_further_operator_carries_its_own_assumed_and_assuming_operators() -> None:
    """[[operators.ID.assumed_operators]] and [operators.ID.assuming_operator] belong to that
    operator's filing alone; [operator]'s are its own."""
    lt2 = dict(LT2, assumed_operators=[MOTOLOC])
    de = dict(DE_GMBH, assuming_operator=dict(MOTOLOC, name="MotoLoc SAS"))
    cfg = parse_config(group(lt2=lt2, de_gmbh=de))
    assert cfg.operator.assumed_operators == () and cfg.operator.assuming_operator is None
    (assumed,) = cfg.for_operator("lt2").operator.assumed_operators
    assert (assumed.name, assumed.tin, assumed.tin_issued_by, assumed.address.city) == (
        "MotoLoc.fr",
        "555852446",
        "FR",
        "Neuilly",
    )
    assert cfg.for_operator("lt2").operator.assuming_operator is None
    de_view = cfg.for_operator("de_gmbh").operator
    assert de_view.assumed_operators == () and de_view.assuming_operator is not None
    assert de_view.assuming_operator.name == "MotoLoc SAS"
    assert cfg.group_operator_of(assumed) is None  # outside the group


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"assumed_operators": [dict(MOTOLOC, tin=None)]}, r"operators\.lt2\.assumed_operators\[1\]\.tin is required"),
        (
            {"assumed_operators": [MOTOLOC, dict(MOTOLOC, name="Again")]},
            r"operators\.lt2\.assumed_operators\[2\] has the TIN of operators\.lt2\.assumed_operators\[1\]",
        ),
        (
            {"assumed_operators": MOTOLOC},
            r"operators\.lt2\.assumed_operators must be an array of tables: write "
            r"\[\[operators\.lt2\.assumed_operators\]\]",
        ),
        ({"assuming_operator": [MOTOLOC]}, r"operators\.lt2\.assuming_operator must be one table"),
        (
            {"assumed_operators": [MOTOLOC], "assuming_operator": dict(MOTOLOC, tin="1")},
            r"\[\[operators\.lt2\.assumed_operators\]\] and \[operators\.lt2\.assuming_operator\] are both given",
        ),
        (
            {"assuming_operator": dict(MOTOLOC, tin="305555555", tin_issued_by="LT")},
            r"operators\.lt2\.assuming_operator has the operator's own TIN",
        ),
        (
            {"assumed_operators": [dict(MOTOLOC, address={"city": "Paris", "country": "FR", "zip": "1"})]},
            r"unknown key\(s\) in \[operators\.lt2\.assumed_operators\[1\]\.address\]: zip",
        ),
        (
            {"assuming_operator": dict(MOTOLOC, name="Moto\u202eLoc")},
            r"operators\.lt2\.assuming_operator\.name",
        ),
    ],
)
def test_a_mistake_in_a_further_operators_other_operators_names_its_key(change: dict[str, Any], expected: str) -> None:
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    with pytest.raises(ConfigError, match=expected):
        parse_config(group(lt2=clean({**LT2, **change})))


def test_an_assumption_within_the_group_is_declared_by_both_operators() -> None:
    """[operator] assumes the reporting of lt2, an operator of the group: lt2 names [operator] as
    its assuming operator and [operator] names lt2 among its assumed operators, or the
    configuration is refused, naming both tables."""
    lt2_as_other = {k: LT2[k] for k in ("name", "tin", "tin_issued_by", "address")}
    both = group(lt2=dict(LT2, assuming_operator=DEMO))
    both["assumed_operators"] = [lt2_as_other]
    cfg = parse_config(both)
    assert cfg.for_operator("lt2").operator.assuming_operator is not None
    assert cfg.group_operator_of(cfg.for_operator("lt2").operator.assuming_operator) == "default"  # type: ignore[arg-type]
    assert cfg.group_operator_of(cfg.operator.assumed_operators[0]) == "lt2"

    only_assuming = group(lt2=LT2)
    only_assuming["assumed_operators"] = [lt2_as_other]
    with pytest.raises(
        ConfigError,
        match=r"assumed_operators\[1\] is \[operators\.lt2\] of this group, which does not name \[operator\] as its "
        r"operators\.lt2\.assuming_operator",
    ):
        parse_config(only_assuming)
    with pytest.raises(
        ConfigError,
        match=r"operators\.lt2\.assuming_operator is \[operator\] of this group, whose assumed_operators do not name "
        r"\[operators\.lt2\]",
    ):
        parse_config(group(lt2=dict(LT2, assuming_operator=DEMO)))
    # two further operators: de_gmbh assumes lt2's reporting
    de_as_other = {k: DE_GMBH[k] for k in ("name", "tin", "tin_issued_by", "address")}
    cfg = parse_config(
        group(lt2=dict(LT2, assuming_operator=de_as_other), de_gmbh=dict(DE_GMBH, assumed_operators=[lt2_as_other]))
    )
    assert cfg.group_operator_of(cfg.for_operator("lt2").operator.assuming_operator) == "de_gmbh"  # type: ignore[arg-type]


def test_the_settings_of_a_further_operators_run_keep_its_other_operators(tmp_path: Path) -> None:
    """An operator's run reads its other operators back from its settings, as its stages do."""
    config = tmp_path / "dac7.toml"
    config.write_text(
        (REPO / "dac7.toml").read_text(encoding="utf-8")
        + '\n[operators.lt2]\nname = "Second Market UAB"\ntin = "305555555"\ntin_issued_by = "LT"\nnexus = "RPONEX1"\n'
        '\n[operators.lt2.address]\ncity = "Kaunas"\ncountry = "LT"\n'
        '\n[[operators.lt2.assumed_operators]]\nname = "MotoLoc.fr"\ntin = "555852446"\ntin_issued_by = "FR"\n'
        '\n[operators.lt2.assumed_operators.address]\ncity = "Neuilly"\ncountry = "FR"\n',
        encoding="utf-8",
    )
    lead = prepare(
        config_path=config,
        year=2025,
        out_dir=tmp_path / "out",
        staging_root=tmp_path / "staging",
        timestamp=datetime(2026, 1, 15, 12, 0),
        as_of=date(2026, 1, 15),
        run_id=RUN_ID,
        ledger_url=f"sqlite:///{tmp_path}/ledger.sqlite3",
    )
    (_, default_dir), (_, lt2_dir) = operator_runs(lead)
    default, lt2 = load_settings(default_dir), load_settings(lt2_dir)
    assert default.config.operator.assumed_operators == () and default.assumed_by is None
    assert [o.name for o in lt2.config.operator.assumed_operators] == ["MotoLoc.fr"]
    assert lt2.config.operator.assuming_operator is None and lt2.assumed_by is None
