"""The Data Docs' page views, with their Jinja templates compiled once per process.

Great Expectations gives each view of a Data Docs build (the index, the suites' pages, the
validations' pages) a Jinja environment of its own, and each compiles the same templates again:
about a fifth of the build. These views are Great Expectations' own, whose environments share
one cache of compiled templates (Jinja's bytecode cache, checked against each template's
source), so a process compiles each template once; the pages are the same. The Data Docs site of
:func:`reporting.checks.data._context` names them; this module is imported by Great Expectations
when it builds the site (and imports Great Expectations).
"""

from __future__ import annotations

import threading

import jinja2

from reporting.checks.data import _import_gx

# Great Expectations imported the way every path into it must be (see _import_gx: pyspark's
# check of its dependencies ends a process whose __main__ is -c code, a pytest-xdist worker's too)
_import_gx()

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView  # noqa: E402


class _CompiledTemplates(jinja2.BytecodeCache):
    """Compiled templates kept in memory, by Jinja's key of the template's name and file."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with self._lock:
            code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)  # ignored by Jinja where the source changed

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = bucket.bytecode_to_string()
        with self._lock:
            self._code[bucket.key] = code


_COMPILED = _CompiledTemplates()


class PageView(DefaultJinjaPageView):
    """Great Expectations' page view (suites and validation results), templates compiled once."""

    def __init__(self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.bytecode_cache = _COMPILED


class IndexPageView(DefaultJinjaIndexPageView):
    """Great Expectations' index page view, templates compiled once."""

    def __init__(self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.bytecode_cache = _COMPILED
