"""The Data Docs' page views share one cache of compiled templates: a template compiled for one
view is not compiled again for the next, and a template whose source changed is compiled anew."""

from __future__ import annotations

from typing import Any

import jinja2
import pytest

from reporting.checks import docs_views


def _counting(env: jinja2.Environment, compiled: list[str]) -> None:
    """Count the templates ``env`` compiles (by name)."""
    compile_ = env.compile

    def counted(source: Any, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        compiled.append(str(name))
        return compile_(source, name, *args, **kwargs)

    env.compile = counted  # type: ignore[method-assign]


def test_a_template_is_compiled_once_for_every_view(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = docs_views._CompiledTemplates()
    monkeypatch.setattr(docs_views, "_COMPILED", cache)
    first, second, index = docs_views.PageView(), docs_views.PageView(), docs_views.IndexPageView()
    assert first.env.bytecode_cache is second.env.bytecode_cache is index.env.bytecode_cache is cache
    compiled: list[str] = []
    for view in (first, second, index):
        _counting(view.env, compiled)
    first.env.get_template("page.j2")
    second.env.get_template("page.j2")
    index.env.get_template("page.j2")
    assert compiled == ["page.j2"]  # compiled by the first view only
    index.env.get_template("index_page.j2")
    assert compiled == ["page.j2", "index_page.j2"]


def test_a_changed_source_is_compiled_again() -> None:
    cache = docs_views._CompiledTemplates()
    old = jinja2.Environment(loader=jinja2.DictLoader({"t.j2": "old {{ x }}"}), bytecode_cache=cache)
    new = jinja2.Environment(loader=jinja2.DictLoader({"t.j2": "new {{ x }}"}), bytecode_cache=cache)
    assert old.get_template("t.j2").render(x=1) == "old 1"
    assert new.get_template("t.j2").render(x=2) == "new 2"  # same name and file, another source
