"""Tax authority profiles, behind one interface and an explicit registry keyed by country code."""

from __future__ import annotations

from reporting.authorities.base import AuthorityProfile, DocIds
from reporting.authorities.eu import EuProfile

#: National profiles by member state; a state without an entry uses the EU generic edition.
NATIONAL: dict[str, AuthorityProfile] = {}
EU_GENERIC: AuthorityProfile = EuProfile()


def register(country: str, profile: AuthorityProfile) -> None:
    """Add a national profile (one module per authority calls this)."""
    NATIONAL[country] = profile


def profile_for(country: str) -> AuthorityProfile:
    """The profile that renders a message to ``country``."""
    return NATIONAL.get(country, EU_GENERIC)


__all__ = ["EU_GENERIC", "NATIONAL", "AuthorityProfile", "DocIds", "profile_for", "register"]
