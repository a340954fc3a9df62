"""The verification adapters by name, and the adapters a configuration switches on.

    adapters = build_adapters(config)                 # [verification.NAME] enabled = true
    adapters = build_adapters(config, ["vies"])       # one of them (it must be switched on)

Adding an adapter is a module with a class that has the :class:`reporting.verification.base.Adapter`
interface, an entry here, and its table in ``reporting.config`` (``VERIFICATION_ADAPTERS``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import httpx

from reporting.config import AdapterSettings, Config
from reporting.errors import ConfigError
from reporting.verification.base import Adapter
from reporting.verification.check_digits import StdnumAdapter
from reporting.verification.tin_web import TinOnTheWeb
from reporting.verification.vies import ViesRest, ViesSoap

Factory = Callable[[AdapterSettings, Config, "httpx.BaseTransport | None"], Adapter]


def _stdnum(settings: AdapterSettings, config: Config, transport: httpx.BaseTransport | None) -> Adapter:
    return StdnumAdapter(settings)


def _vies(settings: AdapterSettings, config: Config, transport: httpx.BaseTransport | None) -> Adapter:
    # the operator's own VAT number is the requester that makes VIES give a consultation number
    cls = ViesRest if settings.interface == "rest" else ViesSoap
    return cls(settings, config.operator.vat, transport=transport)


def _tin_on_the_web(settings: AdapterSettings, config: Config, transport: httpx.BaseTransport | None) -> Adapter:
    return TinOnTheWeb(settings, transport=transport)


#: Every adapter, in the order they answer (:data:`reporting.config.VERIFICATION_ADAPTERS`).
ADAPTERS: dict[str, Factory] = {"stdnum": _stdnum, "vies": _vies, "tin_on_the_web": _tin_on_the_web}


def build_adapters(
    config: Config, names: Sequence[str] | None = None, *, transport: httpx.BaseTransport | None = None
) -> list[Adapter]:
    """The adapters ``names`` (default: every adapter the configuration switches on), in
    :data:`ADAPTERS` order. A name that is not an adapter, or an adapter that is switched off, is
    a :class:`ConfigError` naming its table: an adapter that calls a service sends identifiers to
    the Commission, which the operator decides in the configuration, not on a command line."""
    settings = config.verification
    wanted = [a.name for a in settings.enabled] if names is None else list(names)
    for name in wanted:
        adapter = settings.adapter(name)  # an unknown name: ConfigError
        if not adapter.enabled:
            raise ConfigError(
                f"{config.path or '<config>'}: the verification adapter {name} is switched off; switch it on with "
                f"[verification.{name}] enabled = true"
            )
    return [ADAPTERS[name](settings.adapter(name), config, transport) for name in ADAPTERS if name in wanted]
