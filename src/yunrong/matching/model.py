"""Pure rules of step 4 (push): investors' preferences, suitability, the filter and the ranking.

Product risk of a listing comes from its credit grade (the issue's suitability rule: an investor of
level Cn may be offered products up to Rn, see :func:`yunrong.parties.risk.max_product_risk`):

| grade | product risk | who may be offered it |
|---|---|---|
| AAA, AA | R1 | C1 and above |
| A, BBB | R2 | C2 and above |
| BB | R3 | C3 and above |
| B | R4 | C4 and above |
| CCC, CC, C | R5 | C5 only |

A declined decision is never offered to anyone. Under a profile that asks for a warning above a
ticket (EU ECSP art. 21(7)), a natural person's amount per loan must stay within that threshold for
a listing to be pushed; bigger tickets need the explicit consent taken at commitment, not a push.

Ranking score, each term in 0..1, weights summing to 1:

``score = 0.35·fit + 0.30·return + 0.20·diversification + 0.15·transparency``

* fit: ``0.5·term_centrality + 0.5·innovation``; term centrality is 1 at the middle of the
  investor's term range and 0.5 at its ends; innovation is 1 for an innovative enterprise when the
  investor asked for innovation, 0 for a non-innovative one then, 0.5 when the investor is neutral.
* return: expected annual return ``rate − PD·LGD`` (LGD 60 % less the guarantee coverage, floored
  at 10 %) against the target return of the investor's risk level (:data:`TARGET_RETURN`), capped
  at 1.
* diversification: ``1 / (1 + n)`` where ``n`` is how many listings of the same industry section
  the investor was already pushed (until holdings exist, pushes stand in for the portfolio).
* transparency: the listing's transparency index / 100.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from yunrong.credit.grades import BY_CODE
from yunrong.demands.model import Product
from yunrong.parties.risk import RiskLevel, max_product_risk
from yunrong.supervision.policy import PolicyProfile

#: Credit grade → product risk rating 1..5 (R1..R5), documented above.
GRADE_RISK: dict[str, int] = {
    "AAA": 1,
    "AA": 1,
    "A": 2,
    "BBB": 2,
    "BB": 3,
    "B": 4,
    "CCC": 5,
    "CC": 5,
    "C": 5,
}
assert set(GRADE_RISK) == set(BY_CODE)

#: Annual return that fully meets each risk level's appetite (the ``return`` term reaches 1).
TARGET_RETURN: dict[RiskLevel, Decimal] = {
    RiskLevel.C1: Decimal("0.03"),
    RiskLevel.C2: Decimal("0.045"),
    RiskLevel.C3: Decimal("0.06"),
    RiskLevel.C4: Decimal("0.08"),
    RiskLevel.C5: Decimal("0.10"),
}
BASE_LGD = Decimal("0.60")
MIN_LGD = Decimal("0.10")
WEIGHTS = {"fit": 0.35, "return": 0.30, "diversification": 0.20, "transparency": 0.15}
SIZES = ("micro", "small", "medium", "large")
DEFAULT_DAILY_CAP = 5
MAX_DAILY_CAP = 50


class Innovation(StrEnum):
    NEUTRAL = "neutral"  # no view
    PREFER = "prefer"  # ranked higher
    ONLY = "only"  # nothing else is offered


def product_risk(grade: str) -> int:
    return GRADE_RISK[grade]


@dataclass(frozen=True)
class Preferences:
    """What an investor wants. Empty sets mean "any"; amounts are minor units of ``currency``."""

    currency: str
    amount_per_loan_minor: int
    total_budget_minor: int
    min_term_months: int = 1
    max_term_months: int = 60
    grades: frozenset[str] = frozenset()
    industries: frozenset[str] = frozenset()  # GB/T 4754 section letters or code prefixes
    regions: frozenset[str] = frozenset()  # GB/T 2260 code prefixes (e.g. "32" = Jiangsu)
    products: frozenset[str] = frozenset()
    sizes: frozenset[str] = frozenset()
    innovation: Innovation = Innovation.NEUTRAL
    min_transparency: int = 0  # 0..100
    min_guarantee_coverage_bp: int = 0  # 10000 = fully covered


@dataclass(frozen=True)
class InvestorProfile:
    kind: str  # person | institution
    risk_level: RiskLevel | None
    net_worth_minor: int


@dataclass(frozen=True)
class Listing:
    """What matching needs of a listed demand with a current decision."""

    demand_id: str
    currency: str
    amount_minor: int
    term_months: int
    product: str
    grade: str
    pd: float
    annual_rate: Decimal | None
    declined: bool
    industry_code: str
    region_code: str
    size_class: str
    innovative: bool
    transparency: int
    guarantee_coverage_bp: int


class Rated(Protocol):
    """What suitability looks at: the grade, and whether the credit decision declined."""

    @property
    def grade(self) -> str: ...

    @property
    def declined(self) -> bool: ...


@dataclass(frozen=True)
class Rating:
    grade: str
    declined: bool


@dataclass(frozen=True)
class Reason:
    code: str
    en: str
    zh: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "en": self.en, "zh": self.zh}


def problems(p: Preferences) -> list[tuple[str, str]]:
    """Every (field, message) wrong with a set of preferences; empty when they are fine."""
    out: list[tuple[str, str]] = []
    if p.amount_per_loan_minor <= 0:
        out.append(("amount_per_loan", "must be positive"))
    if p.total_budget_minor <= 0:
        out.append(("total_budget", "must be positive"))
    elif p.amount_per_loan_minor > p.total_budget_minor:
        out.append(("amount_per_loan", "must not exceed the total budget"))
    if not 1 <= p.min_term_months <= 60:
        out.append(("min_term_months", "must be between 1 and 60"))
    if not 1 <= p.max_term_months <= 60:
        out.append(("max_term_months", "must be between 1 and 60"))
    if p.min_term_months > p.max_term_months:
        out.append(("max_term_months", "must not be below the shortest term"))
    for g in sorted(p.grades - set(GRADE_RISK)):
        out.append(("grades", f"unknown grade {g!r}"))
    known = {x.value for x in Product}
    for x in sorted(p.products - known):
        out.append(("products", f"unknown product {x!r}"))
    for s in sorted(p.sizes - set(SIZES)):
        out.append(("enterprise_sizes", f"unknown size {s!r}"))
    if not 0 <= p.min_transparency <= 100:
        out.append(("min_transparency", "must be between 0 and 100"))
    if not 0 <= p.min_guarantee_coverage_bp <= 10000:
        out.append(("min_guarantee_coverage", "must be between 0 and 1"))
    return out


def _prefix_match(code: str, wanted: frozenset[str]) -> bool:
    return not wanted or any(code.startswith(w) for w in wanted)


def suitable(
    investor: InvestorProfile, listing: Rated, p: Preferences, policy: PolicyProfile
) -> list[Reason]:
    """Why the investor may NOT be offered the listing (empty: suitable)."""
    out: list[Reason] = []
    if listing.declined:
        out.append(Reason("declined", "the credit decision declined this demand", "该需求信用决策为拒绝"))
    if investor.risk_level is None:
        out.append(
            Reason("no-risk-level", "take the risk tolerance assessment first", "请先完成风险承受能力评估")
        )
    else:
        allowed = max_product_risk(investor.risk_level)
        risk = product_risk(listing.grade)
        level = investor.risk_level.value
        if risk > allowed:
            out.append(
                Reason(
                    "risk-above-level",
                    f"grade {listing.grade} is R{risk}, above R{allowed} allowed for {level}",
                    f"等级 {listing.grade} 为 R{risk}，超过 {level} 可投的 R{allowed}",
                )
            )
    if policy.warning_net_worth_share is not None and investor.kind == "person":
        threshold = max(
            policy.warning_ticket_floor or 0,
            int(Decimal(investor.net_worth_minor) * policy.warning_net_worth_share),
        )
        if p.amount_per_loan_minor > threshold:
            out.append(
                Reason(
                    "ticket-above-warning",
                    "amount per loan is above the profile's warning threshold for your net worth",
                    "单笔金额超过监管规定的净资产警示线",
                )
            )
    return out


def fits(p: Preferences, listing: Listing) -> tuple[bool, list[Reason]]:
    """Does the listing meet every stated preference? Returns the verdict and the reasons: what
    matched when it fits, what did not when it does not."""
    ok: list[Reason] = []
    bad: list[Reason] = []

    def check(cond: bool, code: str, yes: tuple[str, str], no: tuple[str, str]) -> None:
        (ok if cond else bad).append(Reason(code, *(yes if cond else no)))

    check(
        listing.currency == p.currency,
        "currency",
        (f"in {p.currency}", f"币种 {p.currency}"),
        (f"in {listing.currency}, not {p.currency}", f"币种 {listing.currency} 不符"),
    )
    check(
        p.amount_per_loan_minor <= listing.amount_minor,
        "amount",
        ("your amount per loan fits the demand", "单笔金额可投"),
        ("the demand is smaller than your amount per loan", "需求金额小于您的单笔金额"),
    )
    check(
        p.min_term_months <= listing.term_months <= p.max_term_months,
        "term",
        (f"{listing.term_months} months is within your terms", f"期限 {listing.term_months} 个月符合"),
        (f"{listing.term_months} months is outside your terms", f"期限 {listing.term_months} 个月不符"),
    )
    check(
        not p.grades or listing.grade in p.grades,
        "grade",
        (f"grade {listing.grade} is one you chose", f"信用等级 {listing.grade} 符合"),
        (f"grade {listing.grade} is not one you chose", f"信用等级 {listing.grade} 不在所选范围"),
    )
    check(
        _prefix_match(listing.industry_code, p.industries),
        "industry",
        ("industry matches", "行业符合"),
        ("industry not chosen", "行业不在所选范围"),
    )
    check(
        _prefix_match(listing.region_code, p.regions),
        "region",
        ("region matches", "地区符合"),
        ("region not chosen", "地区不在所选范围"),
    )
    check(
        not p.products or listing.product in p.products,
        "product",
        (f"{listing.product} is a product you chose", "产品符合"),
        (f"{listing.product} is not a product you chose", "产品不在所选范围"),
    )
    check(
        not p.sizes or listing.size_class in p.sizes,
        "size",
        (f"{listing.size_class} enterprise", "企业规模符合"),
        (f"{listing.size_class} enterprise not chosen", "企业规模不在所选范围"),
    )
    check(
        p.innovation is not Innovation.ONLY or listing.innovative,
        "innovation",
        ("technological innovation", "科技创新企业")
        if listing.innovative
        else ("innovation: no view", "未限定科创"),
        ("not a technological-innovation enterprise", "非科技创新企业"),
    )
    check(
        listing.transparency >= p.min_transparency,
        "transparency",
        (
            f"transparency {listing.transparency} ≥ {p.min_transparency}",
            f"透明度 {listing.transparency} 达标",
        ),
        (
            f"transparency {listing.transparency} < {p.min_transparency}",
            f"透明度 {listing.transparency} 不足",
        ),
    )
    check(
        listing.guarantee_coverage_bp >= p.min_guarantee_coverage_bp,
        "guarantee",
        ("guarantee coverage meets yours", "担保覆盖率达标"),
        ("guarantee coverage below yours", "担保覆盖率不足"),
    )
    return (not bad, bad if bad else ok)


@dataclass(frozen=True)
class Score:
    total: float
    parts: dict[str, float] = field(default_factory=dict)


def expected_return(listing: Listing) -> Decimal:
    """Annual rate (a fraction, 0.085 = 8.5 %) less the expected loss PD × LGD."""
    lgd = max(MIN_LGD, BASE_LGD - Decimal(listing.guarantee_coverage_bp) / 10000)
    return (listing.annual_rate or Decimal(0)) - Decimal(str(listing.pd)) * lgd


def score(p: Preferences, investor: InvestorProfile, listing: Listing, same_industry_pushes: int) -> Score:
    """The documented ranking score (module docstring)."""
    span = p.max_term_months - p.min_term_months
    if span <= 0:
        centrality = 1.0
    else:
        middle = (p.max_term_months + p.min_term_months) / 2
        centrality = max(0.0, 1 - abs(listing.term_months - middle) / span)
    innovation = 0.5 if p.innovation is Innovation.NEUTRAL else 1.0 if listing.innovative else 0.0
    fit = 0.5 * centrality + 0.5 * innovation
    target = TARGET_RETURN[investor.risk_level or RiskLevel.C1]
    ret = float(min(Decimal(1), max(Decimal(0), expected_return(listing) / target)))
    diversification = 1 / (1 + max(0, same_industry_pushes))
    transparency = max(0, min(100, listing.transparency)) / 100
    parts = {"fit": fit, "return": ret, "diversification": diversification, "transparency": transparency}
    total = sum(WEIGHTS[k] * v for k, v in parts.items())
    return Score(round(total, 6), {k: round(v, 6) for k, v in parts.items()})
