"""The DuckDB screen of the data checks (reporting.checks.data): a table it finds clean gets the
validation result Great Expectations gives over pandas, and it finds every defect the suites
look for.

Each good staged layout of test_data_checks is checked by ``run_data_checks`` with the screen and
a sample of one row (every table of more than one row is screened), and validated table by table
by Great Expectations over the whole frame: the screen's figures are compared with Great
Expectations' own counts, and a screened table's results with Great Expectations' results, field
by field. The bad layouts (the extract's with integer amounts, so that its transactions and
refunds are screened too) are only screened: their truth is test_data_checks' ``BAD``, where
Great Expectations fails every expectation (but the column types, which only float amounts
break).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_data_checks import AS_OF_END, BAD, PERIOD, PERIOD_END, PERIOD_START, STAGERS, TYPES, YEAR

from reporting.checks import data as datachecks
from reporting.checks.data import DataCheckReport, load_suite, run_data_checks
from reporting.checks.screen import Figures, screen

pytestmark = [pytest.mark.timeout(120)]

PARAMS = datachecks.expectation_parameters(
    as_of_end_utc=AS_OF_END, period_start_utc=PERIOD_START, period_end_utc=PERIOD_END
)
SQL_PARAMS = {"year_end": date(YEAR, 12, 31), "as_of_end": AS_OF_END}


def stage_bad_extract_integers(run_dir: Path) -> None:
    """The bad extract with its amounts staged as integers (the bad layout stages them as floats
    for the type checks, and the screen leaves float columns to Great Expectations)."""
    STAGERS["extract"][1](run_dir)
    for rel in ("extract/transactions.parquet", "extract/refunds.parquet"):
        table = pq.read_table(run_dir / rel)
        for i, field in enumerate(table.schema):
            if pa.types.is_floating(field.type):
                table = table.set_column(i, field.name, table.column(i).cast(pa.int64()))
        pq.write_table(table, run_dir / rel)


LAYOUTS = {
    **{(stage, "good"): good for stage, (good, _) in STAGERS.items()},
    **{(stage, "bad"): bad for stage, (_, bad) in STAGERS.items() if stage != "extract"},
    ("extract", "bad-integers"): stage_bad_extract_integers,
}
# The expectations of test_data_checks' BAD (those Great Expectations fails in the bad layouts)
# that pass once the extract's amounts are integers: the amounts' types.
PASSING_WHEN_BAD = {
    ("extract", "transactions", f"{TYPES}.{column}") for column in ("amount_minor", "fee_minor", "tax_minor")
} | {("extract", "refunds", f"{TYPES}.amount_minor")}
# Tables whose suite has an expectation the screen leaves to Great Expectations: a regular
# expression (DuckDB's and Python's differ) and a unique pair of columns (float amounts too: see
# the end of this module).
UNSCREENED = {("extract", "fx_rates"), ("aggregates", "decisions")}


@dataclass
class Table:
    figures: tuple[int, list[Figures]] | None
    pandas: Any  # Great Expectations' validation result over the whole frame (good layouts)
    screened: Any  # the result made from the screen, or None where the table was not screened
    screened_failed: Any


@dataclass
class Layouts:
    tables: dict[tuple[str, str, str], Table]
    reports: dict[str, DataCheckReport]  # the good layouts' runs with the screen
    docs: Path  # the Data Docs of the good extract's run


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> Layouts:
    from great_expectations.core.run_identifier import RunIdentifier

    datachecks._import_gx()
    tables: dict[tuple[str, str, str], Table] = {}
    reports: dict[str, DataCheckReport] = {}
    docs = tmp_path_factory.mktemp("docs")
    summarise = datachecks._summarise
    for (stage, quality), stager in LAYOUTS.items():
        run_dir = tmp_path_factory.mktemp(f"{stage}-{quality}")
        stager(run_dir)
        suite = load_suite(stage)
        made: dict[str, tuple[Any, Any]] = {}  # each table's result in the run, if screened
        if quality == "good":

            def spy(t: Any, validation: Any, failed: Any, made: dict[str, tuple[Any, Any]] = made) -> Any:
                if "screened_rows" in validation.meta:
                    made[t.table] = (validation, failed)
                return summarise(t, validation, failed)

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(datachecks, "_summarise", spy)
                reports[stage] = run_data_checks(
                    run_dir, stage, docs_dir=docs if stage == "extract" else None, screen_sample_rows=1, **PERIOD
                )
        context = datachecks._context(None)
        run_id = RunIdentifier(run_name="screen")
        con = datachecks._connect(run_dir, suite)
        try:
            for t in suite.tables:
                sql = datachecks._frame_sql(t)
                used = {n: SQL_PARAMS[n] for n in set(datachecks._SQL_PARAMETER.findall(sql))}
                if quality == "good":
                    pandas, failed = datachecks._validate_table(
                        context, suite, t, con, SQL_PARAMS, PARAMS, run_id, 10**6
                    )
                    assert not failed
                    validation, screened_failed = made.get(t.table, (None, None))
                else:  # not screened: the screen finds the defects
                    pandas = None
                    gx_table = datachecks._register(context, suite, t)
                    declined = datachecks._screened(
                        context, suite, gx_table, t, con, run_dir, SQL_PARAMS, PARAMS, run_id, 1
                    )
                    # declined, or (a table of the SQL of at most the sample's rows) validated whole
                    assert declined is None or "screened_rows" not in declined[0].meta
                    validation = screened_failed = None
                tables[(stage, quality, t.table)] = Table(
                    figures=screen(con, sql, used, t.expectations, PARAMS),
                    pandas=pandas,
                    screened=validation,
                    screened_failed=screened_failed,
                )
        finally:
            con.close()
    return Layouts(tables=tables, reports=reports, docs=docs)


def by_rule(validation: Any) -> dict[str, Any]:
    return {datachecks._rule(r.expectation_config.type, r.expectation_config.kwargs): r for r in validation.results}


def comparable(result: Any) -> dict[str, Any]:
    """A result as JSON, without the id its Data Context gives the expectation's configuration
    (the run's context and the fixture's are two)."""
    out = result.to_json_dict()
    out["expectation_config"].pop("id")
    return out


def test_the_screen_counts_what_great_expectations_counts(layouts: Layouts) -> None:
    """The rows each expectation looks at and the missing ones, exactly; a failing row whenever
    Great Expectations finds one, and none when it finds none."""
    compared = 0
    for (stage, quality, table), found in layouts.tables.items():
        suite_table = next(t for t in load_suite(stage).tables if t.table == table)
        if found.figures is None:
            assert (stage, table) in UNSCREENED, table
            continue
        rows, figures = found.figures
        if found.pandas is None:  # a bad layout: Great Expectations fails what BAD lists
            for e, f in zip(suite_table.expectations, figures, strict=True):
                rule = datachecks._rule(e["type"], e["kwargs"])
                fails = (table, rule) in BAD[stage] and (stage, table, rule) not in PASSING_WHEN_BAD
                assert (f.unexpected > 0) == fails, (stage, quality, table, rule)
                compared += 1
            continue
        results = by_rule(found.pandas)
        whole = set()
        for e, f in zip(suite_table.expectations, figures, strict=True):
            r = results[datachecks._rule(e["type"], e["kwargs"])]
            res = r.result or {}
            where = (stage, quality, table, e["type"], e["kwargs"].get("column", e["kwargs"].get("column_B")))
            assert (f.unexpected > 0) == (not r.success), where
            if "element_count" in res:
                assert f.element_count == res["element_count"], where
                assert (f.unexpected > 0) == (res["unexpected_count"] > 0), where
            if "missing_count" in res:
                assert f.missing_count == res["missing_count"], where
            if "element_count" in res and "row_condition" not in e["kwargs"]:
                whole.add(res["element_count"])
            compared += 1
        assert whole <= {rows}  # the rows of the table, as GX counts them without a row condition
    assert compared > 100


def test_every_kind_of_defect_is_seen_by_the_screen(layouts: Layouts) -> None:
    """In the bad layouts (the extract's amounts as integers) every type of expectation the
    screen answers fails somewhere in the screen, but the column types, which only float
    amounts break (and the screen leaves float columns to Great Expectations)."""
    seen = set()
    for (stage, quality, table), found in layouts.tables.items():
        if not quality.startswith("bad") or found.figures is None:
            continue
        suite_table = next(t for t in load_suite(stage).tables if t.table == table)
        for e, f in zip(suite_table.expectations, found.figures[1], strict=True):
            if f.unexpected:
                seen.add(e["type"])
    assert seen == {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_values_to_be_unique",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_equal",
    }
    transactions = layouts.tables[("extract", "bad-integers", "transactions")]
    assert transactions.figures is not None and transactions.screened is None  # defects: validated by GX


def test_a_clean_table_gets_great_expectations_own_result(layouts: Layouts) -> None:
    screened = 0
    for (stage, quality, table), found in layouts.tables.items():
        if found.pandas is not None and found.figures is not None and found.figures[0] > 1:
            assert found.screened is not None or (stage, table) in UNSCREENED, (stage, table)
        if found.screened is None:
            continue
        screened += 1
        assert found.screened_failed == {}
        assert found.screened.success and found.pandas.success
        assert found.screened.statistics == found.pandas.statistics
        assert found.screened.suite_name == found.pandas.suite_name
        assert found.figures is not None
        assert found.screened.meta["screened_rows"] == found.figures[0] > 1
        # the table's page says its counts are the screen's and Great Expectations saw a sample
        assert found.screened.meta["batch_markers"]["screened"] == (
            f"{found.figures[0]} rows counted in DuckDB; the first 1 validated"
        )
        pandas = by_rule(found.pandas)
        for rule, r in by_rule(found.screened).items():
            # configuration (with its parameters and batch), counts, shares, exception info
            assert comparable(r) == comparable(pandas[rule]), (stage, quality, table, rule)
    # every good layout's table of more than one row, but those left to GX
    assert screened >= 6


def test_the_run_gives_what_the_pandas_run_gives(layouts: Layouts) -> None:
    """The good layouts' runs with the screen: the summaries of Great Expectations over pandas
    (the fixture's), no finding, and, for the extract, one Data Docs page per table."""
    for stage, report in layouts.reports.items():
        suite = load_suite(stage)
        plain = [
            summary
            for t in suite.tables
            for summary in datachecks._summarise(t, layouts.tables[(stage, "good", t.table)].pandas, {})[0]
        ]
        assert report.results == plain, stage
        assert report.findings == [] and report.success and not report.stops_run
    pages = list((layouts.docs / "validations").rglob("*.html"))
    assert len(pages) == len(load_suite("extract").tables)


# --- what the screen leaves to Great Expectations ----------------------------------------------


def _relation_sql(con: duckdb.DuckDBPyConnection) -> str:
    con.execute(
        "create or replace table t as select * from (values "
        "(0, 'a', 1, 1.5, timestamp '2025-03-01 00:00:00'), (1, null, null, null, null)) "
        "as v(file_row_number, code, n, x, ts)"
    )
    return "select * from t"


@pytest.mark.parametrize(
    "expectation",
    [
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "code", "regex": "^a$"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "code", "mostly": 0.5}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}},  # NaN is missing to pandas
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "n", "min_value": 0.5}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "ts", "min_value": "2025-01-01"}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "n", "value_set": [1]}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "ts"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "n", "row_condition": 'code == "a"'}},
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {
                "column": "n",
                "row_condition": {"type": "comparison", "column": {"name": "code"}, "operator": "!=", "parameter": "a"},
            },
        },
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {
                "column": "n",
                "row_condition": {"type": "comparison", "column": {"name": "code"}, "operator": ">", "parameter": "a"},
            },
        },
        {  # a number against text: pandas compares no row equal, DuckDB would cast the text
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {
                "column": "n",
                "row_condition": {"type": "comparison", "column": {"name": "code"}, "operator": "==", "parameter": 1},
            },
        },
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "code", "value_set": {"$PARAMETER": "x"}}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "missing"}},
    ],
)
def test_the_screen_leaves_what_it_cannot_answer_exactly(expectation: dict[str, Any]) -> None:
    con = duckdb.connect()
    sql = _relation_sql(con)
    fine = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "code"}}
    assert screen(con, sql, {}, (fine,), {}) == (2, [Figures(2, 1, 1)])
    assert screen(con, sql, {}, (fine, expectation), {}) is None


def test_a_guarded_inequality_and_a_timestamp_range_are_screened() -> None:
    con = duckdb.connect()
    sql = _relation_sql(con)
    guarded = {
        "type": "expect_column_values_to_not_be_null",
        "kwargs": {
            "column": "n",
            "row_condition": {
                "type": "and",
                "conditions": [
                    {"type": "nullity", "column": {"name": "code"}, "is_null": False},
                    {"type": "comparison", "column": {"name": "code"}, "operator": "!=", "parameter": "b"},
                ],
            },
        },
    }
    period = {
        "type": "expect_column_values_to_be_between",
        "kwargs": {
            "column": "ts",
            "min_value": {"$PARAMETER": "start"},
            "max_value": datetime(2025, 3, 1),
            "strict_max": True,
        },
    }
    # the row of code 'a' has n; the other row has no code and is outside the condition
    assert screen(con, sql, {}, (guarded, period), {"start": datetime(2025, 1, 1)}) == (
        2,
        [Figures(1, 0, 0), Figures(2, 1, 1)],  # 2025-03-01 is the excluded end
    )


def test_a_set_of_codes_is_screened_as_great_expectations_reads_it() -> None:
    """A value in the set, one outside it, a missing one (not counted as failing), for text and
    for booleans; a row condition that leaves rows out."""
    con = duckdb.connect()
    con.execute(
        "create table t as select * from (values (0, 'EUR', true), (1, 'XXX', false), (2, null, null), "
        "(3, 'eur', true)) as v(file_row_number, code, flag)"
    )
    codes = {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "code", "value_set": ["EUR", "USD"]}}
    flags = {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "flag", "value_set": [True]}}
    only_true = {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {
            "column": "code",
            "value_set": {"$PARAMETER": "codes"},
            "row_condition": {"type": "nullity", "column": {"name": "flag"}, "is_null": False},
        },
    }
    assert screen(con, "select * from t", {}, (codes, flags, only_true), {"codes": ["EUR", "eur", "XXX"]}) == (
        4,
        [Figures(4, 1, 2), Figures(4, 1, 1), Figures(3, 0, 0)],  # 'XXX' and 'eur'; false; none
    )


def test_a_table_of_few_rows_from_a_large_file_gets_great_expectations_own_result(tmp_path: Path) -> None:
    """The aggregates' reconciliation: a few rows of the suite's SQL over the staged activity
    totals. Where they are no more than the sample, they are validated whole from the rows read
    for it (no screen), and the result is Great Expectations' over the table read as usual."""
    from great_expectations.core.run_identifier import RunIdentifier

    STAGERS["aggregates"][0](tmp_path)
    suite = load_suite("aggregates")
    t = next(t for t in suite.tables if t.table == "reconciliation")
    context = datachecks._context(None)
    run_id = RunIdentifier(run_name="screen")
    con = datachecks._connect(tmp_path, suite)
    try:
        rows = len(datachecks._relation(con, t, SQL_PARAMS).to_arrow_table())
        assert 0 < rows < pq.read_metadata(tmp_path / t.file).num_rows  # few rows of a larger file
        plain, _ = datachecks._validate_table(context, suite, t, con, SQL_PARAMS, PARAMS, run_id, 10**6)
        context = datachecks._context(None)  # another, as a run has its own
        gx_table = datachecks._register(context, suite, t)
        made = datachecks._screened(context, suite, gx_table, t, con, tmp_path, SQL_PARAMS, PARAMS, run_id, rows)
        assert made is not None
        # one row fewer than the sample: screened (or declined), never validated whole
        fewer = datachecks._screened(context, suite, gx_table, t, con, tmp_path, SQL_PARAMS, PARAMS, run_id, rows - 1)
    finally:
        con.close()
    validation, failed = made
    assert failed == {} and "screened_rows" not in validation.meta
    assert validation.statistics == plain.statistics
    pandas = by_rule(plain)
    for rule, r in by_rule(validation).items():
        assert comparable(r) == comparable(pandas[rule]), rule
    assert fewer is None or "screened_rows" in fewer[0].meta
