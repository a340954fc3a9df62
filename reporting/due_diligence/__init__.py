"""Due diligence: the cycle the law prescribes, from the first request to enforcement (PStTG §§ 17,
20, 22 to 24; Directive 2011/16/EU, Annex V), driven from the source and the ledger.

- :func:`run_due_diligence`: the daily run of one operator (the ``dac7_due_diligence`` DAG,
  ``dac7 due-diligence run``): the state in the ledger brought to the day, and the feed
  ``due_diligence/actions.jsonl`` of the actions due (:mod:`reporting.due_diligence.feed`);
- :func:`mark_actions`: what the platform reports it sent (``dac7 due-diligence mark --file F``);
- :func:`record_verification` / :func:`record_verifications`: what a verification adapter found
  of an item (verified or invalid), the seam of the adapters;
- :func:`verify_due_items`: the daily verification (the DAG's ``verify``): the unverified TINs and
  VAT numbers through the adapters switched on, recorded through that seam
  (:mod:`reporting.due_diligence.verify`);
- the queries of the compliance view: :func:`needs_attention`, :func:`stage_counts`,
  :func:`seller_history`, :func:`seller_state`, :func:`seller_states`, :func:`incomplete_sellers`,
  :func:`last_run_dates`, :func:`last_run_settings`, :func:`attention_countries`;
- :func:`expire_history`: the retention of PStTG § 24(3).

The cycle's rules are :mod:`reporting.diligence_cycle`; the state's storage is
:mod:`reporting.ledger.due_diligence`; the legal readings are in ``docs/guide/due-diligence.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reporting.diligence_cycle import CycleSettings
from reporting.due_diligence.feed import feed_path, read_feed
from reporting.due_diligence.run import DueDiligenceResult, DueDiligenceRunError, run_due_diligence
from reporting.due_diligence.verify import VerificationRunResult, verify_due_items
from reporting.errors import ConfigError
from reporting.ledger import Ledger
from reporting.ledger.desk import (
    NO_NEXT_ACTION,
    DeskFilter,
    DeskRow,
    desk_count,
    desk_countries,
    desk_page,
    desk_stream,
)
from reporting.ledger.due_diligence import (
    ActionReport,
    Attention,
    DueDiligenceRetention,
    HistoryEvent,
    MarkOutcome,
    SellerState,
    StageCounts,
    Verification,
    apply_action_reports,
    erase_expired,
    read_action_reports,
)
from reporting.ledger.due_diligence import attention_countries as _attention_countries
from reporting.ledger.due_diligence import desk_not_filled as _desk_not_filled
from reporting.ledger.due_diligence import desk_stage_counts as _desk_stage_counts
from reporting.ledger.due_diligence import incomplete_sellers as _incomplete
from reporting.ledger.due_diligence import last_run_dates as _last_run_dates
from reporting.ledger.due_diligence import last_run_settings as _last_run_settings
from reporting.ledger.due_diligence import last_run_zones as _last_run_zones
from reporting.ledger.due_diligence import needs_attention as _needs_attention
from reporting.ledger.due_diligence import record_verifications as _record_verifications
from reporting.ledger.due_diligence import seller_history as _seller_history
from reporting.ledger.due_diligence import seller_state as _seller_state
from reporting.ledger.due_diligence import seller_states as _seller_states
from reporting.ledger.due_diligence import stage_counts as _stage_counts
from reporting.vocabulary import DEFAULT_OPERATOR

_T = TypeVar("_T")

__all__ = [
    "NO_NEXT_ACTION",
    "ActionReport",
    "Attention",
    "CycleSettings",
    "DeskFilter",
    "DeskRow",
    "DueDiligenceResult",
    "DueDiligenceRetention",
    "DueDiligenceRunError",
    "HistoryEvent",
    "MarkOutcome",
    "SellerState",
    "StageCounts",
    "Verification",
    "VerificationRunResult",
    "attention_countries",
    "desk_countries_of",
    "desk_list",
    "desk_not_filled",
    "desk_stages_of",
    "desk_total",
    "desk_whole",
    "expire_history",
    "feed_path",
    "incomplete_sellers",
    "last_run_dates",
    "last_run_settings",
    "mark_actions",
    "needs_attention",
    "read_feed",
    "record_verification",
    "record_verifications",
    "retention_zone",
    "run_due_diligence",
    "seller_history",
    "seller_state",
    "seller_states",
    "stage_counts",
    "verify_due_items",
]


def mark_actions(
    ledger: Ledger, path: str | Path, *, now: datetime, zone: ZoneInfo, holder: str = "dac7 due-diligence mark"
) -> MarkOutcome:
    """Apply the platform's report of the actions it performed (JSON Lines, see
    :mod:`reporting.ledger.due_diligence`): every line checked, then all applied in one
    transaction under the due-diligence lock of each operator it names, or none. ``zone``: the
    filing state's time zone, whose day of each ``at`` the cycle counts in."""
    reports: list[ActionReport] = list(read_action_reports(path))
    operators = sorted({r.operator_id for r in reports})
    return _locked(
        ledger,
        operators,
        holder,
        lambda: apply_action_reports(ledger.engine, reports, source=Path(path).name, now=now, zone=zone),
    )


def record_verification(
    ledger: Ledger,
    seller_id: str,
    item: str,
    state: str,
    source: str,
    at: datetime,
    *,
    operator_id: str = DEFAULT_OPERATOR,
    now: datetime | None = None,
    zone: ZoneInfo | None = None,
) -> None:
    """Record what a verification adapter found of one item of one seller: ``state`` is
    ``verified`` or ``invalid``, ``source`` names the adapter and its evidence (never the value),
    ``at`` is when it answered. An invalid item is asked for again by the next run (a request);
    a verified one holds while its value is the same, for 36 months (PStTG § 20(2)). ``zone``:
    the filing state's time zone (default UTC) whose day of ``at`` is the item's day of
    verification. See :func:`reporting.ledger.due_diligence.record_verifications`."""
    record_verifications(
        ledger,
        [Verification(seller_id, item, state, source, at, operator_id)],
        now=now or at,
        zone=zone or ZoneInfo("UTC"),
    )


def record_verifications(
    ledger: Ledger, results: Iterable[Verification], *, now: datetime, zone: ZoneInfo, holder: str = "verification"
) -> int:
    """Record many verifications in one transaction, under the due-diligence lock of each operator
    they name (all or none); returns how many were recorded."""
    items = list(results)
    operators = sorted({v.operator_id for v in items})
    return _locked(ledger, operators, holder, lambda: _record_verifications(ledger.engine, items, now=now, zone=zone))


def _locked(ledger: Ledger, operators: Sequence[str], holder: str, work: Callable[[], _T]) -> _T:
    """``work()`` under the due-diligence lock of each operator, taken in the order given."""
    with ExitStack() as stack:
        for operator_id in operators:
            stack.enter_context(ledger.due_diligence_lock(operator_id, holder=holder))
        return work()


def seller_state(ledger: Ledger, seller_id: str, operator_id: str = DEFAULT_OPERATOR) -> SellerState | None:
    """A seller's state: scope, each item's state, its cycle (None: the state does not know it)."""
    return _seller_state(ledger.engine, seller_id, operator_id)


def seller_states(ledger: Ledger, seller_id: str) -> list[SellerState]:
    """A seller's state with each operator of a group that has one."""
    return _seller_states(ledger.engine, seller_id)


def last_run_dates(ledger: Ledger) -> dict[str, date]:
    """The day each operator's state stands at: its latest daily run's."""
    return _last_run_dates(ledger.engine)


def last_run_settings(ledger: Ledger) -> dict[str, CycleSettings | None]:
    """The ``[due_diligence]`` settings each operator's latest daily run scheduled with (None:
    a run that did not record them)."""
    return _last_run_settings(ledger.engine)


def attention_countries(ledger: Ledger, *, operator_id: str | None = None) -> list[str]:
    """The countries of the sellers that need attention (the compliance view's filter)."""
    return _attention_countries(ledger.engine, operator_id=operator_id)


def needs_attention(
    ledger: Ledger,
    settings: CycleSettings,
    today: date,
    *,
    operator_id: str | None = None,
    country: str | None = None,
    action: str | None = None,
) -> Iterator[Attention]:
    """The compliance view's list: sellers that lack something or have an action due or coming,
    with the next action and its date, filtered by country and next action (``none``,
    :data:`NO_NEXT_ACTION`: those with no next action)."""
    return _needs_attention(ledger.engine, settings, today, operator_id=operator_id, country=country, action=action)


def stage_counts(ledger: Ledger, *, operator_id: str | None = None, country: str | None = None) -> StageCounts:
    """Sellers per stage: in scope, incomplete, requested, reminded twice, blocked, released (of
    one operator, of one country, or all)."""
    return _stage_counts(ledger.engine, operator_id=operator_id, country=country)


def seller_history(ledger: Ledger, seller_id: str, operator_id: str = DEFAULT_OPERATOR) -> list[HistoryEvent]:
    """A seller's due-diligence history, oldest first."""
    return _seller_history(ledger.engine, seller_id, operator_id)


def incomplete_sellers(ledger: Ledger, seller_ids: Iterable[str], operator_id: str = DEFAULT_OPERATOR) -> set[str]:
    """Those of ``seller_ids`` that still lack an item (the approval page's count)."""
    return _incomplete(ledger.engine, seller_ids, operator_id)


def retention_zone(ledger: Ledger, configured: str | None) -> tuple[ZoneInfo, str]:
    """The time zone whose calendar years the retention of the due-diligence and verification
    records counts in (PStTG § 24(3): ten years from the end of the year a record was made), and
    where it comes from, in words: the configuration's ``[reporting] timezone`` (``configured``),
    the zone every daily run counts its days in; without a configuration, the zone the operators'
    latest daily runs recorded they counted in; UTC only where neither is known (no
    configuration, and no run recorded a zone), said so. Refused (:class:`ConfigError`): latest
    runs that recorded different zones, or a zone that is not an IANA time zone."""
    if configured:
        return ZoneInfo(configured), "[reporting] timezone of the configuration"
    recorded = sorted({z for z in _last_run_zones(ledger.engine).values() if z})
    if len(recorded) > 1:
        raise ConfigError(
            f"no configuration, and the latest due-diligence runs counted their days in different time zones "
            f"({', '.join(recorded)}): set DAC7_CONFIG to the configuration whose [reporting] timezone the "
            "retention counts in"
        )
    if recorded:
        try:
            return ZoneInfo(recorded[0]), "recorded by the latest due-diligence run (no configuration)"
        except (ValueError, ZoneInfoNotFoundError):
            raise ConfigError(
                f"no configuration, and the latest due-diligence run recorded the time zone {recorded[0][:64]!r}, "
                "which is not an IANA time zone: set DAC7_CONFIG to the configuration"
            ) from None
    return ZoneInfo("UTC"), "UTC: no configuration, and no due-diligence run recorded its time zone"


def expire_history(ledger: Ledger, *, now: datetime, zone: ZoneInfo, dry_run: bool = False) -> DueDiligenceRetention:
    """Delete the due-diligence records whose ten years have run (PStTG § 24(3))."""
    return erase_expired(ledger.engine, now=now, zone=zone, dry_run=dry_run)


# ---------------------------------------------------------------- the compliance desk's list


def desk_total(ledger: Ledger, f: DeskFilter) -> int:
    """How many sellers of the desk's list (``ledger_due_diligence_desk``) pass the filters."""
    return desk_count(ledger.engine, f)


def desk_list(ledger: Ledger, f: DeskFilter, *, offset: int, limit: int) -> list[DeskRow]:
    """A page of the desk's list, in the order of operator and seller id."""
    return desk_page(ledger.engine, f, offset=offset, limit=limit)


def desk_whole(ledger: Ledger, f: DeskFilter) -> Iterator[DeskRow]:
    """The whole filtered list, streamed from a server-side cursor (the export)."""
    return desk_stream(ledger.engine, f)


def desk_stages_of(ledger: Ledger, *, operator_ids: Iterable[str], country: str | None = None) -> StageCounts:
    """Sellers per stage of the operators (:func:`reporting.ledger.due_diligence.desk_stage_counts`)."""
    return _desk_stage_counts(ledger.engine, operator_ids=operator_ids, country=country)


def desk_countries_of(ledger: Ledger, *, operator_ids: Iterable[str]) -> list[str]:
    """The countries of the desk's sellers (the list's filter)."""
    return desk_countries(ledger.engine, operator_ids=operator_ids)


def desk_not_filled(ledger: Ledger) -> list[str]:
    """The operators whose latest run came before the ledger kept the desk (their next run fills it)."""
    return _desk_not_filled(ledger.engine)
