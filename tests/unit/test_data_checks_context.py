"""The checks' ephemeral Data Context (:func:`reporting.checks.data._context`): it does not write
its project configuration as YAML each time a table is registered, and the checks give the same
reports and the same Data Docs as with Great Expectations' own save."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_data_checks import PERIOD, STAGERS

from reporting.checks import data as datachecks
from reporting.checks.data import run_data_checks

pytestmark = [pytest.mark.timeout(300)]

#: The times of a run in its Data Docs (the run's directory, the pages' text, the index's sort
#: key of a run), the ids a Data Context gives the expectations' configurations, and the
#: fingerprint of a table validated in pandas (the order of its rows as DuckDB read them varies
#: from one reading to the next, with or without the changes compared here).
_VARYING = re.compile(
    r"\d{8}T\d{6}\.\d+Z"
    r"|(?<=pandas_data_fingerprint</span>)(?:\s|<[^>]*>)*[0-9a-f]{32}"
    r"|\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|'_run_time_sort': [0-9.]+"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


def _saving_context(docs_dir: Path | None) -> Any:
    """The checks' context with Great Expectations' own save of its configuration."""
    context = _unsaving(docs_dir)
    del context._save_project_config  # the class's method again
    return context


_unsaving = datachecks._context


def _pages(docs: Path) -> dict[str, str]:
    return {
        _VARYING.sub("<t>", str(p.relative_to(docs))): _VARYING.sub("<t>", p.read_text("utf-8"))
        for p in sorted(docs.rglob("*.html"))
    }


def test_registering_tables_writes_no_configuration() -> None:
    """Two data sources added: both are there to use, and the in-memory store of the project's
    configuration holds nothing (Great Expectations' own save writes it there once per source)."""
    context = datachecks._context(None)
    for name in ("a", "b"):
        context.data_sources.add_pandas(name).add_dataframe_asset(name)
    assert [context.data_sources.get(n).name for n in ("a", "b")] == ["a", "b"]
    assert context.variables.store.list_keys() == []

    saving = _saving_context(None)
    saving.data_sources.add_pandas("a").add_dataframe_asset("a")
    assert len(saving.variables.store.list_keys()) == 1


@pytest.mark.parametrize("quality", ["good", "bad"])
@pytest.mark.parametrize("stage", sorted(STAGERS))
def test_the_checks_are_the_same_with_the_configuration_saved(
    stage: str, quality: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every stage's good and bad layout (the bad ones fail expectations, quarantine sellers and
    stop runs), screened and in pandas: the same report and the same Data Docs pages, the times of
    the run and the configurations' ids aside, whether the context saves its configuration or not."""
    good, bad = STAGERS[stage]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (good if quality == "good" else bad)(run_dir)
    reports, pages = [], []
    for name, context in (("saved", _saving_context), ("unsaved", _unsaving)):
        monkeypatch.setattr(datachecks, "_context", context)
        for sample in (1, None):  # the screen on every table it can answer, and none
            docs = tmp_path / f"docs-{name}-{sample}"
            reports.append(run_data_checks(run_dir, stage, docs_dir=docs, screen_sample_rows=sample, **PERIOD))
            pages.append(_pages(docs))
    saved, unsaved = reports[:2], reports[2:]
    assert [(r.results, r.findings, r.success) for r in saved] == [(r.results, r.findings, r.success) for r in unsaved]
    assert pages[:2] == pages[2:]
    assert all(p for p in pages)
    if quality == "bad":
        assert not all(s.success for r in unsaved for s in r.results)
