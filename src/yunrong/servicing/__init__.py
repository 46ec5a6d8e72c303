"""Servicing: repayment schedules, day counts and rates (pure), later end-of-day and repayments."""

from __future__ import annotations

from yunrong.servicing.daycount import DayCount, add_months, year_fraction
from yunrong.servicing.rates import RateError, apr, loan_apr, loan_flows, periodic_apr, xirr
from yunrong.servicing.schedules import (
    Frequency,
    Instalment,
    Schedule,
    ScheduleError,
    annuity_batch,
    build_schedule,
    level_payment,
)

__all__ = [
    "DayCount",
    "Frequency",
    "Instalment",
    "RateError",
    "Schedule",
    "ScheduleError",
    "add_months",
    "annuity_batch",
    "apr",
    "build_schedule",
    "level_payment",
    "loan_apr",
    "loan_flows",
    "periodic_apr",
    "xirr",
    "year_fraction",
]
