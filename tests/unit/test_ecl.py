"""IFRS 9 expected credit loss on a small portfolio, every figure checked by hand."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from yunrong.servicing.ecl import (
    BASE_LGD,
    Exposure,
    expected_loss,
    horizon_pd,
    lgd,
    stage_pd,
    summarise,
)


def _loan(ref: str, grade: str, stage: int, pd: str, months: int, ead: int, covered: int = 0) -> Exposure:
    return Exposure(uuid.uuid4(), ref, "CNY", grade, stage, Decimal(pd), months, ead, covered)


def test_horizon_pd_annualises_the_12_month_pd_at_a_constant_hazard() -> None:
    assert horizon_pd(Decimal("0.03"), 12) == Decimal("0.03")
    assert horizon_pd(Decimal("0.03"), 24) == Decimal("0.0591")  # 1 − 0.97²
    assert horizon_pd(Decimal("0.10"), 6) == Decimal("0.0513167019")  # 1 − √0.9
    assert horizon_pd(Decimal("0.03"), 0) == 0
    assert horizon_pd(Decimal(1), 3) == 1
    with pytest.raises(ValueError, match="PD must be"):
        horizon_pd(Decimal("1.5"), 12)


def test_stage_decides_the_horizon() -> None:
    pd = Decimal("0.03")
    assert stage_pd(pd, 1, 36) == Decimal("0.03")  # 12 months at most
    assert stage_pd(pd, 2, 24) == Decimal("0.0591")  # the remaining life
    assert stage_pd(pd, 3, 24) == 1  # in default
    with pytest.raises(ValueError, match="stage"):
        stage_pd(pd, 4, 12)


def test_lgd_is_45_percent_less_the_covered_share() -> None:
    assert Decimal("0.45") == BASE_LGD
    assert lgd(500_000, 0) == Decimal("0.45")
    assert lgd(500_000, 300_000) == Decimal("0.180")  # 60 % covered
    assert lgd(500_000, 900_000) == 0  # cover beyond the exposure counts as full


def test_a_small_portfolio_by_stage_and_by_grade() -> None:
    loans = [
        _loan("A", "A", 1, "0.03", 12, 1_000_000),  # 0.03 × 0.45 × 1,000,000 = 13,500
        _loan("B", "BB", 2, "0.03", 24, 2_000_000),  # 0.0591 × 0.45 × 2,000,000 = 53,190
        _loan("C", "BB", 3, "0.03", 8, 500_000, 300_000),  # 1 × 0.18 × 500,000 = 90,000
        _loan("D", "A", 1, "0.10", 6, 100_000),  # 0.0513167019 × 0.45 × 100,000 = 2,309.25 → 2,309
    ]
    assert [expected_loss(e).ecl_minor for e in loans] == [13_500, 53_190, 90_000, 2_309]
    report = summarise(date(2026, 6, 30), "CNY", loans)
    assert report.ecl_minor == 158_999
    assert report.ead_minor == 3_600_000
    by_stage = {b.key: (b.loans, b.ead_minor, b.ecl_minor) for b in report.by_stage}
    assert by_stage == {"1": (2, 1_100_000, 15_809), "2": (1, 2_000_000, 53_190), "3": (1, 500_000, 90_000)}
    by_grade = {b.key: (b.loans, b.ead_minor, b.ecl_minor) for b in report.by_grade}
    assert by_grade == {"A": (2, 1_100_000, 15_809), "BB": (2, 2_500_000, 143_190)}
    assert report.by_stage[2].coverage == Decimal("0.18")


def test_half_even_rounding_of_each_loan() -> None:
    # 0.05 × 0.45 × 1,010 = 22.725 → 23; 0.05 × 0.45 × 1,020 = 22.95 → 23; 0.5 × 0.45 × 10 = 2.25 → 2
    assert expected_loss(_loan("E", "B", 1, "0.05", 12, 1_010)).ecl_minor == 23
    assert expected_loss(_loan("F", "B", 1, "0.5", 12, 10)).ecl_minor == 2
