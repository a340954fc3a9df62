"""Great Expectations' keyword arguments of an expectation, its configuration built once per look-up.

Before it validates anything, Great Expectations asks each expectation of a suite for its domain,
success and runtime keyword arguments (``Expectation._get_runtime_kwargs``, called several times
per expectation and validation). Great Expectations 1.24.1 builds the expectation's whole
configuration (``Expectation.configuration``: a dump of the pydantic model, copying every
parameter, the lists of country and currency codes among them) once for every key it reads: the
extract's suite built 6,341 configurations for 50 expectations, about a quarter of its time.

:func:`install` gives ``Expectation`` the same four methods reading one configuration per call:
the same keys, values, defaults and errors, in the same order (the configuration is a function of
the expectation's fields, which nothing changes during the call). Only the version they were
checked against is changed; any other runs Great Expectations' own
(``tests/unit/test_data_checks_kwargs.py`` compares both on every expectation of the suites).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

#: The Great Expectations whose methods the replacements were checked against.
CHECKED_VERSION = "1.24.1"

log = logging.getLogger("great_expectations.expectations.expectation")  # where its own warning goes

_installed = False
_installing = threading.Lock()  # two threads' first look-ups: the originals kept are Great Expectations'
#: Each replaced method of ``Expectation``: (ours, Great Expectations' own), once installed.
_REPLACED: dict[str, tuple[Any, Any]] = {}


def _success_kwarg(self: Any, kwargs: dict[str, Any], key: str, default: Any = None) -> Any:
    """``Expectation._get_success_kwarg`` over the configuration's ``kwargs``."""
    if key in kwargs:
        return kwargs[key]
    field = self.__fields__.get(key)
    if field is not None:
        return field.default if not field.required else default
    log.warning(f'_get_success_kwarg called with key "{key}", but it is not a known field of {type(self).__name__}')
    return default


def _domain_kwargs(self: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``Expectation._get_domain_kwargs`` over the configuration's ``kwargs``."""
    from great_expectations.exceptions import InvalidExpectationKwargsError

    domain_kwargs = {key: kwargs.get(key, self._get_default_value(key)) for key in self.domain_keys}
    missing_kwargs = set(self.domain_keys) - set(domain_kwargs.keys())
    if missing_kwargs:
        raise InvalidExpectationKwargsError(f"Missing domain kwargs: {list(missing_kwargs)}")
    return domain_kwargs


def _success_kwargs(self: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``Expectation._get_success_kwargs`` over the configuration's ``kwargs``."""
    domain_kwargs = _domain_kwargs(self, kwargs)
    success_kwargs = {key: kwargs.get(key, self._get_default_value(key)) for key in self.success_keys}
    success_kwargs.update(domain_kwargs)
    return success_kwargs


def get_success_kwarg(self: Any, key: str, default: Any = None) -> Any:
    return _success_kwarg(self, self.configuration.kwargs, key, default)


def get_domain_kwargs(self: Any) -> dict[str, Any]:
    return _domain_kwargs(self, self.configuration.kwargs)


def get_success_kwargs(self: Any) -> dict[str, Any]:
    if _overridden(self, "_get_domain_kwargs"):  # the original reaches it through ``self``
        original: dict[str, Any] = _REPLACED["_get_success_kwargs"][1](self)
        return original
    return _success_kwargs(self, self.configuration.kwargs)


def _overridden(self: Any, *names: str) -> bool:
    """Whether the class of ``self`` has a method of its own in place of one of ours ``names``."""
    own = type(self)
    return any(getattr(own, name) is not _REPLACED[name][0] for name in names)


def get_runtime_kwargs(self: Any, runtime_configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """``Expectation._get_runtime_kwargs``, one configuration built for all of it."""
    from great_expectations.expectations.expectation import parse_result_format

    if _overridden(self, "_get_success_kwarg", "_get_domain_kwargs", "_get_success_kwargs"):
        # a class of its own kwargs, which the original reaches through ``self``
        original: dict[str, Any] = _REPLACED["_get_runtime_kwargs"][1](self, runtime_configuration)
        return original
    runtime_configuration = runtime_configuration or {}
    kwargs = self.configuration.kwargs
    success_kwargs = _success_kwargs(self, kwargs)
    runtime_kwargs = {
        key: runtime_configuration.get(key, _success_kwarg(self, kwargs, key)) for key in self.runtime_keys
    }
    runtime_kwargs.update(success_kwargs)
    runtime_kwargs["result_format"] = parse_result_format(runtime_kwargs["result_format"])
    return runtime_kwargs


def install(gx: Any) -> bool:
    """Give Great Expectations' ``Expectation`` the methods above, once per process, where ``gx``
    (the module) is the version they were checked against; whether they are installed."""
    global _installed
    if _installed:
        return True
    if getattr(gx, "__version__", None) != CHECKED_VERSION:
        return False
    from great_expectations.expectations.expectation import Expectation

    with _installing:
        if not _installed:
            for name, ours in (
                ("_get_success_kwarg", get_success_kwarg),
                ("_get_domain_kwargs", get_domain_kwargs),
                ("_get_success_kwargs", get_success_kwargs),
                ("_get_runtime_kwargs", get_runtime_kwargs),
            ):
                _REPLACED[name] = (ours, getattr(Expectation, name))
                setattr(Expectation, name, ours)
            _installed = True
    return True
