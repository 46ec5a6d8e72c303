"""Pure rules of financing demands: products, repayment methods and the demand's lifecycle."""

from __future__ import annotations

from enum import StrEnum

from yunrong.kit.errors import Conflict, InvalidInput


class Product(StrEnum):
    BANK_LOAN = "bank_loan"
    P2P_LOAN = "p2p_loan"
    SUPPLY_CHAIN_RECEIVABLE = "supply_chain_receivable"
    ECOMMERCE_CREDIT_LINE = "ecommerce_credit_line"
    FINANCIAL_LEASE = "financial_lease"


class RepaymentMethod(StrEnum):
    EQUAL_INSTALMENT = "equal_instalment"
    EQUAL_PRINCIPAL = "equal_principal"
    INTEREST_ONLY_BALLOON = "interest_only_balloon"
    BULLET = "bullet"
    LEASE_RENT = "lease_rent"
    REVOLVING = "revolving"


class DemandStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    UNDER_VERIFICATION = "under_verification"
    LISTED = "listed"
    FUNDING = "funding"
    FUNDED = "funded"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"


D = DemandStatus

#: The explicit transitions table. Every move carries a reason.
TRANSITIONS: dict[DemandStatus, frozenset[DemandStatus]] = {
    D.DRAFT: frozenset({D.SUBMITTED, D.WITHDRAWN}),
    D.SUBMITTED: frozenset({D.UNDER_VERIFICATION, D.WITHDRAWN}),
    D.UNDER_VERIFICATION: frozenset({D.LISTED, D.FAILED, D.WITHDRAWN}),
    D.LISTED: frozenset({D.FUNDING, D.FAILED, D.WITHDRAWN}),
    D.FUNDING: frozenset({D.FUNDED, D.FAILED, D.WITHDRAWN}),
    D.FUNDED: frozenset(),
    D.FAILED: frozenset(),
    D.WITHDRAWN: frozenset(),
}

#: States in which a demand counts as open (for duplicate financing and caps).
OPEN: frozenset[DemandStatus] = frozenset({D.SUBMITTED, D.UNDER_VERIFICATION, D.LISTED, D.FUNDING})


class IllegalDemandMove(Conflict):
    code = "illegal-demand-move"
    title = "The demand cannot make this move"


class DemandNotDraft(Conflict):
    code = "demand-not-draft"
    title = "Only a draft can be changed"


class DuplicateFinancing(InvalidInput):
    code = "duplicate-financing"
    title = "This project already has an open demand"


class AmountOverCap(InvalidInput):
    code = "amount-over-cap"
    title = "Over the outstanding-balance cap"


def transition(current: DemandStatus, target: DemandStatus, reason: str) -> DemandStatus:
    if not reason.strip():
        raise InvalidInput("every move of a demand needs a reason")
    if target not in TRANSITIONS[current]:
        raise IllegalDemandMove(f"a {current.value} demand cannot become {target.value}")
    return target


#: Which repayment methods fit each product.
METHODS: dict[Product, frozenset[RepaymentMethod]] = {
    Product.BANK_LOAN: frozenset(
        {
            RepaymentMethod.EQUAL_INSTALMENT,
            RepaymentMethod.EQUAL_PRINCIPAL,
            RepaymentMethod.INTEREST_ONLY_BALLOON,
            RepaymentMethod.BULLET,
        }
    ),
    Product.P2P_LOAN: frozenset(
        {
            RepaymentMethod.EQUAL_INSTALMENT,
            RepaymentMethod.EQUAL_PRINCIPAL,
            RepaymentMethod.INTEREST_ONLY_BALLOON,
            RepaymentMethod.BULLET,
        }
    ),
    Product.SUPPLY_CHAIN_RECEIVABLE: frozenset(
        {RepaymentMethod.BULLET, RepaymentMethod.INTEREST_ONLY_BALLOON}
    ),
    Product.ECOMMERCE_CREDIT_LINE: frozenset({RepaymentMethod.REVOLVING, RepaymentMethod.EQUAL_INSTALMENT}),
    Product.FINANCIAL_LEASE: frozenset({RepaymentMethod.LEASE_RENT}),
}

MIN_TERM_MONTHS = 1
MAX_TERM_MONTHS = 60
