"""Pricing never exceeds the cap; grades are monotone in PD."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yunrong.credit.grades import GRADES, better, grade_of, grade_rank
from yunrong.credit.pricing import Decline, Price, price, price_batch

rates = st.decimals(min_value=Decimal(0), max_value=Decimal("0.2"), places=4)
pds = st.decimals(min_value=Decimal(0), max_value=Decimal(1), places=6)


@settings(max_examples=300, deadline=None)
@given(
    pd=pds,
    lgd=st.decimals(min_value=Decimal(0), max_value=Decimal(1), places=3),
    term=st.integers(min_value=1, max_value=60),
    funding=rates,
    operating=rates,
    margin=rates,
    fees=st.decimals(min_value=Decimal(0), max_value=Decimal("0.05"), places=4),
    penalty=st.decimals(min_value=Decimal(0), max_value=Decimal("0.05"), places=4),
    cap=st.one_of(st.none(), st.decimals(min_value=Decimal("0.01"), max_value=Decimal("0.36"), places=4)),
)
def test_price_never_exceeds_cap_and_never_prices_below_risk(
    pd: Decimal,
    lgd: Decimal,
    term: int,
    funding: Decimal,
    operating: Decimal,
    margin: Decimal,
    fees: Decimal,
    penalty: Decimal,
    cap: Decimal | None,
) -> None:
    result = price(pd, lgd, term, funding, operating, margin, fees, cap, penalty=penalty)
    if isinstance(result, Price):
        assert cap is None or result.apr <= cap
        assert result.annual_rate >= funding + pd * lgd + operating + margin  # never below risk
        assert result.apr >= result.annual_rate + penalty
    else:
        assert isinstance(result, Decline)
        assert pd == 1 or (cap is not None and result.fair_apr is not None and result.fair_apr > cap)
    _rate, apr, declined = price_batch(
        np.array([float(pd)]),
        float(lgd),
        term,
        float(funding),
        float(operating),
        float(margin),
        float(fees),
        None if cap is None else float(cap),
        penalty=float(penalty),
    )
    assert bool(declined[0]) == isinstance(result, Decline)
    if isinstance(result, Price):
        assert apr[0] == pytest.approx(float(result.apr), abs=1e-9)


def test_declined_with_reason_in_both_languages() -> None:
    d = price(
        Decimal("0.25"),
        Decimal("0.45"),
        12,
        Decimal("0.035"),
        Decimal("0.015"),
        Decimal("0.02"),
        Decimal("0.005"),
        Decimal("0.124"),
    )
    assert isinstance(d, Decline)
    assert d.reason == "above-rate-cap"
    assert "12.40%" in d.message_en
    assert "12.40%" in d.message_zh


def test_price_components_add_up() -> None:
    p = price(
        Decimal("0.02"),
        Decimal("0.5"),
        12,
        Decimal("0.03"),
        Decimal("0.01"),
        Decimal("0.02"),
        Decimal(0),
        Decimal("0.138"),
    )
    assert isinstance(p, Price)
    assert p.annual_rate == Decimal("0.0700")
    assert p.apr == Decimal("0.0700")


def test_bad_inputs_refused() -> None:
    with pytest.raises(ValueError, match="PD"):
        price(Decimal("1.5"), Decimal("0.4"), 12, Decimal(0), Decimal(0), Decimal(0), Decimal(0), None)
    with pytest.raises(ValueError, match="term"):
        price(Decimal("0.1"), Decimal("0.4"), 0, Decimal(0), Decimal(0), Decimal(0), Decimal(0), None)


@given(a=st.floats(0, 1), b=st.floats(0, 1))
def test_grades_monotone(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert grade_of(lo).rank <= grade_of(hi).rank


def test_grade_bands() -> None:
    assert [g.code for g in GRADES] == ["AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C"]
    assert grade_of(0.0).code == "AAA"
    assert grade_of(0.0025).code == "AA"  # a boundary takes the worse grade
    assert grade_of(0.5).code == "C"
    assert better(grade_of(0.05)) == grade_of(0.03)
    assert list(grade_rank(np.array([0.001, 0.03, 0.9]))) == [0, 4, 8]
