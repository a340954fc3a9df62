"""Planning a filing: which messages to send now, from what would be reported and what is filed.

Pure functions over plain records: no database, no clock, no randomness. The caller reads the
live state from the ledger (:meth:`reporting.ledger.Ledger.live_records`), builds ``current``
from the run (each record's canonical content and its hash), and passes ``new_id``, which makes a
fresh DocRefId in the authority's format for a purpose such as ``"correction:seller:S-1"``.

Mode ``auto`` (reference §3.3, EU rules 80000-80014, 90030, 90040):

* nothing filed yet: one DPI401 (PlatformOperator, the other operators of OtherPlatformOperators
  and every seller OECD1); without sellers a DPI403 nil report when the profile expects one (or
  the message type the profile files an assumed operator's declaration in: ``empty_message_type``),
  else nothing;
* nothing changed: nothing;
* changed or rejected records, sellers no longer reportable, a changed PlatformOperator: one
  DPI402 with corrections (OECD2, CorrDocRefId = the live version) and deletions (OECD3, with the
  content that was filed), the PlatformOperator resent (OECD0) or corrected (OECD2);
* new sellers: one DPI401 with them as OECD1 and the PlatformOperator resent (OECD0) under its
  live DocRefId: the one the DPI402 just gave it when it was corrected in the same plan. New and
  corrected records never share a message (80010); the DPI402 comes first.

An other operator (an ``AssumedPlatformOperator``, or the ``AssumingPlatformOperator``) is a record
like a seller, keyed by its ledger key: a new one is OECD1 in the DPI401 of the new sellers (an
assumed operator comes with its sellers), a changed one OECD2 and one no longer named OECD3 in the
DPI402, with its sellers that are gone. A new one without a new seller goes in a message of its
own only in a period without sellers (the assumed operator's own declaration); otherwise a DPI401
would have no seller (EU rule 20040) and a DPI402 cannot carry it (80010): the plan is refused.

The explicit modes ``new``, ``correction``, ``deletion`` and ``nil`` check their preconditions
and refuse with :class:`LedgerModeError`, whose message says why and what to use instead.

:func:`ledger_problems` checks planned messages against the ledger state with the EU codes, so
that a preflight can refuse a plan before anything is rendered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from reporting.ledger.errors import DocRefIdTakenError, LedgerError, LedgerModeError, PlanInputError
from reporting.ledger.model import (
    ACCEPTED,
    CORRECTION,
    DELETION,
    DPI401,
    DPI402,
    DPI403,
    KINDS,
    NEW,
    OTHER_PLATFORM_OPERATORS,
    PLATFORM_OPERATOR,
    PO_KEY,
    PUBLISHED,
    REJECTED,
    RENDERED,
    RESEND,
    SELLER,
    DocTypeIndic,
    KnownRecord,
    LiveRecord,
    PlannedMessage,
    PlannedRecord,
    RecordKey,
    RecordsView,
    doc_type_indic,
    key_label,
    period_label,
)
from reporting.vocabulary import ENVIRONMENTS, MODES

#: What would be reported now: record key -> (content hash, content).
Current = Mapping[RecordKey, tuple[str, Any]]
#: What the ledger holds as filed: record key -> its live version.
Live = Mapping[RecordKey, LiveRecord]
Problem = tuple[str, str]
T = TypeVar("T")


class RecordSink(Protocol):
    """Where the plan keeps what grows with the number of records, instead of memory
    (:meth:`reporting.ledger.contents.ContentStore.planned_records`): the new records found while
    the streams are merged (:meth:`keep`, given back in order by :meth:`kept`), and a planned
    message's records, each added as it is made, then given back by :meth:`done` in order (a
    tuple, or a :class:`reporting.ledger.model.RecordsView` read back from a file). A record
    whose DocRefId an earlier one has is refused with
    :class:`reporting.ledger.errors.DocRefIdTakenError`, when it is added or at the latest by
    :meth:`done`."""

    def keep(self, item: tuple[RecordKey, str, Any]) -> None: ...
    def kept(self) -> Iterator[tuple[RecordKey, str, Any]]: ...
    def add(self, record: PlannedRecord) -> None: ...
    def done(self) -> Sequence[PlannedRecord]: ...


def plan_filing(
    current: Current,
    live: Live,
    *,
    profile_expects_nil: bool,
    new_id: Callable[[str], str],
    environment: str,
    mode: str = "auto",
    sellers: Collection[str] | None = None,
    withdraw: bool = False,
    authority: str = "",
    year: int | None = None,
    indic: DocTypeIndic = doc_type_indic,
    empty_message_type: str = DPI403,
) -> list[PlannedMessage]:
    """The messages to send for one period and authority, in sending order ([] = nothing to send).

    ``mode`` ``deletion`` deletes the live records of ``sellers`` (seller_ids) with the
    PlatformOperator resent, or with ``withdraw=True`` the whole filing, PlatformOperator included
    (EU rule 80009). ``authority`` and ``year`` name the period in messages and travel with the
    planned messages. ``indic`` maps (doc type, environment) to the DocTypeIndic.
    ``empty_message_type`` is the MessageTypeIndic of a message without sellers that carries new
    records: DPI403 (a nil report; the assumed operator's declaration in most editions), or DPI401
    where the authority files the assumed operator's declaration so (HMRC's service).
    """
    _check_arguments(empty_message_type, environment, mode, sellers, withdraw)
    _check_keys(current, "current")
    _check_keys(live, "live")
    period = period_label(authority, year, environment)
    if mode != "deletion" and PO_KEY not in current:
        raise _no_platform_operator(period)
    if PO_KEY not in live and live:
        raise LedgerError(
            f"the ledger of {period} holds live records but no live PlatformOperator "
            f"({', '.join(key_label(k) for k in body_order(live)[:5])}); it needs a look by hand before the next filing"
        )
    b = _Builder(new_id, {r.doc_ref_id for r in live.values()}, environment, authority, year, indic, empty_message_type)
    if mode == "auto":
        return _auto(b, current, live, profile_expects_nil, period)
    if mode == "new":
        return _mode_new(b, current, live, period)
    if mode == "nil":
        return _mode_nil(b, current, live, period)
    if mode == "correction":
        return _mode_correction(b, current, live, period)
    return _mode_deletion(b, live, sellers, withdraw, period)


def plan_filing_sorted(
    current: Iterable[Item],
    live: Iterable[LiveRecord],
    *,
    profile_expects_nil: bool,
    new_id: Callable[[str], str],
    environment: str,
    mode: str = "auto",
    sellers: Collection[str] | None = None,
    withdraw: bool = False,
    authority: str = "",
    year: int | None = None,
    indic: DocTypeIndic = doc_type_indic,
    empty_message_type: str = DPI403,
    sink: Callable[[], RecordSink] | None = None,
) -> list[PlannedMessage]:
    """:func:`plan_filing` over streams: ``current`` as ``(key, content hash, content)`` and
    ``live`` as its live versions, each in body order (the PlatformOperator, the other operators
    by key, the sellers by seller_key; a key at most once), merged as they come. In mode ``auto``
    neither is held whole: what is held is what differs (new, changed, gone: the records of the
    plan) and the DocRefIds in use; an unchanged record passes. The other modes, chosen by hand,
    take the streams as mappings. The same plan as :func:`plan_filing` of the same records
    (``tests/unit/test_ledger_plan_sorted.py``); a stream out of order is refused.

    ``sink``: where nothing is live (a first filing in mode ``auto``), the message's records go to
    a new :class:`RecordSink` as they are made, and the message holds the view it gives back, not a
    tuple: the same records in the same order, the same DocRefIds asked for in the same order, an id
    made twice refused with the same error (``tests/unit/test_ledger_plan_spilled.py``). The new
    records found while the streams are merged wait in it too. Where the sink has written the
    records to its file, ``new_id`` may have been asked, before that error, for the ids of up to a
    batch of records more."""
    _check_arguments(empty_message_type, environment, mode, sellers, withdraw)
    period = period_label(authority, year, environment)
    if mode != "auto":
        return plan_filing(
            {k: (h, c) for k, h, c in _in_order(current, "current", lambda i: i[0], period)},
            {r.key: r for r in _in_order(live, "live", lambda r: r.key, period)},
            profile_expects_nil=profile_expects_nil,
            new_id=new_id,
            environment=environment,
            mode=mode,
            sellers=sellers,
            withdraw=withdraw,
            authority=authority,
            year=year,
            indic=indic,
            empty_message_type=empty_message_type,
        )
    po_now: tuple[str, Any] | None = None
    po_live: LiveRecord | None = None
    first_live: list[RecordKey] = []  # the first few, to name them
    used: set[str] = set()
    has_sellers = new_sellers = False
    changes: list[Change] = []
    new: list[Item] = []
    out = sink() if sink is not None else None  # the new records wait there, not in ``new``
    pairs = _merged(
        _in_order(current, "current", lambda i: i[0], period), _in_order(live, "live", lambda r: r.key, period)
    )
    for key, now, filed in pairs:
        if filed is not None:
            used.add(filed.doc_ref_id)
            if len(first_live) < 5:
                first_live.append(key)
        if now is not None:
            has_sellers = has_sellers or key[0] == SELLER
        if key == PO_KEY:
            po_now, po_live = ((now[1], now[2]) if now is not None else None), filed
        elif filed is None:
            assert now is not None
            new_sellers = new_sellers or key[0] == SELLER
            if out is not None:
                out.keep(now)
            else:
                new.append(now)
        elif now is None:
            changes.append((key, None, filed))
        elif now[1] != filed.content_hash or filed.rejected:
            changes.append((key, (now[1], now[2]), filed))
    if po_now is None:
        raise _no_platform_operator(period)
    if po_live is None and used:
        raise LedgerError(
            f"the ledger of {period} holds live records but no live PlatformOperator "
            f"({', '.join(key_label(k) for k in first_live)}); it needs a look by hand before the next filing"
        )
    b = _Builder(new_id, used, environment, authority, year, indic, empty_message_type)
    if po_live is None:
        # nothing is live: all is new
        if out is not None:
            return _initial_items(b, po_now, out.kept(), nil_ok=profile_expects_nil, sellers=new_sellers, sink=out)
        return _initial_items(b, po_now, new, nil_ok=profile_expects_nil, sellers=new_sellers)
    if out is not None:
        new = list(out.kept())
    messages: list[PlannedMessage] = []
    correction = _correction_of(b, po_now, po_live, po_now[0] != po_live.content_hash or po_live.rejected, changes)
    po_ref = po_live.doc_ref_id
    if correction is not None:
        messages.append(correction)
        po_ref = correction.platform_operator.doc_ref_id
    if new:
        messages.append(_additional_items(b, po_now, new, po_ref, has_sellers, period))
    return messages


def apply_message(live: Live, message: PlannedMessage, *, message_ref_id: str = "") -> dict[RecordKey, LiveRecord]:
    """The live state once ``message`` is published: new and corrected records become the live
    versions, deleted ones leave it, resends change nothing."""
    out = dict(live)
    for r in message.records:
        if r.doc_type == RESEND:
            continue
        if r.doc_type == DELETION:
            out.pop(r.key, None)
        else:
            out[r.key] = LiveRecord(
                kind=r.kind,
                seller_key=r.seller_key,
                doc_ref_id=r.doc_ref_id,
                doc_type_indic=r.doc_type_indic,
                content_hash=r.content_hash,
                content=r.content,
                message_ref_id=message_ref_id,
            )
    return out


# ------------------------------------------------------------------------------------------ modes


def _auto(b: _Builder, current: Current, live: Live, nil_ok: bool, period: str) -> list[PlannedMessage]:
    if not live:
        return _initial(b, current, nil_ok=nil_ok)
    diff = _diff(current, live)
    messages: list[PlannedMessage] = []
    correction = _correction(b, current, live, diff)
    po_ref = live[PO_KEY].doc_ref_id
    if correction is not None:
        messages.append(correction)
        po_ref = correction.platform_operator.doc_ref_id
    if diff.new:
        messages.append(_additional(b, current, diff.new, po_ref, period))
    return messages


def _mode_new(b: _Builder, current: Current, live: Live, period: str) -> list[PlannedMessage]:
    if live:
        raise LedgerModeError(
            f"mode new: {period} already has a live filing (message {live[PO_KEY].message_ref_id}); "
            "use auto for what changed since, or deletion to withdraw it first"
        )
    if not _sellers(current):
        raise LedgerModeError(f"mode new: no reportable seller for {period}; use nil for a nil report")
    return _initial(b, current, nil_ok=False)


def _mode_nil(b: _Builder, current: Current, live: Live, period: str) -> list[PlannedMessage]:
    if live:
        raise LedgerModeError(
            f"mode nil: {period} already has a live filing (message {live[PO_KEY].message_ref_id}); "
            "a nil report can only be the first filing of a period: use deletion to withdraw it first"
        )
    n = len(_sellers(current))
    if n:
        raise LedgerModeError(f"mode nil: {n} reportable seller(s) for {period}; a nil report has none: use new")
    return _initial(b, current, nil_ok=True)


def _mode_correction(b: _Builder, current: Current, live: Live, period: str) -> list[PlannedMessage]:
    if not live:
        raise LedgerModeError(f"mode correction: nothing was filed for {period} yet; use new")
    diff = _diff(current, live)
    if diff.new:
        raise LedgerModeError(
            f"mode correction: {len(diff.new)} record(s) of {period} were never filed "
            f"({_labels(diff.new)}); new records go in a DPI401 of their own: use auto"
        )
    message = _correction(b, current, live, diff)
    if message is None:
        raise LedgerModeError(
            f"mode correction: nothing changed in {period} since the live filing; there is nothing to correct"
        )
    return [message]


def _mode_deletion(
    b: _Builder, live: Live, sellers: Collection[str] | None, withdraw: bool, period: str
) -> list[PlannedMessage]:
    if not live:
        raise LedgerModeError(f"mode deletion: nothing was filed for {period} yet; there is nothing to delete")
    if withdraw:
        if sellers:
            raise ValueError("withdraw deletes every record: it takes no sellers")
        # EU rule 80009: the PlatformOperator goes only with every other record of the period.
        records = [b.deletion(live[PO_KEY])] + [b.deletion(live[k]) for k in body_order(k for k in live if k != PO_KEY)]
        return [b.message(DPI402, records)]
    wanted = sorted(set(sellers or ()))
    if not wanted:
        raise LedgerModeError(
            "mode deletion: name the sellers to delete, or withdraw the whole filing (PlatformOperator included)"
        )
    missing = [s for s in wanted if (SELLER, s) not in live]
    if missing:
        raise LedgerModeError(
            f"mode deletion: {len(missing)} seller(s) have no live record in {period} "
            f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}); nothing of theirs can be deleted"
        )
    po = live[PO_KEY]
    records = [b.resend(po.doc_ref_id, po.content_hash, po.content)]
    records += [b.deletion(live[(SELLER, s)]) for s in wanted]
    return [b.message(DPI402, records)]


# ---------------------------------------------------------------------------------------- helpers


@dataclass(frozen=True, slots=True)
class _Diff:
    new: list[RecordKey]
    changed: list[RecordKey]  # content changed, or the authority rejected the live version
    gone: list[RecordKey]
    po_changed: bool


def _diff(current: Current, live: Live) -> _Diff:
    po = live[PO_KEY]
    return _Diff(
        new=body_order(k for k in current if k not in live and k != PO_KEY),
        changed=body_order(
            k
            for k in current
            if k in live and k != PO_KEY and (current[k][0] != live[k].content_hash or live[k].rejected)
        ),
        gone=body_order(k for k in live if k not in current and k != PO_KEY),
        po_changed=current[PO_KEY][0] != po.content_hash or po.rejected,
    )


#: A record of what would be reported now: its key, content hash and content.
Item = tuple[RecordKey, str, Any]
#: A record that differs between now and the ledger: its item now (None: gone), its live version
#: (None: new).
Change = tuple[RecordKey, tuple[str, Any] | None, LiveRecord | None]


def _initial(b: _Builder, current: Current, *, nil_ok: bool) -> list[PlannedMessage]:
    items = [(k, *current[k]) for k in [*_others(current), *_sellers(current)]]
    return _initial_items(b, current[PO_KEY], items, nil_ok=nil_ok, sellers=any(k[0] == SELLER for k, _, _ in items))


def _initial_items(
    b: _Builder,
    po: tuple[str, Any],
    items: Iterable[Item],
    *,
    nil_ok: bool,
    sellers: bool,
    sink: RecordSink | None = None,
) -> list[PlannedMessage]:
    """The first filing: the PlatformOperator and ``items`` (in body order; ``sellers``: whether
    one is a seller) new; written to ``sink`` if one is given (nothing live: every DocRefId is one
    made here)."""
    if not sellers and not nil_ok:
        return []
    message_type = DPI401 if sellers else b.empty_message_type
    if sink is not None and not b.used:
        try:
            sink.add(b.new(PO_KEY, *po, check=False))
            for k, h, content in items:
                sink.add(b.new(k, h, content, check=False))
            view = sink.done()
        except DocRefIdTakenError as exc:
            raise b.reused(exc.doc_type, exc.key, exc.doc_ref_id) from None
        return [b.message(message_type, view)]
    records = [b.new(PO_KEY, *po)]
    records += [b.new(k, h, content) for k, h, content in items]
    return [b.message(message_type, records)]


def _correction(b: _Builder, current: Current, live: Live, diff: _Diff) -> PlannedMessage | None:
    changes: list[Change] = [(k, current.get(k), live[k]) for k in body_order([*diff.changed, *diff.gone])]
    return _correction_of(b, current[PO_KEY], live[PO_KEY], diff.po_changed, changes)


def _correction_of(
    b: _Builder, po_now: tuple[str, Any], po: LiveRecord, po_changed: bool, changes: list[Change]
) -> PlannedMessage | None:
    """The DPI402 of the changed and gone records (``changes``, in body order), if any."""
    if not (changes or po_changed):
        return None
    h, content = po_now
    records = [b.correction(PO_KEY, h, content, po) if po_changed else b.resend(po.doc_ref_id, h, content)]
    for key, now, target in changes:
        assert target is not None  # a change is a correction or a deletion of a live record
        records.append(b.correction(key, *now, target) if now is not None else b.deletion(target))
    return b.message(DPI402, records)


def _additional(b: _Builder, current: Current, new: list[RecordKey], po_ref: str, period: str) -> PlannedMessage:
    items = [(k, *current[k]) for k in new]
    return _additional_items(b, current[PO_KEY], items, po_ref, bool(_sellers(current)), period)


def _additional_items(
    b: _Builder, po: tuple[str, Any], new: list[Item], po_ref: str, has_sellers: bool, period: str
) -> PlannedMessage:
    """The DPI401 of the ``new`` records (the PlatformOperator resent under ``po_ref``);
    ``has_sellers``: whether anything reportable now is a seller."""
    h, content = po
    records = [b.resend(po_ref, h, content)] + [b.new(k, kh, kc) for k, kh, kc in new]
    if any(k[0] == SELLER for k, _, _ in new):
        return b.message(DPI401, records)
    if not has_sellers:
        # A period without sellers that gains an other operator: the declaration of an operator
        # whose reporting another assumes (or a nil report that comes to name one).
        return b.message(b.empty_message_type, records)
    labels = _labels([k for k, _, _ in new])
    raise LedgerModeError(
        f"mode auto: in {period} other operator(s) are new ({labels}) but no seller is; a DPI401 "
        "needs a new seller (EU rule 20040) and a DPI402 cannot carry new records (80010): file them with the "
        "next new seller, or withdraw and refile the period"
    )


def _sellers(records: Iterable[RecordKey]) -> list[RecordKey]:
    return body_order(k for k in records if k[0] == SELLER)


def _others(records: Iterable[RecordKey]) -> list[RecordKey]:
    return body_order(k for k in records if k[0] == OTHER_PLATFORM_OPERATORS)


def body_order(keys: Iterable[RecordKey]) -> list[RecordKey]:
    """Body order: PlatformOperator, the other operators by key, then the sellers by seller_key."""
    return sorted(keys, key=_order_key)


def _labels(keys: Sequence[RecordKey], limit: int = 5) -> str:
    text = ", ".join(key_label(k) for k in keys[:limit])
    return text + (" ..." if len(keys) > limit else "")


def _check_arguments(
    empty_message_type: str, environment: str, mode: str, sellers: Collection[str] | None, withdraw: bool
) -> None:
    if empty_message_type not in (DPI401, DPI403):
        raise ValueError(f"empty_message_type {empty_message_type!r}: expected DPI401 or DPI403")
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment {environment!r}: expected one of {', '.join(ENVIRONMENTS)}")
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    if mode != "deletion" and (sellers is not None or withdraw):
        raise ValueError("sellers and withdraw go with mode 'deletion' only")


def _no_platform_operator(period: str) -> PlanInputError:
    return PlanInputError(
        f"the records of {period} as read now (current) must hold the PlatformOperator record "
        "(key ('platform_operator', None))"
    )


def _order_key(key: RecordKey) -> tuple[int, str]:
    return (KINDS.index(key[0]), key[1] or "")


def _in_order(items: Iterable[T], name: str, key_of: Callable[[T], RecordKey], period: str) -> Iterator[T]:
    """``items`` as they come, refused at the first one with a malformed key or out of body order
    (:class:`reporting.ledger.errors.PlanInputError` naming the period, the stream and the key)."""
    last: tuple[int, str] | None = None
    for item in items:
        key = key_of(item)
        try:
            _check_keys({key: None}, name)
        except ValueError as exc:
            raise PlanInputError(f"{period}: {exc}") from None
        at = _order_key(key)
        if last is not None and at <= last:
            raise PlanInputError(f"{period}: {name}: {key_label(key)} comes after a record it should precede, or twice")
        last = at
        yield item


def _merged(
    current: Iterator[Item], live: Iterator[LiveRecord]
) -> Iterator[tuple[RecordKey, Item | None, LiveRecord | None]]:
    """The two streams merged in body order: each key once, with its item now and its live version."""
    now, filed = next(current, None), next(live, None)
    while now is not None or filed is not None:
        a = _order_key(now[0]) if now is not None else None
        z = _order_key(filed.key) if filed is not None else None
        if z is None or (a is not None and a < z):
            assert now is not None
            yield now[0], now, None
            now = next(current, None)
        elif a is None or z < a:
            assert filed is not None
            yield filed.key, None, filed
            filed = next(live, None)
        else:
            assert now is not None and filed is not None
            yield now[0], now, filed
            now, filed = next(current, None), next(live, None)


def _check_keys(records: Mapping[RecordKey, Any], name: str) -> None:
    for kind, seller_key in records:
        if kind not in KINDS:
            raise ValueError(f"{name}: record kind {kind!r}: expected one of {', '.join(KINDS)}")
        if (kind == PLATFORM_OPERATOR) != (seller_key is None):
            raise ValueError(
                f"{name}: the PlatformOperator record has no key, a seller or other operator record has one ({kind!r})"
            )


class _Builder:
    """Makes the planned records of one plan, and makes sure no DocRefId is made twice."""

    def __init__(
        self,
        new_id: Callable[[str], str],
        used: set[str],
        environment: str,
        authority: str,
        year: int | None,
        indic: DocTypeIndic,
        empty_message_type: str = DPI403,
    ) -> None:
        self.empty_message_type = empty_message_type
        self.new_id = new_id
        self.used = used  # the DocRefIds of the live records, and those made since
        self.environment = environment
        self.authority = authority
        self.year = year
        self.indic = indic

    @staticmethod
    def purpose(doc_type: str, key: RecordKey) -> str:
        kind, seller_key = key
        return f"{doc_type}:{kind}" + (f":{seller_key}" if seller_key is not None else "")

    def reused(self, doc_type: str, key: RecordKey, doc_ref_id: str) -> LedgerError:
        return LedgerError(
            f"new_id({self.purpose(doc_type, key)!r}) returned {doc_ref_id}, a DocRefId already used (EU rule 80000); "
            "DocRefIds are never reused"
        )

    def fresh(self, doc_type: str, key: RecordKey, *, check: bool = True) -> str:
        """A new DocRefId; ``check=False``: its record goes to a :class:`RecordSink`, which refuses
        an id used twice (and ``used`` does not hold it)."""
        purpose = self.purpose(doc_type, key)
        doc_ref_id = self.new_id(purpose)
        if not isinstance(doc_ref_id, str) or not doc_ref_id:
            raise LedgerError(f"new_id({purpose!r}) returned {doc_ref_id!r}, not a DocRefId")
        if check:
            if doc_ref_id in self.used:
                raise self.reused(doc_type, key, doc_ref_id)
            self.used.add(doc_ref_id)
        return doc_ref_id

    def _record(
        self, key: RecordKey, doc_type: str, doc_ref_id: str, corr: str | None, h: str, content: Any
    ) -> PlannedRecord:
        return PlannedRecord(
            kind=key[0],
            seller_key=key[1],
            doc_type=doc_type,
            doc_type_indic=self.indic(doc_type, self.environment),
            doc_ref_id=doc_ref_id,
            corr_doc_ref_id=corr,
            content_hash=h,
            content=content,
        )

    def new(self, key: RecordKey, h: str, content: Any, *, check: bool = True) -> PlannedRecord:
        return self._record(key, NEW, self.fresh(NEW, key, check=check), None, h, content)

    def resend(self, doc_ref_id: str, h: str, content: Any) -> PlannedRecord:
        return self._record(PO_KEY, RESEND, doc_ref_id, None, h, content)

    def correction(self, key: RecordKey, h: str, content: Any, target: LiveRecord) -> PlannedRecord:
        return self._record(key, CORRECTION, self.fresh(CORRECTION, key), target.doc_ref_id, h, content)

    def deletion(self, target: LiveRecord) -> PlannedRecord:
        # The deletion carries what was filed: the authority's record is the one it removes.
        return self._record(
            target.key,
            DELETION,
            self.fresh(DELETION, target.key),
            target.doc_ref_id,
            target.content_hash,
            target.content,
        )

    def message(self, message_type_indic: str, records: Sequence[PlannedRecord]) -> PlannedMessage:
        return PlannedMessage(
            message_type_indic=message_type_indic,
            records=records if isinstance(records, RecordsView) else tuple(records),
            environment=self.environment,
            authority=self.authority,
            year=self.year,
        )


# --------------------------------------------------------------------------------------- checking


def ledger_problems(
    planned: Sequence[PlannedMessage],
    live: Live,
    *,
    known: Mapping[str, KnownRecord] | None = None,
) -> list[Problem]:
    """The EU rules a plan would break against the ledger, as ``(code, message)`` pairs.

    ``known`` holds what the ledger knows of the DocRefIds the plan names (any period, any state:
    :meth:`reporting.ledger.Ledger.known_records`); without it, only the live state and the plan
    itself tell a reused or outdated id. The messages are checked in order, each against the state
    the earlier ones leave once published. Checked: 80000, 80002, 80003, 80004, 80008, 80009,
    80010, 80011, 80013, 80014, 90030, 90040.
    """
    known = known or {}
    problems: list[Problem] = []
    state = dict(live)
    filed = {r.doc_ref_id for r in live.values()}  # ids of this period that were sent (live or not)
    for i, message in enumerate(planned, 1):
        problems += _message_problems(message, f"message {i} ({message.message_type_indic})", state, filed, known)
        if i < len(planned):  # the state after the last message is not needed
            filed |= {r.doc_ref_id for r in message.records if r.doc_type != RESEND}
            state = apply_message(state, message)
    return problems


def _used(k: KnownRecord | None, r: PlannedRecord) -> bool:
    """Whether the ledger holds this DocRefId for another record. The plan's own record, already
    recorded as rendered (a preflight after :meth:`~reporting.ledger.Ledger.record_message`), is
    not another record."""
    if k is None:
        return False
    same = (k.kind, k.seller_key, k.doc_type) == (r.kind, r.seller_key, r.doc_type)
    return not (k.message_status == RENDERED and same)


def _sent_here(k: KnownRecord | None, message: PlannedMessage) -> bool:
    """Whether the authority of ``message`` has seen this record (so it is outdated, not unknown)."""
    return (
        k is not None
        and k.message_status in (PUBLISHED, ACCEPTED, REJECTED)
        and k.environment == message.environment
        and (not message.authority or k.authority == message.authority)
        and (message.year is None or k.year == message.year)
    )


def _message_problems(
    message: PlannedMessage,
    where: str,
    state: Mapping[RecordKey, LiveRecord],
    filed: set[str],
    known: Mapping[str, KnownRecord],
) -> list[Problem]:
    out: list[Problem] = []
    live_ids = {r.doc_ref_id: k for k, r in state.items()}
    types: Counter[str] = Counter()
    pos: list[PlannedRecord] = []
    ids_here: set[str] = set()
    # a view's DocRefIds are distinct (a unique index): none is used twice in the message, and
    # ``ids_here`` need not hold them all
    distinct = isinstance(message.records, RecordsView)
    corrected: Counter[str] = Counter()
    for r in message.records:  # one pass: the records may be read back from a file
        types[r.doc_type] += 1
        if r.kind == PLATFORM_OPERATOR:
            pos.append(r)
        at = f"{where}, {key_label(r.key)} {r.doc_type} {r.doc_ref_id}"
        if r.doc_type != RESEND:
            if r.doc_ref_id in filed or r.doc_ref_id in ids_here or _used(known.get(r.doc_ref_id), r):
                out.append(("80000", f"{at}: the DocRefId is already used for another record; ids are never reused"))
            if not distinct:
                ids_here.add(r.doc_ref_id)
        if r.doc_type in (NEW, RESEND) and r.corr_doc_ref_id:
            out.append(("80004", f"{at}: a new or resent record names CorrDocRefId {r.corr_doc_ref_id}"))
        if r.doc_type in (CORRECTION, DELETION):
            corr = r.corr_doc_ref_id
            if not corr:
                out.append(("90040", f"{at}: a correction or deletion without CorrDocRefId"))
                continue
            corrected[corr] += 1
            target = live_ids.get(corr)
            if target is None:
                if corr in filed or _sent_here(known.get(corr), message):
                    out.append(
                        (
                            "80003",
                            f"{at}: CorrDocRefId {corr} is no longer valid (corrected, deleted, or its message "
                            "was rejected); name the live version",
                        )
                    )
                else:
                    out.append(("80002", f"{at}: CorrDocRefId {corr} refers to a record this authority never got"))
            elif target != r.key:
                out.append(("80003", f"{at}: CorrDocRefId {corr} is the live version of {key_label(target)}"))
        if r.doc_type == RESEND:
            po = state.get(PO_KEY)
            if r.kind != PLATFORM_OPERATOR:
                out.append(("80008", f"{at}: only the PlatformOperator can be resent (OECD0)"))
            elif po is None or po.doc_ref_id != r.doc_ref_id:
                if r.doc_ref_id in filed or _sent_here(known.get(r.doc_ref_id), message):
                    out.append(("80014", f"{at}: the resent DocRefId is no longer the live PlatformOperator"))
                else:
                    out.append(("80013", f"{at}: the resent DocRefId was never filed with this authority"))
    out += [
        ("80011", f"{where}: DocRefId {corr} is corrected or deleted {n} times in the message")
        for corr, n in corrected.items()
        if n > 1
    ]
    has_new, has_corr = types[NEW] > 0, types[CORRECTION] + types[DELETION] > 0
    if has_new and has_corr:
        out.append(("80010", f"{where}: new records (OECD1) and corrections or deletions in one message"))
    if (
        (message.message_type_indic == DPI401 and types[DELETION])
        or (message.message_type_indic == DPI402 and has_new)
        or (message.message_type_indic == DPI403 and has_corr)
    ):
        out.append(("80010", f"{where}: the records' DocTypeIndic do not fit MessageTypeIndic"))
    if message.records and types[RESEND] == len(message.records):
        out.append(("90030", f"{where}: the message only resends records (OECD0)"))
    if len(pos) != 1:
        out.append(("structure", f"{where}: {len(pos)} PlatformOperator records; a message has exactly one"))
    elif pos[0].doc_type == DELETION:
        deleted = {r.key for r in message.records if r.doc_type == DELETION}
        kept = [r for r in message.records if r.doc_type != DELETION]
        remaining = [k for k in state if k not in deleted]
        if kept or remaining:
            out.append(
                (
                    "80009",
                    f"{where}: the PlatformOperator is deleted while {len(kept) + len(remaining)} other record(s) "
                    "of the period are not",
                )
            )
    return out
