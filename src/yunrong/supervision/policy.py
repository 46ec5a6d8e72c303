"""Policy profiles: the rules a regulator enforces, as data. Chosen by ``YUNRONG_POLICY_PROFILE``.

``cn-2016``: China's 2016 Interim Measures for the Administration of the Business Activities of
Online Lending Information Intermediary Institutions (网络借贷信息中介机构业务活动管理暂行办法),
art. 17 caps and art. 28 custody; the interest cap of four times the one-year Loan Prime Rate
follows the Supreme People's Court's 2020 private-lending rules.
``eu-ecsp``: Regulation (EU) 2020/1503 on European crowdfunding service providers.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class PolicyProfile:
    key: str
    name_en: str
    name_zh: str
    currency: str
    #: Admittance: approval needs two different regulator users (maker–checker).
    two_person_admittance: bool
    #: Investors' money must sit with a custodian bank.
    custody_required: bool
    #: Outstanding borrowing caps on one platform, minor units; None = no cap.
    natural_person_outstanding_cap: int | None
    legal_person_outstanding_cap: int | None
    #: Per project owner per rolling 12 months (EU ECSP art. 1(2)(c)); None = no cap.
    owner_twelve_month_cap: int | None
    #: All-in annual rate cap as a multiple of the one-year LPR at the contract date; None = no cap.
    lpr_multiple_cap: Decimal | None
    #: Non-sophisticated investors must pass a knowledge test before investing.
    knowledge_test_required: bool
    #: Days in which an investor may revoke a commitment without reason.
    reflection_days: int
    #: Above this ticket (or the share of net worth below) a warning and explicit consent are needed.
    warning_ticket_floor: int | None
    warning_net_worth_share: Decimal | None
    #: Days past due after which a guarantor is called.
    guarantee_call_days: int
    notes: str


CN_2016 = PolicyProfile(
    key="cn-2016",
    name_en="China 2016 interim measures for online lending intermediaries",
    name_zh="网络借贷信息中介机构业务活动管理暂行办法（2016）",
    currency="CNY",
    two_person_admittance=True,
    custody_required=True,
    natural_person_outstanding_cap=200_000_00,
    legal_person_outstanding_cap=1_000_000_00,
    owner_twelve_month_cap=None,
    lpr_multiple_cap=Decimal(4),
    knowledge_test_required=False,
    reflection_days=0,
    warning_ticket_floor=None,
    warning_net_worth_share=None,
    guarantee_call_days=30,
    notes="Art. 17: CNY 200,000 per natural person and CNY 1,000,000 per legal person outstanding on one "
    "platform; art. 28: funds kept by a custodian bank; interest capped at 4 x the one-year LPR.",
)

EU_ECSP = PolicyProfile(
    key="eu-ecsp",
    name_en="EU crowdfunding service providers regulation (EU) 2020/1503",
    name_zh="欧盟众筹服务提供商条例 (EU) 2020/1503",
    currency="EUR",
    two_person_admittance=True,
    custody_required=True,
    natural_person_outstanding_cap=None,
    legal_person_outstanding_cap=None,
    owner_twelve_month_cap=5_000_000_00,
    lpr_multiple_cap=None,
    knowledge_test_required=True,
    reflection_days=4,
    warning_ticket_floor=1_000_00,
    warning_net_worth_share=Decimal("0.05"),
    guarantee_call_days=60,
    notes="Art. 1(2)(c): EUR 5,000,000 per project owner over 12 months; art. 21: entry knowledge test; "
    "art. 21(7): warning and consent above the larger of EUR 1,000 or 5% of net worth; art. 22: 4-day "
    "pre-contractual reflection period.",
)

PROFILES: dict[str, PolicyProfile] = {p.key: p for p in (CN_2016, EU_ECSP)}


def profile(key: str) -> PolicyProfile:
    try:
        return PROFILES[key]
    except KeyError:
        raise ValueError(f"unknown policy profile {key!r}; choose one of {', '.join(PROFILES)}") from None


def interest_cap(policy: PolicyProfile, one_year_lpr: Decimal | None) -> Decimal | None:
    """The all-in annual rate cap, or None where the profile sets none."""
    if policy.lpr_multiple_cap is None:
        return None
    if one_year_lpr is None:
        raise ValueError("the profile caps rates by the LPR, but no LPR is known for that date")
    return policy.lpr_multiple_cap * one_year_lpr
