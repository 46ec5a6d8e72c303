"""Money in integer minor units with an ISO 4217 currency beside it.

Floats are refused, currencies never mix, and splitting an amount uses the
largest-remainder method so that the parts always sum to the whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from enum import StrEnum

#: Minor-unit exponent per supported currency (ISO 4217).
CURRENCY_EXPONENT: dict[str, int] = {"CNY": 2, "EUR": 2, "USD": 2, "HKD": 2, "JPY": 0}


class Rounding(StrEnum):
    """The named rounding modes the platform uses (one function applies them)."""

    HALF_EVEN = ROUND_HALF_EVEN  # banker's rounding: the default for interest
    HALF_UP = ROUND_HALF_UP


class MoneyError(ValueError):
    """Raised for money arithmetic that would be wrong (floats, mixed currencies)."""


def round_minor(value: Decimal, mode: Rounding = Rounding.HALF_EVEN) -> int:
    """Round a Decimal amount already expressed in minor units to an integer."""
    if not isinstance(value, Decimal):
        raise MoneyError("round_minor takes a Decimal")
    return int(value.quantize(Decimal(1), rounding=mode.value))


@dataclass(frozen=True, slots=True)
class Money:
    """An immutable amount: integer minor units plus a currency code."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.minor, bool) or not isinstance(self.minor, int):
            raise MoneyError(f"Money takes integer minor units, not {type(self.minor).__name__}")
        if self.currency not in CURRENCY_EXPONENT:
            raise MoneyError(f"unknown currency {self.currency!r}")

    @classmethod
    def of(cls, amount: str | Decimal | int, currency: str) -> Money:
        """Build from a major-unit amount written as text or Decimal (never float)."""
        if isinstance(amount, float):
            raise MoneyError("Money refuses floats; pass a string or Decimal")
        exponent = CURRENCY_EXPONENT.get(currency)
        if exponent is None:
            raise MoneyError(f"unknown currency {currency!r}")
        scaled = Decimal(amount) * (Decimal(10) ** exponent)
        if scaled != scaled.to_integral_value():
            raise MoneyError(f"{amount} has more than {exponent} decimals for {currency}")
        return cls(int(scaled), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise MoneyError("can only combine Money with Money")
        if other.currency != self.currency:
            raise MoneyError(f"currency mismatch: {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.minor >= other.minor

    def times(self, rate: Decimal, mode: Rounding = Rounding.HALF_EVEN) -> Money:
        """Multiply by a Decimal rate, rounding once with the named mode."""
        if not isinstance(rate, Decimal):
            raise MoneyError("rates are Decimal")
        return Money(round_minor(Decimal(self.minor) * rate, mode), self.currency)

    def allocate(self, weights: list[int]) -> list[Money]:
        """Split by integer weights with largest-remainder allocation (parts sum to the whole)."""
        return [Money(part, self.currency) for part in allocate_minor(self.minor, weights)]

    @property
    def decimal(self) -> Decimal:
        return Decimal(self.minor).scaleb(-CURRENCY_EXPONENT[self.currency])

    def __str__(self) -> str:
        exponent = CURRENCY_EXPONENT[self.currency]
        return f"{self.decimal:,.{exponent}f} {self.currency}"


def allocate_minor(total: int, weights: list[int]) -> list[int]:
    """Largest-remainder split of ``total`` minor units in proportion to ``weights``.

    Ties in remainders go to the earlier weight, so the result is deterministic.
    """
    if not weights:
        raise MoneyError("allocate needs at least one weight")
    if any(w < 0 for w in weights):
        raise MoneyError("weights must not be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise MoneyError("weights must not all be zero")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    floors = [magnitude * w // weight_sum for w in weights]
    remainders = [magnitude * w % weight_sum for w in weights]
    short = magnitude - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:short]:
        floors[i] += 1
    return [sign * part for part in floors]
