from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yunrong.kit.money import Money, MoneyError, Rounding, allocate_minor, round_minor


def test_money_refuses_floats_and_unknown_currencies() -> None:
    with pytest.raises(MoneyError):
        Money(1.5, "CNY")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money.of(1.5, "CNY")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(100, "XXX")
    with pytest.raises(MoneyError):
        Money.of("1.005", "CNY")


def test_money_never_mixes_currencies() -> None:
    with pytest.raises(MoneyError):
        _ = Money(1, "CNY") + Money(1, "EUR")
    with pytest.raises(MoneyError):
        _ = Money(1, "CNY") < Money(1, "EUR")


def test_money_from_text_and_display() -> None:
    amount = Money.of("1234567.89", "CNY")
    assert amount.minor == 123456789
    assert str(amount) == "1,234,567.89 CNY"
    assert Money.of("500", "JPY").minor == 500


def test_rounding_is_named() -> None:
    assert round_minor(Decimal("2.5"), Rounding.HALF_EVEN) == 2
    assert round_minor(Decimal("2.5"), Rounding.HALF_UP) == 3
    assert Money(1000, "CNY").times(Decimal("0.0435")).minor == 44  # 43.5 → 44 (half-even: 44)


@given(
    total=st.integers(min_value=-(10**15), max_value=10**15),
    weights=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=50).filter(any),
)
def test_allocation_always_sums_to_the_whole(total: int, weights: list[int]) -> None:
    parts = allocate_minor(total, weights)
    assert sum(parts) == total
    assert len(parts) == len(weights)
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = Decimal(total) * weight / weight_sum
        assert abs(Decimal(part) - exact) < 1  # each part within one minor unit of its exact share
        if weight == 0:
            assert part == 0


def test_allocation_is_deterministic_on_ties() -> None:
    assert allocate_minor(100, [1, 1, 1]) == [34, 33, 33]
    assert Money(100, "CNY").allocate([1, 1, 1]) == [Money(34, "CNY"), Money(33, "CNY"), Money(33, "CNY")]


def test_allocation_refuses_nonsense_weights() -> None:
    for weights in ([], [0, 0], [1, -1]):
        with pytest.raises(MoneyError):
            allocate_minor(100, weights)
