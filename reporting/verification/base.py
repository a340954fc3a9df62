"""The interface every verification adapter has, and what the adapters that call a service share:
the rate limit, one HTTP client with the configured timeout, a size limit on answers, and the
translation of transport failures into answers.

An adapter makes one call per :meth:`Adapter.call` and classifies what came back
(:class:`reporting.verification.model.Answer`); retries, the cache and the record of each call
are the batch's (:mod:`reporting.verification.batch`), the same for every adapter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import httpx

from reporting.config import AdapterSettings
from reporting.ledger.model import UNVERIFIED
from reporting.verification.model import Answer, Item

#: the largest answer read from a service: VIES and TIN on the Web answer in a few hundred bytes
MAX_ANSWER_BYTES = 1 << 20
USER_AGENT = "dac7-reporting (DAC7 due diligence)"


class Adapter(Protocol):
    """A verification adapter: ``name`` (its ``[verification.NAME]`` table, its rows in the
    ledger), ``level`` (what a verified answer rests on), ``remote`` (whether it calls a
    service: its calls are recorded as they happen), ``settings``."""

    name: str
    level: str
    remote: bool
    settings: AdapterSettings

    @property
    def source(self) -> str:
        """The service, its operation and its address (or the library and its version)."""
        ...

    def accepts(self, item: Item) -> bool:
        """Whether this adapter checks such an item at all (VIES: an EU VAT number)."""
        ...

    def pace(self) -> None:
        """Wait as long as the rate limit asks before the next call."""
        ...

    def call(self, item: Item) -> Answer:
        """One call about ``item``, classified; never raises for what the service or the network
        did (a timeout, a refused connection, an HTTP 500, a body that is not the answer, a body
        that is not what its Content-Encoding says). The batch still takes an exception as the
        adapter's own failure: the call is recorded and the adapter asked no more in the batch."""
        ...

    def unavailable(self) -> dict[str, str]:
        """Countries the service says it cannot answer for now, with the reason (VIES REST's
        check-status); empty when unknown. Their items are not asked in this batch."""
        ...

    def close(self) -> None: ...


class RateLimiter:
    """At most ``rate`` calls started per second: each call starts no earlier than ``1 / rate``
    seconds after the previous one (no burst). Thread-safe; ``clock`` and ``sleep`` are the
    monotonic clock and the sleep it uses (for tests). It counts the calls of its own process
    only: batches running at once in several processes (Airflow tasks) each have their own, so
    they run one at a time (an Airflow pool of one slot, docs/guide/verification.md)."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("a rate limit is a positive number of calls per second")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until the next call may start; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            start = now if self._next is None else max(now, self._next)
            self._next = start + self.interval
        waited = start - now
        if waited > 0:
            self._sleep(waited)
        return waited


class HttpAdapter:
    """What the adapters that call a service share. A subclass sets ``name`` and ``level`` and
    implements :meth:`_call`, which posts its request with :meth:`_send` and classifies the
    answer; a transport failure becomes an unverified answer to retry."""

    name = ""
    level = ""
    remote = True

    def __init__(self, settings: AdapterSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        if not settings.url:
            raise ValueError(f"[verification.{settings.name}] has no url")
        self.settings = settings
        self.url = settings.url
        self.limiter = RateLimiter(settings.rate_per_second)
        # a proxy comes from the environment (HTTPS_PROXY, NO_PROXY), as for any httpx client;
        # redirects are not followed (an answer comes from the configured address or not at all)
        self._client = httpx.Client(
            timeout=httpx.Timeout(settings.timeout_seconds),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )

    @property
    def source(self) -> str:
        return f"{self.name} {self.url}"

    def pace(self) -> None:
        self.limiter.wait()

    def unavailable(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        self._client.close()

    def call(self, item: Item) -> Answer:
        try:
            return self._call(item)
        except httpx.TimeoutException:
            return Answer(
                UNVERIFIED,
                f"no answer within {self.settings.timeout_seconds:g} s (timeout)",
                retry=True,
                scope="service",
            )
        except httpx.TransportError as exc:  # refused, reset, DNS, TLS ...
            return Answer(
                UNVERIFIED, f"the service could not be reached ({type(exc).__name__})", retry=True, scope="service"
            )
        except httpx.HTTPError as exc:  # an answer httpx could not read: a body that is not its Content-Encoding ...
            return Answer(
                UNVERIFIED, f"an answer that could not be read ({type(exc).__name__})", retry=True, scope="service"
            )

    def _call(self, item: Item) -> Answer:
        raise NotImplementedError

    def _send(
        self, method: str, url: str, *, content: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str, bytes]:
        """The status, the content type and the body (at most :data:`MAX_ANSWER_BYTES`; a longer
        body is cut there and will not parse)."""
        with self._client.stream(method, url, content=content, headers=headers) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    break
            return response.status_code, response.headers.get("content-type", ""), bytes(body[: MAX_ANSWER_BYTES + 1])


def http_failure(status: int, what: str) -> Answer:
    """An answer that is not the service's answer: HTTP 429 and 5xx may pass (retry); any other
    status says the address is not the service's (stop asking it in this batch)."""
    if status == 429 or status >= 500:
        return Answer(UNVERIFIED, f"HTTP {status} without {what}", retry=True, scope="service")
    return Answer(
        UNVERIFIED,
        f"HTTP {status} without {what}: is the configured url the service's address?",
        scope="service",
    )


def malformed(what: str, status: int) -> Answer:
    """A body that is not the answer the published description gives (a proxy's error page, an
    answer cut off): retried, as a passing fault would be."""
    return Answer(UNVERIFIED, f"an answer that is not {what} (HTTP {status})", retry=True, scope="service")
