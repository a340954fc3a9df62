"""The renderer streams: memory does not grow with the number of sellers written."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator
from datetime import date, datetime

from lxml import etree

from reporting.authorities import EU_GENERIC
from reporting.records import ActivityFigures, MessageHeader, OperatorRecord, PostalAddress, SellerRecord, Tin
from reporting.validate import schema_for

ADDRESS = PostalAddress(country="LT", city="Kaunas", street="Laisves al.", building="10", post_code="44240")
HEADER = MessageHeader("LT", "LT", "LT2025LT0001", "DPI401", date(2025, 12, 31), datetime(2026, 1, 15, 7, 0))
OPERATOR = OperatorRecord("Demo Marketplace UAB", "304567891", "LT", ADDRESS, "RPONEX1", "LT")


def sellers(n: int) -> Iterator[tuple[SellerRecord, tuple[str, str]]]:
    for i in range(n):
        yield (
            SellerRecord(
                seller_id=f"S{i:08d}",
                seller_type="individual",
                res_countries=("LT",),
                tins=(Tin(f"3900101{i:04d}", "LT"),),
                address=ADDRESS,
                first_name="Ona",
                last_name="Petraite",
                birth_date=date(1980, 5, 17),
                activities=(
                    ActivityFigures("sale_of_goods", "EUR", (1, 2, 3, 4), (1, 1, 1, 1), (0, 0, 0, 0), (0, 0, 0, 0)),
                ),
            ),
            ("OECD11", f"LT2025-{i:032d}"),
        )


class CountingSink(io.RawIOBase):
    def __init__(self) -> None:
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.size += len(b)
        return len(b)


def peak_bytes(n: int) -> tuple[int, int]:
    sink = CountingSink()
    tracemalloc.start()
    count = EU_GENERIC.write(sink, HEADER, OPERATOR, ("OECD11", "LT2025-OP"), sellers(n))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == n
    return peak, sink.size


def test_memory_does_not_grow_with_the_number_of_sellers() -> None:
    small_peak, small_size = peak_bytes(300)
    large_peak, large_size = peak_bytes(6_000)
    assert large_size > 15 * small_size
    assert large_peak < 2 * small_peak + 256 * 1024, (small_peak, large_peak)


def test_the_streamed_message_is_schema_valid() -> None:
    buf = io.BytesIO()
    EU_GENERIC.write(buf, HEADER, OPERATOR, ("OECD11", "LT2025-OP"), sellers(3))
    schema = schema_for(EU_GENERIC.schema_resource)
    assert schema.validate(etree.fromstring(buf.getvalue())), schema.error_log
