"""One injectable clock: timezone-aware UTC instants and business dates.

Nothing in Yunrong reads the wall clock directly; it asks a Clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Asia/Shanghai"


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that stands still until moved: for tests and the end-of-day batch."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at = self._at + delta

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)


def business_date(instant: datetime, timezone: str = DEFAULT_TIMEZONE) -> date:
    """The platform's business date for an instant (a value, due or accrual date)."""
    if instant.tzinfo is None:
        raise ValueError("business_date needs a timezone-aware datetime")
    return instant.astimezone(ZoneInfo(timezone)).date()


def ensure_utc(value: datetime) -> datetime:
    """Make a datetime read back from a database aware and UTC (SQLite drops the zone)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
