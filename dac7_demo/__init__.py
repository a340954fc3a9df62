"""The demo marketplace and the benchmark: not runtime code, and never imported by ``reporting``
at module level.

``generate_demo(url, sellers=..., seed=..., year=...)`` fills the source-contract tables of any
SQLAlchemy database with a deterministic synthetic marketplace (``dac7 demo-data``);
:mod:`dac7_demo.bench` times a whole run on it (``dac7 bench``). The parts:

* :mod:`dac7_demo.countries`: the country tables the generator draws from;
* :mod:`dac7_demo.identifiers`: TINs, VAT numbers, IBANs per country, on python-stdnum;
* :mod:`dac7_demo.generator`: :func:`generate_demo` and the shape of the marketplace;
* :mod:`dac7_demo.defects`: the sellers made bad on purpose (:data:`BAD_KINDS`);
* :mod:`dac7_demo.database`: the contract's tables, the bulk insert, the schema.

The names below are loaded on first use, so that the benchmark's timed child process
(``python -m dac7_demo.bench --child ...``) does not pay for the generator's imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dac7_demo.defects import BAD_KINDS, BadKind
    from dac7_demo.generator import DEMO_DEFAULTS, DemoResult, generate_demo

__all__ = ["BAD_KINDS", "DEMO_DEFAULTS", "BadKind", "DemoResult", "generate_demo"]

_HOME = {
    "BAD_KINDS": "dac7_demo.defects",
    "BadKind": "dac7_demo.defects",
    "DEMO_DEFAULTS": "dac7_demo.generator",
    "DemoResult": "dac7_demo.generator",
    "generate_demo": "dac7_demo.generator",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'dac7_demo' has no attribute {name!r}")
