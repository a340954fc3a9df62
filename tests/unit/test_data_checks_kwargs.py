"""An expectation's keyword arguments with its configuration built once per look-up
(:mod:`reporting.checks.gx_kwargs`): the same as Great Expectations' own methods give."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_data_checks import PERIOD, STAGERS
from test_data_checks_context import _pages

from reporting.checks import gx_kwargs
from reporting.checks.data import STAGES, _import_gx, load_suite, run_data_checks

NAMES = ("_get_success_kwarg", "_get_domain_kwargs", "_get_success_kwargs", "_get_runtime_kwargs")
SUITE_EXPECTATIONS = [e for stage in STAGES for t in load_suite(stage).tables for e in t.expectations]
RESULT_FORMATS = st.sampled_from(
    [
        "BOOLEAN_ONLY",
        "BASIC",
        "SUMMARY",
        "COMPLETE",
        {"result_format": "COMPLETE", "partial_unexpected_count": 7},
        {"result_format": "SUMMARY", "include_unexpected_rows": True},
    ]
)
RUNTIME = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "result_format": RESULT_FORMATS,
            "catch_exceptions": st.booleans(),
            "include_config": st.booleans(),
        },
    ),
)


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    assert gx_kwargs.install(_import_gx())


def expectation(config: dict[str, Any]) -> Any:
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    return ExpectationConfiguration(type=config["type"], kwargs=dict(config["kwargs"])).to_domain_obj()


def theirs(name: str) -> Any:
    return gx_kwargs._REPLACED[name][1]


@contextmanager
def great_expectations_own() -> Iterator[None]:
    """Great Expectations' own four methods on ``Expectation`` for the block (an original calls
    the others through ``self``: all of them are the originals, none of ours)."""
    from great_expectations.expectations.expectation import Expectation

    try:
        for name in NAMES:
            setattr(Expectation, name, theirs(name))
        yield
    finally:
        for name in NAMES:
            setattr(Expectation, name, gx_kwargs._REPLACED[name][0])


def test_installed_at_the_checked_version_only() -> None:
    from great_expectations.expectations.expectation import Expectation

    gx = _import_gx()
    assert gx.__version__ == gx_kwargs.CHECKED_VERSION  # the lock's; another version: see below
    assert all(getattr(Expectation, n) is gx_kwargs._REPLACED[n][0] for n in NAMES)
    assert {n: gx_kwargs._REPLACED[n][1].__qualname__ for n in NAMES} == {n: f"Expectation.{n}" for n in NAMES}
    installed, gx_kwargs._installed = gx_kwargs._installed, False
    try:
        assert gx_kwargs.install(SimpleNamespace(__version__="1.25.0")) is False
    finally:
        gx_kwargs._installed = installed


def test_a_column_expectation_by_hand() -> None:
    """Not null on ``seller_id`` with ``mostly`` 0.5: its domain is the column (no batch, no row
    condition), the success keys add ``mostly``, the runtime keys the parsed result format and
    Great Expectations' default of ``catch_exceptions``."""
    e = expectation({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "seller_id", "mostly": 0.5}})
    domain = {"batch_id": None, "column": "seller_id", "row_condition": None, "condition_parser": None}
    assert e._get_domain_kwargs() == domain
    assert e._get_success_kwargs() == {"mostly": 0.5, **domain}
    assert e._get_runtime_kwargs({"result_format": "BOOLEAN_ONLY"}) == {
        "catch_exceptions": True,
        "result_format": {
            "result_format": "BOOLEAN_ONLY",
            "partial_unexpected_count": 20,
            "include_unexpected_rows": False,
            "map_expectation_unexpected_rows_as_dict": False,
        },
        "mostly": 0.5,
        **domain,
    }
    assert e._get_success_kwarg("mostly") == 0.5 and e._get_success_kwarg("catch_exceptions") is True


def test_an_unknown_key_warns_and_gives_the_default_as_theirs(caplog: pytest.LogCaptureFixture) -> None:
    e = expectation({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "seller_id"}})
    with caplog.at_level(logging.WARNING, logger="great_expectations.expectations.expectation"):
        ours = e._get_success_kwarg("no_such_key", "fallback")
        mine = [r.getMessage() for r in caplog.records]
        caplog.clear()
        assert theirs("_get_success_kwarg")(e, "no_such_key", "fallback") == ours == "fallback"
        assert [r.getMessage() for r in caplog.records] == mine and len(mine) == 1


def test_a_class_with_kwargs_of_its_own_gets_them_through_the_original() -> None:
    """A subclass that overrides the success kwargs: the runtime kwargs are those the original
    method builds through ``self`` (its override included)."""
    from great_expectations.expectations.core.expect_column_values_to_not_be_null import (
        ExpectColumnValuesToNotBeNull,
    )

    class Marked(ExpectColumnValuesToNotBeNull):
        def _get_success_kwargs(self) -> dict[str, Any]:
            return {**super()._get_success_kwargs(), "marked": True}

    e = Marked(column="seller_id")
    assert e._get_runtime_kwargs()["marked"] is True
    assert e._get_runtime_kwargs() == theirs("_get_runtime_kwargs")(e)


def test_a_class_with_a_domain_of_its_own_gets_it_in_its_success_kwargs() -> None:
    """A subclass that overrides the domain kwargs only: its success and runtime kwargs carry
    that domain, as the originals (which reach it through ``self``) give them."""
    from great_expectations.expectations.core.expect_column_values_to_not_be_null import (
        ExpectColumnValuesToNotBeNull,
    )

    class Domained(ExpectColumnValuesToNotBeNull):
        def _get_domain_kwargs(self) -> dict[str, Any]:
            return {**super()._get_domain_kwargs(), "column": "other"}

    e = Domained(column="seller_id", mostly=0.5)
    ours = (e._get_success_kwargs(), e._get_runtime_kwargs())
    assert ours[0]["column"] == ours[1]["column"] == "other" and ours[0]["mostly"] == 0.5
    with great_expectations_own():
        assert (e._get_success_kwargs(), e._get_runtime_kwargs()) == ours


@pytest.mark.parametrize("config", SUITE_EXPECTATIONS, ids=lambda c: c["type"])
def test_every_expectation_of_the_suites_as_theirs(config: dict[str, Any]) -> None:
    e = expectation(config)
    keys = (*e.domain_keys, *e.success_keys, *e.runtime_keys)
    methods = ("_get_domain_kwargs", "_get_success_kwargs", "_get_runtime_kwargs")
    ours = [getattr(e, name)() for name in methods], [e._get_success_kwarg(key) for key in keys]
    with great_expectations_own():
        assert ours == ([getattr(e, name)() for name in methods], [e._get_success_kwarg(key) for key in keys])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=st.sampled_from(SUITE_EXPECTATIONS),
    runtime=RUNTIME,
    mostly=st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)),
)
def test_the_runtime_kwargs_are_theirs(config: dict[str, Any], runtime: dict[str, Any] | None, mostly: Any) -> None:
    """Any expectation of the suites, with or without ``mostly``, under any runtime configuration
    a validation passes: the same kwargs, and the runtime configuration left as it was."""
    kwargs = dict(config["kwargs"]) | ({"mostly": mostly} if mostly is not None else {})
    e = expectation({"type": config["type"], "kwargs": kwargs})
    given_runtime = None if runtime is None else dict(runtime)
    ours = e._get_runtime_kwargs(runtime)
    assert runtime == given_runtime
    with great_expectations_own():
        assert ours == e._get_runtime_kwargs(runtime)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("quality", ["good", "bad"])
@pytest.mark.parametrize("stage", sorted(STAGERS))
def test_the_checks_are_the_same_with_great_expectations_own_kwargs(
    stage: str, quality: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every stage's good and bad layout, screened: the same report and Data Docs pages (the
    run's times and the configurations' ids masked) with Great Expectations' own methods."""
    from great_expectations.expectations.expectation import Expectation

    good, bad = STAGERS[stage]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (good if quality == "good" else bad)(run_dir)
    runs = []
    for name in ("ours", "theirs"):
        if name == "theirs":
            for method in NAMES:
                monkeypatch.setattr(Expectation, method, theirs(method))
        docs = tmp_path / f"docs-{name}"
        report = run_data_checks(run_dir, stage, docs_dir=docs, screen_sample_rows=1, **PERIOD)
        runs.append(((report.results, report.findings, report.success), _pages(docs)))
    assert runs[0] == runs[1]
    assert runs[0][1]
    if quality == "bad":
        assert not all(summary.success for summary in runs[0][0][0])  # the layout fails expectations
