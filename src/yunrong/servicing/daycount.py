"""Day-count conventions and calendar-month arithmetic, exact (``Fraction``), for interest accrual.

Interest on a loan is ``balance × annual rate × year fraction``; the year fraction is where
lenders differ, so it is named and computed exactly here (never with floats):

- ``act/365f`` — actual days / 365 (Actual/365 Fixed; the usual basis for RMB loans and the one
  our APR uses);
- ``act/360`` — actual days / 360 (money-market basis);
- ``30/360`` — the ISDA 2006 §4.16(f) "30/360" (bond basis): a start day of 31 counts as 30; an
  end day of 31 counts as 30 when the start day (after that adjustment) is 30. Every whole month
  is then 30 days and a year 360.

Due dates keep the day of month of their anchor date, clamped to the month's last day
(31 Jan + 1 month = 28/29 Feb, + 2 months = 31 Mar: always counted from the anchor, so a short
month never shortens the later ones).
"""

from __future__ import annotations

import calendar
from datetime import date
from enum import StrEnum
from fractions import Fraction

from yunrong.kit.errors import InvalidInput


class DayCount(StrEnum):
    ACT_365F = "act/365f"
    ACT_360 = "act/360"
    THIRTY_360 = "30/360"


def days_30_360(start: date, end: date) -> int:
    """Days between two dates under 30/360 (ISDA bond basis)."""
    d1 = min(start.day, 30)
    d2 = end.day
    if d1 == 30 and d2 == 31:
        d2 = 30
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def year_fraction(start: date, end: date, dc: DayCount) -> Fraction:
    """The exact fraction of a year from ``start`` (inclusive) to ``end`` (exclusive)."""
    if end < start:
        raise InvalidInput(f"year fraction from {start} back to {end} / 结束日早于起始日")
    dc = DayCount(dc)
    if dc is DayCount.ACT_365F:
        return Fraction((end - start).days, 365)
    if dc is DayCount.ACT_360:
        return Fraction((end - start).days, 360)
    return Fraction(days_30_360(start, end), 360)


def add_months(anchor: date, months: int) -> date:
    """``anchor`` moved by whole calendar months, keeping its day of month (end-of-month clamped)."""
    index = anchor.year * 12 + anchor.month - 1 + months
    year, month0 = divmod(index, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(anchor.day, last))
