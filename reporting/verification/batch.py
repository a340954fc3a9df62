"""Verify a batch of identifiers with the configured adapters: the cache first, then the
services, with retries and a rate limit, and a record of every call in the ledger.

    with open_ledger(url) as ledger:
        results = verify_batch(items, build_adapters(config), ledger, today, key=hash_key(env[KEY_ENV]))

For each adapter and each item it accepts:

1. **Cache.** An answer of the same adapter about the same identifier (its keyed hash; for a TIN,
   of the same seller type too: :func:`reporting.verification.model.cache_key`) given not
   more than ``cache_months`` months before ``today`` is reused: no call, no new record (PStTG
   § 20(2): information checked "vor nicht mehr als 36 Monaten" may be relied on). An answer given
   on day D is reused through the day D + N months (the same day of the month; the last day of a
   shorter month), days counted in UTC. Only conclusive answers (verified, invalid) are cached.
   An invalid answer about a registration (VIES: the number not in the register) is reused only
   through D + ``invalid_cache_days`` days: a registration may become valid any day, and a "not
   valid" leads to requests and measures. ``refresh`` passes over the cache for the sellers, and
   the items, whose data the platform reports as resubmitted.
2. **Not asked.** When a service has answered for a whole member state (VIES's MS_UNAVAILABLE
   after every retry, its check-status) or for itself (SERVICE_UNAVAILABLE, timeouts, refused
   connections after every retry; a refused requester), the items it would have answered the
   same way are not asked again in this batch: unverified, with the reason, without a record (no
   call was made). So is every item after ``max_calls`` calls.
3. **Calls.** Each call waits for the adapter's rate limit, and is recorded in
   ``ledger_verification_calls`` when it is answered or fails (time, adapter, kind, country, keyed
   hash and masked identifier, seller, attempt, outcome, the service's words, the consultation
   number). A failure that may pass (:attr:`Answer.retry`) is retried after ``backoff_seconds``,
   doubled before each further retry (at most 60 s), up to ``max_attempts`` calls in all.

``today`` decides which cached answers are fresh; the time of each call is the clock's (the real
time of the call is what the record must say), UTC.
"""

from __future__ import annotations

import calendar
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from reporting.ledger import Ledger
from reporting.ledger.model import CACHED_STATES, INVALID, UNVERIFIED, VERIFIED
from reporting.ledger.verifications import CachedAnswer, CallRecord, cached_answers, record
from reporting.verification.base import Adapter
from reporting.verification.model import (
    LEVELS,
    REGISTRATION,
    Answer,
    Item,
    VerificationResult,
    cache_key,
    identifier_hash,
    vies_country,
)

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0
#: how the detail of an item not asked because of ``max_calls`` begins
OVER_LIMIT = "not asked: this batch's limit of"
_FLUSH = 500  # calls of a local adapter recorded together


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, the day of the month kept where the month has it,
    else the month's last day (31 January + 1 month = 28 or 29 February)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def oldest_reusable(today: date, months: int) -> date:
    """The earliest day whose answers may still be reused on ``today``: the first day D with
    ``add_months(D, months) >= today`` (an answer is "not more than N months" old through the day
    D + N months)."""
    day = add_months(today, -months)
    while add_months(day, months) < today:
        day += timedelta(days=1)
    while add_months(day - timedelta(days=1), months) >= today:
        day -= timedelta(days=1)
    return day


def verify_batch(
    items: Sequence[Item],
    adapters: Sequence[Adapter],
    ledger: Ledger,
    today: date,
    *,
    key: bytes,
    clock: Callable[[], datetime] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_calls: int | None = None,
    refresh: Iterable[str | Item] = (),
) -> list[VerificationResult]:
    """The results of every adapter about every item it accepts, in the order of ``items`` (and,
    for one item, of ``adapters``). ``key`` is the key of the identifier hashes
    (:func:`reporting.verification.model.hash_key`); ``max_calls`` caps the calls of each adapter
    in this batch (an Airflow task's time limit). ``refresh``: seller ids, and items, whose
    answers are not taken from the cache (every item of such a seller; an item of the same
    seller, identifier and seller type): the data the platform reports the seller resubmitted,
    which is asked again at once, however fresh the cached answer."""
    now = clock or (lambda: datetime.now(UTC))
    hashes = [identifier_hash(key, item) for item in items]
    keys = [cache_key(key, item) for item in items]
    wanted = [refresh] if isinstance(refresh, str) else list(refresh)
    if any(not isinstance(w, str | Item) for w in wanted):
        raise TypeError("refresh takes seller ids (str) and items (Item)")
    sellers = {w for w in wanted if isinstance(w, str)}
    resubmitted = {(w.seller_id, cache_key(key, w)) for w in wanted if isinstance(w, Item)}
    renew = [
        item.seller_id in sellers or (item.seller_id, k) in resubmitted for item, k in zip(items, keys, strict=True)
    ]
    per_item: list[list[VerificationResult]] = [[] for _ in items]
    for adapter in adapters:
        run = _AdapterRun(adapter, ledger, now, sleep, max_calls)
        try:
            todo = [
                _Todo(i, items[i], hashes[i], keys[i], renew[i]) for i in range(len(items)) if adapter.accepts(items[i])
            ]
            run.verify(todo, today)
        finally:
            run.flush()
        for i, result in run.results:
            per_item[i].append(result)
        counts = ", ".join(f"{n} {what}" for what, n in sorted(run.counts.items()))
        log.info("verification %s: %d item(s): %s", adapter.name, len(run.results), counts or "nothing")
    return [r for results in per_item for r in results]


def _country(item: Item) -> str:
    """The key of an item's member state in a batch's breakers: Greece is EL (as VIES and TIN on
    the Web name it), whether the item says GR or EL."""
    return vies_country(item.country)


def conclusion(results: Sequence[VerificationResult]) -> VerificationResult | None:
    """The result that decides an item: the conclusive answer (verified or invalid) that rests on
    the most (VIES's registration over TIN on the Web's published rules over python-stdnum's
    format), the latest among equals; else the first unverified result; None for none."""
    conclusive = [r for r in results if r.state in (VERIFIED, INVALID)]
    if conclusive:
        return max(conclusive, key=lambda r: (LEVELS.index(r.level), r.checked_at))
    return results[0] if results else None


@dataclass(frozen=True, slots=True, repr=False)
class ItemOutcome:
    """What a batch concluded about one item: ``state`` verified, invalid or unverified, decided
    by ``decided_by`` (:func:`conclusion` of the item's ``results``); an item that no adapter of
    the batch accepts (a TIN with only ``vies`` switched on, a TIN of a country outside the EU
    with only the Commission's services) has no result, ``checked`` false, and is unverified with
    a ``detail`` that says so: it is never left out."""

    item: Item
    state: str
    detail: str
    decided_by: VerificationResult | None
    results: tuple[VerificationResult, ...]

    @property
    def checked(self) -> bool:
        """Whether any adapter gave a result about the item."""
        return bool(self.results)

    def __repr__(self) -> str:
        return f"ItemOutcome({self.item!r}, {self.state}, {self.detail!r})"


def results_by_item(items: Sequence[Item], results: Sequence[VerificationResult]) -> list[ItemOutcome]:
    """One :class:`ItemOutcome` per item, in the order of ``items``, from ``verify_batch``'s
    ``results``: each item's results (one per adapter; two equal items share them) with their
    :func:`conclusion` applied, and an explicit "not checked" for an item no adapter accepted."""
    grouped: dict[Item, dict[str, VerificationResult]] = {}
    for result in results:
        grouped.setdefault(result.item, {}).setdefault(result.adapter, result)
    outcomes = []
    for item in items:
        mine = tuple(grouped.get(item, {}).values())
        decided = conclusion(mine)
        if decided is None:
            detail = f"not checked: no adapter of this batch checks a {item.kind} of {item.country.upper()}"
            outcomes.append(ItemOutcome(item, UNVERIFIED, detail, None, ()))
        else:
            outcomes.append(ItemOutcome(item, decided.state, f"{decided.adapter}: {decided.detail}", decided, mine))
    return outcomes


@dataclass(frozen=True, slots=True)
class _Todo:
    """An item an adapter accepts: its place in the batch, its identifier hash, its cache key, and
    whether its cached answer is passed over (``refresh``)."""

    index: int
    item: Item
    digest: str
    key: str
    refresh: bool


class _AdapterRun:
    """One adapter's part of a batch: its cache, its breakers, its calls waiting to be recorded."""

    def __init__(
        self,
        adapter: Adapter,
        ledger: Ledger,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
        max_calls: int | None,
    ) -> None:
        self.adapter = adapter
        self.engine = ledger.engine
        self.clock = clock
        self.sleep = sleep
        self.max_calls = max_calls
        self.calls_made = 0
        self.results: list[tuple[int, VerificationResult]] = []
        self.counts: Counter[str] = Counter()
        self.broken: dict[str, str] = {}  # "service" or a country: why it is not asked again
        self._calls: list[CallRecord] = []
        self._answers: list[CachedAnswer] = []

    def verify(self, todo: list[_Todo], today: date) -> None:
        settings = self.adapter.settings
        stored: dict[str, CachedAnswer] = {}  # from earlier batches
        fresh: dict[str, CachedAnswer] = {}  # given in this batch
        asked_from_cache = [t.key for t in todo if not t.refresh]
        if asked_from_cache and settings.cache_months > 0:
            oldest = oldest_reusable(today, settings.cache_months)
            invalid_since = None
            if self.adapter.level == REGISTRATION:  # a registration may change any day
                invalid_since = datetime.combine(
                    max(oldest, today - timedelta(days=settings.invalid_cache_days)), datetime.min.time()
                )
            stored = cached_answers(
                self.engine,
                self.adapter.name,
                asked_from_cache,
                checked_since=datetime.combine(oldest, datetime.min.time()),
                invalid_since=invalid_since,
            )
        status_asked = False
        for todo_item in todo:
            index, item, digest, key = todo_item.index, todo_item.item, todo_item.digest, todo_item.key
            cached = fresh.get(key) or (None if todo_item.refresh else stored.get(key))
            if cached is not None:
                self._add(index, self._from_cache(item, digest, cached), "from the cache")
                continue
            if not status_asked:  # once per batch, and only when an item is to be asked
                status_asked = True
                self.broken.update(self.adapter.unavailable())
            reason = self._over_limit() or self.broken.get("service") or self.broken.get(_country(item))
            if reason:
                self._add(index, self._result(item, digest, Answer(UNVERIFIED, reason), self.clock(), 0), "not asked")
                continue
            result = self._ask(item, digest, key)
            self._add(index, result, result.state)
            if result.state in CACHED_STATES:
                fresh[key] = self._answers[-1]  # the same identifier again in this batch: not asked twice
            if self.adapter.remote or len(self._calls) >= _FLUSH:
                self.flush()

    def flush(self) -> None:
        calls, answers = self._calls, self._answers
        self._calls, self._answers = [], []
        record(self.engine, calls, answers)

    def _over_limit(self) -> str:
        if self.max_calls is not None and self.calls_made >= self.max_calls:
            return f"{OVER_LIMIT} {self.max_calls} call(s) was reached; asked in a later batch"
        return ""

    def _add(self, index: int, result: VerificationResult, what: str) -> None:
        self.results.append((index, result))
        self.counts[what] += 1

    def _ask(self, item: Item, digest: str, key: str) -> VerificationResult:
        settings = self.adapter.settings
        attempt = 0
        while True:
            attempt += 1
            self.adapter.pace()
            started = time.monotonic()
            answer = self._call(item)
            at = self.clock()
            self.calls_made += 1
            self._calls.append(
                CallRecord(
                    at=at,
                    adapter=self.adapter.name,
                    kind=item.kind,
                    country=item.country.upper(),
                    identifier_hash=digest,
                    identifier_masked=item.masked,
                    seller_id=item.seller_id,
                    attempt=attempt,
                    outcome=answer.state,
                    detail=answer.detail,
                    evidence=answer.evidence,
                    request_date=answer.request_date,
                    source=self.adapter.source,
                    duration_ms=round((time.monotonic() - started) * 1000),
                )
            )
            if not answer.retry or attempt >= settings.max_attempts or self._over_limit():
                break
            self.sleep(min(settings.backoff_seconds * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))
        if answer.retry:
            answer = Answer(answer.state, f"{answer.detail}; gave up after {attempt} call(s)", scope=answer.scope)
        if answer.state == UNVERIFIED and answer.scope != "item":
            where = "service" if answer.scope == "service" else _country(item)
            self.broken.setdefault(where, f"not asked: {answer.detail} (earlier in this batch)")
        if answer.state in CACHED_STATES:
            self._answers.append(
                CachedAnswer(
                    adapter=self.adapter.name,
                    identifier_hash=key,
                    kind=item.kind,
                    country=item.country.upper(),
                    state=answer.state,
                    detail=answer.detail,
                    evidence=answer.evidence,
                    request_date=answer.request_date,
                    source=self.adapter.source,
                    checked_at=at,
                )
            )
        return self._result(item, digest, answer, at, attempt)

    def _call(self, item: Item) -> Answer:
        """The adapter's answer; an exception (a defect of the adapter: an adapter classifies what
        the service and the network do) becomes an unverified answer that reaches the service, so
        that the call is recorded, the batch goes on and this adapter is asked no more in it. Its
        type is named, never its message (which could quote the identifier)."""
        try:
            return self.adapter.call(item)
        except Exception as exc:
            log.error(
                "verification %s: the adapter failed (%s); it is asked no more in this batch",
                self.adapter.name,
                type(exc).__name__,
            )
            return Answer(UNVERIFIED, f"the adapter failed ({type(exc).__name__})", scope="service")

    def _result(self, item: Item, digest: str, answer: Answer, at: datetime, attempts: int) -> VerificationResult:
        return VerificationResult(
            item=item,
            adapter=self.adapter.name,
            state=answer.state,
            level=self.adapter.level,
            source=self.adapter.source,
            checked_at=at if at.tzinfo else at.replace(tzinfo=UTC),
            detail=answer.detail,
            identifier_hash=digest,
            evidence=answer.evidence,
            request_date=answer.request_date,
            attempts=attempts,
        )

    def _from_cache(self, item: Item, digest: str, cached: CachedAnswer) -> VerificationResult:
        return VerificationResult(
            item=item,
            adapter=self.adapter.name,
            state=cached.state,
            level=self.adapter.level,
            source=cached.source,
            checked_at=cached.checked_at.replace(tzinfo=UTC),
            detail=cached.detail or "",
            identifier_hash=digest,
            evidence=cached.evidence,
            request_date=cached.request_date,
            cached=True,
        )
