"""The reporting period in the configured time zone, as UTC instants.

A transaction belongs to the quarter and year of its payment date in the configured time zone.
Rather than converting every timestamp, the few local boundaries (year and quarter starts, the
end of the as-of day) are converted to UTC once and compared with the UTC timestamps of the
source: exact, and independent of the time-zone support of any database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_midnight_utc(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant (naive) of 00:00 local time on ``day``."""
    local = datetime.combine(day, time(0, 0), tzinfo=tz)
    return local.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class Period:
    year: int
    timezone: str
    as_of: date

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def start_utc(self) -> datetime:
        return local_midnight_utc(date(self.year, 1, 1), self.tz)

    @property
    def end_utc(self) -> datetime:
        """Exclusive end: 1 January of the next year, 00:00 local."""
        return local_midnight_utc(date(self.year + 1, 1, 1), self.tz)

    @property
    def paid_until_utc(self) -> datetime:
        """Exclusive end of the payments a run reads: the end of the year, or the end of the
        as-of day when that comes first (a preview of the running year, the quarterly watch as
        of a quarter's last day): a payment after the as-of date has not been made as of then."""
        return min(self.end_utc, self.as_of_end_utc)

    @property
    def quarter_starts_utc(self) -> tuple[datetime, datetime, datetime, datetime]:
        tz = self.tz
        y = self.year
        return (
            local_midnight_utc(date(y, 1, 1), tz),
            local_midnight_utc(date(y, 4, 1), tz),
            local_midnight_utc(date(y, 7, 1), tz),
            local_midnight_utc(date(y, 10, 1), tz),
        )

    @property
    def as_of_end_utc(self) -> datetime:
        """Exclusive end of the as-of day: refunds before this instant are applied."""
        return local_midnight_utc(self.as_of + timedelta(days=1), self.tz)

    @property
    def reporting_period(self) -> date:
        return date(self.year, 12, 31)
