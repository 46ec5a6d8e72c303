"""Pure rules of parties and the government's admittance review.

Every enterprise, investor, agency and custodian bank enters review when it registers (or is
created by the operator). Regulators approve (with a second, different regulator when the policy
profile asks for maker–checker), reject, or request more information, always with a reason; they
suspend and reinstate. Nobody unapproved or suspended may do business.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from yunrong.identity.model import OrgType
from yunrong.kit.errors import Conflict, InvalidInput, PermissionDenied


class QualificationStatus(StrEnum):
    PENDING = "pending"  # submitted, waiting for a regulator
    INFO_REQUESTED = "info_requested"  # the applicant must answer
    AWAITING_SECOND_APPROVAL = "awaiting_second_approval"  # one regulator approved (maker)
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


class ReviewAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_INFO = "request_info"
    RESPOND = "respond"  # the applicant answers a request for information
    SUSPEND = "suspend"
    REINSTATE = "reinstate"


S = QualificationStatus
A = ReviewAction

#: The explicit transitions table: (action, from) → to. Approval's target depends on maker–checker,
#: so APPROVE from PENDING lists both; ``next_status`` picks one.
TRANSITIONS: dict[tuple[ReviewAction, QualificationStatus], frozenset[QualificationStatus]] = {
    (A.APPROVE, S.PENDING): frozenset({S.APPROVED, S.AWAITING_SECOND_APPROVAL}),
    (A.APPROVE, S.AWAITING_SECOND_APPROVAL): frozenset({S.APPROVED}),
    (A.REJECT, S.PENDING): frozenset({S.REJECTED}),
    (A.REJECT, S.AWAITING_SECOND_APPROVAL): frozenset({S.REJECTED}),
    (A.REJECT, S.INFO_REQUESTED): frozenset({S.REJECTED}),
    (A.REQUEST_INFO, S.PENDING): frozenset({S.INFO_REQUESTED}),
    (A.REQUEST_INFO, S.AWAITING_SECOND_APPROVAL): frozenset({S.INFO_REQUESTED}),
    (A.RESPOND, S.INFO_REQUESTED): frozenset({S.PENDING}),
    (A.SUSPEND, S.APPROVED): frozenset({S.SUSPENDED}),
    (A.REINSTATE, S.SUSPENDED): frozenset({S.APPROVED}),
}

#: Organisation types whose admittance the regulator reviews. The regulator and the operator are
#: the authorities themselves.
REVIEWED_TYPES: frozenset[OrgType] = frozenset(
    {OrgType.ENTERPRISE, OrgType.INVESTOR, OrgType.AGENCY, OrgType.CUSTODIAN_BANK}
)


class IllegalReviewMove(Conflict):
    code = "illegal-review-move"
    title = "This decision is not possible now"


class MakerCheckerViolation(Conflict):
    code = "maker-checker"
    title = "A second, different regulator must approve"


class ReasonRequired(InvalidInput):
    code = "reason-required"
    title = "A reason is required"


class PartyNotAdmitted(PermissionDenied):
    code = "party-not-admitted"
    title = "Not yet admitted by the regulator"


class PartySuspended(PermissionDenied):
    code = "party-suspended"
    title = "Suspended by the regulator"


@dataclass(frozen=True, slots=True)
class Move:
    action: ReviewAction
    source: QualificationStatus
    target: QualificationStatus


def next_status(
    action: ReviewAction,
    current: QualificationStatus,
    *,
    two_person: bool,
    actor_id: str,
    first_approver_id: str | None,
    reason: str,
) -> Move:
    """Decide one move, refusing illegal ones. Pure: the service applies and audits it."""
    if not reason.strip():
        raise ReasonRequired("every decision needs a reason")
    allowed = TRANSITIONS.get((action, current))
    if allowed is None:
        verb = action.value.replace("_", " ")
        raise IllegalReviewMove(f"cannot {verb} a qualification that is {current.value}")
    if action is A.APPROVE and current is S.PENDING:
        target = S.AWAITING_SECOND_APPROVAL if two_person else S.APPROVED
    elif action is A.APPROVE and current is S.AWAITING_SECOND_APPROVAL:
        if first_approver_id == actor_id:
            raise MakerCheckerViolation("the first approval was yours; a different regulator must approve")
        target = S.APPROVED
    else:
        (target,) = tuple(allowed)
    return Move(action, current, target)


def blocking_status(status: QualificationStatus | None, org_type: OrgType) -> QualificationStatus | None:
    """None when the party may do business; otherwise the status that stops it."""
    if org_type not in REVIEWED_TYPES:
        return None
    if status is S.APPROVED:
        return None
    return status or S.PENDING


class InstitutionType(StrEnum):
    BANK = "bank"
    SMALL_LOAN_COMPANY = "small_loan_company"
    FUND = "fund"
    GUARANTEE_COMPANY = "guarantee_company"


class AgencyType(StrEnum):
    AUTHENTICATION = "authentication"
    APPRAISAL = "appraisal"
    CREDIT_RATING = "credit_rating"
    IP_VALUATION = "ip_valuation"
    INSURANCE = "insurance"
    GUARANTEE = "guarantee"
    LOGISTICS_MONITORING = "logistics_monitoring"


class PersonRole(StrEnum):
    SHAREHOLDER = "shareholder"
    LEGAL_REPRESENTATIVE = "legal_representative"
    DIRECTOR = "director"
    SUPERVISOR = "supervisor"
    ACTUAL_CONTROLLER = "actual_controller"


class FundsSource(StrEnum):
    SALARY = "salary"
    BUSINESS_INCOME = "business_income"
    INVESTMENT_INCOME = "investment_income"
    SAVINGS = "savings"
    PROPERTY_SALE = "property_sale"
    INHERITANCE = "inheritance"
    OWN_CAPITAL = "own_capital"  # institutions
    CLIENT_FUNDS_UNDER_MANDATE = "client_funds_under_mandate"  # funds


class DocumentCategory(StrEnum):
    BUSINESS_LICENCE = "business_licence"
    FINANCIAL_STATEMENT = "financial_statement"
    ID_DOCUMENT = "id_document"
    AGENCY_LICENCE = "agency_licence"
    SUPPORTING = "supporting"


class DataCategory(StrEnum):
    """What an enterprise may consent to show."""

    IDENTITY = "identity"  # name, credit code, legal representative, registration facts
    FINANCIALS = "financials"  # revenue, assets, statements
    OWNERSHIP = "ownership"  # shareholders and key people
    ATTESTATIONS = "attestations"  # agencies' signed results
    CREDIT_SCORE = "credit_score"  # grade, PD, reasons
    BANK_FLOWS = "bank_flows"
    TAX_AND_SOCIAL_INSURANCE = "tax_and_social_insurance"
    ECOMMERCE = "ecommerce"
    SUPPLY_CHAIN = "supply_chain"


class RecipientClass(StrEnum):
    INVESTORS = "investors"  # individual investors
    INSTITUTIONS = "institutions"  # banks, small-loan companies, funds, guarantors
    AGENCIES = "agencies"  # third-party agencies doing their orders


MAX_UPLOAD_BYTES = 10 * 1024 * 1024

#: Accepted upload types, recognised by their first bytes (the client's content type is not trusted).
MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
)


def sniff(content: bytes) -> tuple[str, str] | None:
    """(content type, extension) from the content itself, or None when not an accepted type."""
    for magic, content_type, extension in MAGIC:
        if content.startswith(magic):
            return content_type, extension
    return None


def mask(identifier: str, keep: int = 4) -> str:
    """Show only the last characters of an identifier: ``**************002X``."""
    if len(identifier) <= keep:
        return "*" * len(identifier)
    return "*" * (len(identifier) - keep) + identifier[-keep:]
