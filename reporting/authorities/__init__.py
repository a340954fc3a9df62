"""Tax authority profiles, behind one interface and an explicit registry keyed by country code.

A message to member state XX uses XX's national profile when XX is the operator's own member
state or when the configuration has an ``[authorities.XX]`` table with XX's filing identifiers;
otherwise the EU generic edition, with a warning where XX has a variant of its own. Adding the
next member state is one module that calls :func:`register`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from reporting.authorities.base import AuthorityProfile, DocIds
from reporting.authorities.eu import EuProfile
from reporting.errors import ConfigError

if TYPE_CHECKING:
    from reporting.config import Config

log = logging.getLogger(__name__)

#: National profiles by member state; a state without an entry uses the EU generic edition.
NATIONAL: dict[str, AuthorityProfile] = {}
EU_GENERIC: AuthorityProfile = EuProfile()


def register(country: str, profile: AuthorityProfile) -> AuthorityProfile:
    """Add a national profile (one module per authority calls this at import)."""
    NATIONAL[country] = profile
    return profile


def profile_for(country: str) -> AuthorityProfile:
    """The profile of ``country``'s own variant if it has one, else the EU generic edition
    (for reading and checking files; to render, use :func:`select_profile`)."""
    return NATIONAL.get(country, EU_GENERIC)


def select_profile(country: str, config: Config, *, warn: bool = True) -> AuthorityProfile:
    """The profile that renders the operator's message to ``country`` (``warn``: say so when a
    national variant exists but is not configured)."""
    national = NATIONAL.get(country)
    identifiers = config.authorities.get(country)
    if national is None:
        return EU_GENERIC
    if country != config.operator.country and identifiers is None:
        if not warn:
            return EU_GENERIC
        log.warning(
            "%s has its own variant (%s), but the configuration has no [authorities.%s] table with its "
            "filing identifiers: the message uses the EU generic edition",
            country,
            national.edition,
            country,
        )
        return EU_GENERIC
    missing = [key for key in national.required_identifiers if not (identifiers or {}).get(key)]
    if missing:
        raise ConfigError(
            f"{config.path}: the {country} profile ({national.edition}) needs "
            + ", ".join(f"[authorities.{country}] {key}" for key in missing)
        )
    problem = national.identifier_problem(identifiers or {})
    if problem:
        raise ConfigError(f"{config.path}: [authorities.{country}] {problem}")
    return national


def _load_national_profiles() -> None:
    from reporting.authorities import de, fr, hu, it  # noqa: F401  (each registers itself)


_load_national_profiles()

__all__ = ["EU_GENERIC", "NATIONAL", "AuthorityProfile", "DocIds", "profile_for", "register", "select_profile"]
