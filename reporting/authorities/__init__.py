"""Tax authority profiles, behind one interface and an explicit registry keyed by country code.

An operator files in one member state, its filing state (``operator.nexus_country``, else the
country of its address). Its filing uses the filing state's national profile where it has one
(DE DIP, FR, HU, IT), else the EU generic edition; ``[authorities.XX]`` of the filing state holds
that profile's filing identifiers. A table for any other state changes neither the law nor the
format: the run warns and ignores it (an operator filing in another state is another operator
of the group, with an ``[operators.ID]`` table of its own). The previews of what each member state receives
from the filing state (routing ``jurisdiction``) are always in the EU generic edition, the edition
of the exchange between authorities. The national profiles are named in one table,
:data:`reporting.authorities.registry.NATIONAL`: adding the next member state is one module and
one line there.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from reporting.authorities.base import AuthorityProfile, DocIds
from reporting.authorities.eu import EuProfile
from reporting.authorities.registry import NATIONAL
from reporting.errors import ConfigError
from reporting.vocabulary import NEXUS

if TYPE_CHECKING:
    from reporting.config import Config

log = logging.getLogger(__name__)

EU_GENERIC: AuthorityProfile = EuProfile()


def register(country: str, profile: AuthorityProfile) -> AuthorityProfile:
    """Add a national profile to :data:`NATIONAL` (one of another programme, or of a test)."""
    NATIONAL[country] = profile
    return profile


def profile_for(country: str) -> AuthorityProfile:
    """The profile of ``country``'s own variant if it has one, else the EU generic edition
    (for reading and checking files; to render, use :func:`select_profile`)."""
    return NATIONAL.get(country, EU_GENERIC)


def select_profile(country: str, config: Config) -> AuthorityProfile:
    """The profile that renders the operator's message to ``country``: the filing state's own
    profile for the filing (routing ``nexus``), the EU generic edition for everything else (the
    previews of what each state receives). A national profile whose identifiers are missing or
    malformed is a configuration error that names the key. Nothing here warns (an ignored
    ``[authorities.XX]`` table is :func:`ignored_authorities`'s)."""
    filing_state = config.operator.country
    national = NATIONAL.get(country)
    if national is None or country != filing_state or config.reporting.routing != NEXUS:
        return EU_GENERIC
    identifiers = config.authorities.get(country) or {}
    missing = [key for key in national.required_identifiers if not identifiers.get(key)]
    table = config.authorities_table(country)  # [authorities.XX], or a further operator's own
    if missing:
        raise ConfigError(
            f"{config.path}: the {country} profile ({national.edition}) needs "
            + ", ".join(f"[{table}] {key}" for key in missing)
        )
    problem = national.identifier_problem(identifiers)
    if problem:
        raise ConfigError(f"{config.path}: [{table}] {problem}")
    return national


def ignored_authorities(config: Config) -> list[str]:
    """The ``[authorities.XX]`` tables of states other than the filing state: each changes
    neither the law nor the format of this operator's filing; the run says so, naming the filing
    state, and goes on."""
    filing_state = config.operator.country
    ignored = sorted(c for c in config.authorities if c != filing_state)
    for country in ignored:
        log.warning(
            "[%s] is ignored: this operator files in %s, and %s's law and format decide its "
            "filing for every seller, wherever the seller lives; %s receives its residents and properties "
            "from %s through the exchange between authorities. An operator that files in %s is another "
            "operator of the group, with a table [operators.ID] of its own",
            config.authorities_table(country),
            filing_state,
            filing_state,
            country,
            filing_state,
            country,
        )
    return ignored


__all__ = [
    "EU_GENERIC",
    "NATIONAL",
    "AuthorityProfile",
    "DocIds",
    "ignored_authorities",
    "profile_for",
    "register",
    "select_profile",
]
