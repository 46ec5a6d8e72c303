"""What the portals call things: role, organisation and status labels, the navigation per portal.

Every label is an English message id marked with ``N_`` and translated when a page shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from yunrong.demands.model import DemandStatus, Product, RepaymentMethod
from yunrong.identity.model import InvestorKind, OrgType, Portal, Role
from yunrong.messaging.model import EventStatus
from yunrong.parties.model import (
    AgencyType,
    DataCategory,
    DocumentCategory,
    FundsSource,
    InstitutionType,
    PersonRole,
    QualificationStatus,
    RecipientClass,
)
from yunrong.parties.risk import RiskLevel
from yunrong.web import i18n
from yunrong.web.i18n import N_

ROLE_LABELS: dict[str, str] = {
    Role.ENTERPRISE_ADMIN: N_("Enterprise administrator"),
    Role.ENTERPRISE_STAFF: N_("Enterprise staff"),
    Role.INVESTOR: N_("Investor"),
    Role.AGENCY_ADMIN: N_("Agency administrator"),
    Role.AGENCY_ANALYST: N_("Agency analyst"),
    Role.BANK_OFFICER: N_("Custodian bank officer"),
    Role.REGULATOR: N_("Regulator"),
    Role.OPERATOR_ADMIN: N_("Platform operator"),
}

ORG_TYPE_LABELS: dict[str, str] = {
    OrgType.ENTERPRISE: N_("Enterprise"),
    OrgType.INVESTOR: N_("Investor"),
    OrgType.AGENCY: N_("Service agency"),
    OrgType.CUSTODIAN_BANK: N_("Custodian bank"),
    OrgType.REGULATOR: N_("Regulator"),
    OrgType.OPERATOR: N_("Platform operator"),
}

INVESTOR_KIND_LABELS: dict[str, str] = {
    InvestorKind.PERSON: N_("Individual"),
    InvestorKind.INSTITUTION: N_("Institution"),
}

PORTAL_LABELS: dict[str, str] = {
    Portal.ENTERPRISE: N_("Enterprise portal"),
    Portal.INVESTOR: N_("Investor portal"),
    Portal.AGENCY: N_("Agency portal"),
    Portal.BANK: N_("Custodian bank portal"),
    Portal.REGULATOR: N_("Regulator portal"),
    Portal.OPERATOR: N_("Operator console"),
}

EVENT_STATUS_LABELS: dict[str, str] = {
    EventStatus.PENDING: N_("Pending"),
    EventStatus.DELIVERED: N_("Delivered"),
    EventStatus.DEAD: N_("Dead"),
}

QUALIFICATION_STATUS_LABELS: dict[str, str] = {
    QualificationStatus.PENDING: N_("Pending review"),
    QualificationStatus.INFO_REQUESTED: N_("Information requested"),
    QualificationStatus.AWAITING_SECOND_APPROVAL: N_("Awaiting second approval"),
    QualificationStatus.APPROVED: N_("Approved"),
    QualificationStatus.REJECTED: N_("Rejected"),
    QualificationStatus.SUSPENDED: N_("Suspended"),
}

#: What happened in a qualification's history (``QualificationEvent.action``).
REVIEW_EVENT_LABELS: dict[str, str] = {
    "submit": N_("Submitted"),
    "approve": N_("Approve"),
    "reject": N_("Reject"),
    "request_info": N_("Request information"),
    "respond": N_("Applicant responded"),
    "suspend": N_("Suspend"),
    "reinstate": N_("Reinstate"),
}

INSTITUTION_TYPE_LABELS: dict[str, str] = {
    InstitutionType.BANK: N_("Bank"),
    InstitutionType.SMALL_LOAN_COMPANY: N_("Small-loan company"),
    InstitutionType.FUND: N_("Fund"),
    InstitutionType.GUARANTEE_COMPANY: N_("Guarantee company"),
}

AGENCY_TYPE_LABELS: dict[str, str] = {
    AgencyType.AUTHENTICATION: N_("Authentication"),
    AgencyType.APPRAISAL: N_("Appraisal"),
    AgencyType.CREDIT_RATING: N_("Credit rating"),
    AgencyType.IP_VALUATION: N_("Intellectual-property valuation"),
    AgencyType.INSURANCE: N_("Insurance"),
    AgencyType.GUARANTEE: N_("Guarantee"),
    AgencyType.LOGISTICS_MONITORING: N_("Logistics monitoring"),
}

FUNDS_SOURCE_LABELS: dict[str, str] = {
    FundsSource.SALARY: N_("Salary"),
    FundsSource.BUSINESS_INCOME: N_("Business income"),
    FundsSource.INVESTMENT_INCOME: N_("Investment income"),
    FundsSource.SAVINGS: N_("Savings"),
    FundsSource.PROPERTY_SALE: N_("Sale of property"),
    FundsSource.INHERITANCE: N_("Inheritance"),
    FundsSource.OWN_CAPITAL: N_("Own capital"),
    FundsSource.CLIENT_FUNDS_UNDER_MANDATE: N_("Client funds under mandate"),
}

PERSON_ROLE_LABELS: dict[str, str] = {
    PersonRole.SHAREHOLDER: N_("Shareholder"),
    PersonRole.LEGAL_REPRESENTATIVE: N_("Legal representative"),
    PersonRole.DIRECTOR: N_("Director"),
    PersonRole.SUPERVISOR: N_("Supervisor"),
    PersonRole.ACTUAL_CONTROLLER: N_("Actual controller"),
}

DOCUMENT_CATEGORY_LABELS: dict[str, str] = {
    DocumentCategory.BUSINESS_LICENCE: N_("Business licence"),
    DocumentCategory.FINANCIAL_STATEMENT: N_("Financial statement"),
    DocumentCategory.ID_DOCUMENT: N_("Identity document"),
    DocumentCategory.AGENCY_LICENCE: N_("Agency licence"),
    DocumentCategory.SUPPORTING: N_("Supporting document"),
}

DATA_CATEGORY_LABELS: dict[str, str] = {
    DataCategory.IDENTITY: N_("Identity and registration"),
    DataCategory.FINANCIALS: N_("Financials"),
    DataCategory.OWNERSHIP: N_("Ownership and key people"),
    DataCategory.ATTESTATIONS: N_("Agency attestations"),
    DataCategory.CREDIT_SCORE: N_("Credit score"),
    DataCategory.BANK_FLOWS: N_("Bank flows"),
    DataCategory.TAX_AND_SOCIAL_INSURANCE: N_("Tax and social insurance"),
    DataCategory.ECOMMERCE: N_("E-commerce data"),
    DataCategory.SUPPLY_CHAIN: N_("Supply-chain data"),
}

RECIPIENT_CLASS_LABELS: dict[str, str] = {
    RecipientClass.INVESTORS: N_("Individual investors"),
    RecipientClass.INSTITUTIONS: N_("Institutional investors"),
    RecipientClass.AGENCIES: N_("Service agencies"),
}

RISK_LEVEL_LABELS: dict[str, str] = {
    RiskLevel.C1: N_("C1 · conservative"),
    RiskLevel.C2: N_("C2 · cautious"),
    RiskLevel.C3: N_("C3 · balanced"),
    RiskLevel.C4: N_("C4 · growth"),
    RiskLevel.C5: N_("C5 · aggressive"),
}

INSTRUCTION_STATUS_LABELS: dict[str, str] = {
    "pending": N_("Pending at the bank"),
    "confirmed": N_("Confirmed"),
    "failed": N_("Failed"),
}

INSTRUCTION_KIND_LABELS: dict[str, str] = {
    "deposit": N_("Deposit"),
    "withdrawal": N_("Withdrawal"),
    "payout": N_("Payout"),
    "refund": N_("Refund"),
    "collection": N_("Collection"),
    "transfer": N_("Transfer"),
}

ADJUSTMENT_STATUS_LABELS: dict[str, str] = {
    "proposed": N_("Awaiting a second operator"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
}

SIDE_LABELS: dict[str, str] = {"D": N_("Debit"), "C": N_("Credit")}

SEVERITY_LABELS: dict[str, str] = {"low": N_("Low"), "medium": N_("Medium"), "high": N_("High")}

#: The checks of ``yunrong.ledger.verify``, by name.
LEDGER_CHECK_LABELS: dict[str, str] = {
    "entries balance": N_("Every entry balances"),
    "no half-written work": N_("No half-written entries"),
    "totals per currency net to zero": N_("Totals per currency net to zero"),
    "one currency per account": N_("One currency per account"),
    "balances equal the sum of their postings": N_("Balances equal the sum of their postings"),
    "no forbidden overdraft": N_("No forbidden overdraft"),
    "holds consistent": N_("Holds are consistent"),
}

PRODUCT_LABELS: dict[str, str] = {
    Product.BANK_LOAN: N_("Bank loan"),
    Product.P2P_LOAN: N_("Crowd loan (P2P)"),
    Product.SUPPLY_CHAIN_RECEIVABLE: N_("Supply-chain finance (receivable)"),
    Product.ECOMMERCE_CREDIT_LINE: N_("E-commerce data credit line"),
    Product.FINANCIAL_LEASE: N_("Financial lease"),
}

REPAYMENT_METHOD_LABELS: dict[str, str] = {
    RepaymentMethod.EQUAL_INSTALMENT: N_("Equal instalments"),
    RepaymentMethod.EQUAL_PRINCIPAL: N_("Equal principal"),
    RepaymentMethod.INTEREST_ONLY_BALLOON: N_("Interest only, principal at the end"),
    RepaymentMethod.BULLET: N_("Principal and interest at maturity"),
    RepaymentMethod.LEASE_RENT: N_("Lease rent"),
    RepaymentMethod.REVOLVING: N_("Revolving"),
}

DEMAND_STATUS_LABELS: dict[str, str] = {
    DemandStatus.DRAFT: N_("Draft"),
    DemandStatus.SUBMITTED: N_("Submitted"),
    DemandStatus.UNDER_VERIFICATION: N_("Under verification"),
    DemandStatus.LISTED: N_("Listed"),
    DemandStatus.FUNDING: N_("Funding"),
    DemandStatus.FUNDED: N_("Funded"),
    DemandStatus.FAILED: N_("Failed"),
    DemandStatus.WITHDRAWN: N_("Withdrawn"),
}

ORDER_STATUS_LABELS: dict[str, str] = {
    "unassigned": N_("Unassigned"),
    "assigned": N_("Assigned"),
    "accepted": N_("Accepted"),
    "escalated": N_("Escalated"),
    "completed": N_("Completed"),
    "declined": N_("Declined"),
    "cancelled": N_("Cancelled"),
    "waived": N_("Waived"),
}

COLLATERAL_KIND_LABELS: dict[str, str] = {
    "property": N_("Property"),
    "equipment": N_("Equipment"),
    "inventory": N_("Inventory"),
    "receivable": N_("Receivable"),
    "equity": N_("Equity"),
    "deposit": N_("Deposit"),
    "other": N_("Other"),
}

END_OPTION_LABELS: dict[str, str] = {
    "purchase": N_("Buy the equipment"),
    "renew": N_("Renew the lease"),
    "return": N_("Return the equipment"),
}

#: How a credit fact is known (``CreditFact.provenance``) and how it stands (``FactView.status``).
FACT_STATUS_LABELS: dict[str, str] = {
    "verified": N_("Verified"),
    "attested": N_("Attested"),
    "expired": N_("Expired"),
    "self_declared": N_("Self-declared"),
    "data_feed": N_("Data feed"),
}

#: Fields and options of the agencies' typed results (``verification.attestations.RESULTS``).
RESULT_FIELD_LABELS: dict[str, str] = {
    "rating": N_("Rating"),
    "outlook": N_("Outlook"),
    "methodology": N_("Methodology"),
    "subject": N_("Subject"),
    "value_minor": N_("Value"),
    "currency": N_("Currency"),
    "method": N_("Method"),
    "appraised_on": N_("Appraised on"),
    "patents": N_("Patents"),
    "number": N_("Number"),
    "title": N_("Title"),
    "coverage_percent": N_("Coverage in per cent"),
    "cap_minor": N_("Cap"),
    "fee_percent": N_("Fee in per cent"),
    "term_months": N_("Term (months)"),
    "policy_number": N_("Policy number"),
    "coverage_minor": N_("Coverage"),
    "premium_minor": N_("Premium"),
    "starts_on": N_("Starts on"),
    "ends_on": N_("Ends on"),
    "verified": N_("Verified"),
    "finding": N_("Finding"),
    "bank_account_id": N_("Bank account ID"),
    "goods": N_("Goods"),
    "warehouse": N_("Warehouse"),
    "quantity": N_("Quantity"),
    "unit": N_("Unit"),
    "inspected_on": N_("Inspected on"),
    "condition": N_("Condition"),
}

RESULT_OPTION_LABELS: dict[str, str] = {
    "positive": N_("Positive"),
    "stable": N_("Stable"),
    "negative": N_("Negative"),
    "developing": N_("Developing"),
    "business": N_("The business"),
    "assets": N_("Assets"),
    "receivable": N_("Receivable"),
    "inventory": N_("Inventory"),
    "equipment": N_("Equipment"),
    "identity": N_("Identity"),
    "business_licence": N_("Business licence"),
    "bank_account": N_("Bank account"),
    "other": N_("Other"),
    "good": N_("Good"),
    "fair": N_("Fair"),
    "poor": N_("Poor"),
}

#: Every label table of the parties pages, reachable in templates as ``lbl.<name>[value]``.
MODEL_ROLE_LABELS: dict[str, str] = {
    "champion": N_("Champion"),
    "challenger": N_("Challenger"),
    "registered": N_("Registered, not in use"),
    "retired": N_("Retired"),
}

PROMOTION_STATUS_LABELS: dict[str, str] = {
    "proposed": N_("Proposed"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
}

PSI_READING_LABELS: dict[str, str] = {
    "stable": N_("Stable"),
    "watch": N_("Watch"),
    "shifted": N_("Shifted"),
}

PARTY_LABELS: dict[str, dict[str, str]] = {
    "status": QUALIFICATION_STATUS_LABELS,
    "event": REVIEW_EVENT_LABELS,
    "institution_type": INSTITUTION_TYPE_LABELS,
    "agency_type": AGENCY_TYPE_LABELS,
    "funds_source": FUNDS_SOURCE_LABELS,
    "person_role": PERSON_ROLE_LABELS,
    "document_category": DOCUMENT_CATEGORY_LABELS,
    "data_category": DATA_CATEGORY_LABELS,
    "recipient_class": RECIPIENT_CLASS_LABELS,
    "risk_level": RISK_LEVEL_LABELS,
    "instruction_status": INSTRUCTION_STATUS_LABELS,
    "instruction_kind": INSTRUCTION_KIND_LABELS,
    "adjustment_status": ADJUSTMENT_STATUS_LABELS,
    "side": SIDE_LABELS,
    "severity": SEVERITY_LABELS,
    "ledger_check": LEDGER_CHECK_LABELS,
    "product": PRODUCT_LABELS,
    "repayment_method": REPAYMENT_METHOD_LABELS,
    "demand_status": DEMAND_STATUS_LABELS,
    "order_status": ORDER_STATUS_LABELS,
    "collateral_kind": COLLATERAL_KIND_LABELS,
    "end_option": END_OPTION_LABELS,
    "fact_status": FACT_STATUS_LABELS,
    "result_field": RESULT_FIELD_LABELS,
    "result_option": RESULT_OPTION_LABELS,
    "model_role": MODEL_ROLE_LABELS,
    "promotion_status": PROMOTION_STATUS_LABELS,
    "psi_reading": PSI_READING_LABELS,
}

#: Titles and messages raised by services and the framework: extracted here so that pages can show
#: them translated (they reach the page as English text).
KNOWN_MESSAGES: tuple[str, ...] = (
    N_("Bad request"),
    N_("Invalid input"),
    N_("Not authenticated"),
    N_("Permission denied"),
    N_("Not found"),
    N_("Not Found"),
    N_("Method Not Allowed"),
    N_("Conflict"),
    N_("Too many requests"),
    N_("Account locked"),
    N_("Two-factor code required"),
    N_("wrong e-mail or password"),
    N_("this account is disabled"),
    N_("too many failed logins from this address; try later"),
    N_("this account is locked after repeated failed logins; try later"),
    N_("two-factor enrolment is required for your role; ask the operator to enrol you"),
    N_("enter the 6-digit code from your authenticator app"),
    N_("wrong two-factor code"),
    N_("must not be empty"),
    N_("required for investors"),
    N_("wrong or expired code"),
    N_("1 to 100 characters"),
    N_("no such API key"),
    # parties: registration and the admittance review
    N_("the registration has problems; nothing was saved"),
    N_("an enterprise with this credit code is already registered"),
    N_("an enterprise with this name is already registered"),
    N_("an investor with this ID number is already registered"),
    N_("an investor with this credit code is already registered"),
    N_("an agency with this credit code is already registered"),
    N_("an agency with this name is already registered"),
    N_("a user with this e-mail already exists"),
    N_("must be an e-mail address"),
    N_("must be at most 256 characters"),
    N_("must not contain the e-mail address"),
    N_("must not be in the future"),
    N_("required for an individual investor"),
    N_("required for an institution"),
    N_("investors must be adults (18 or older)"),
    N_("only institutions have a type and credit code"),
    N_("institutions register with a credit code"),
    N_("the first 17 characters must be digits"),
    N_("the last character must be a digit or X"),
    N_("must be base64"),
    N_("must be a 32-byte Ed25519 public key"),
    N_("is not an Ed25519 public key"),
    N_("the agency is not registered for this type"),
    N_("listed twice"),
    N_("not answered"),
    N_("unknown question"),
    N_("the questionnaire is incomplete"),
    N_("every decision needs a reason"),
    N_("the first approval was yours; a different regulator must approve"),
    N_("A second, different regulator must approve"),
    N_("This decision is not possible now"),
    N_("A reason is required"),
    N_("is empty"),
    N_("must be a PDF, PNG or JPEG file"),
    N_("the upload was refused; nothing was stored"),
    N_("must be after today"),
    N_("a consent must last beyond today"),
    N_("no such qualification"),
    N_("no such document"),
    N_("no such consent"),
    N_("no such message"),
    N_("no such party under review"),
    N_("registration submitted"),
    # custody and the ledger
    N_("must be greater than zero"),
    N_("the amount must be positive"),
    N_("not verified"),
    N_("required"),
    N_("money moves only to and from your own verified account; this one is not verified yet"),
    N_("no such bank account of yours"),
    N_("no such bank account"),
    N_("no such account"),
    N_("no such adjustment"),
    N_("only authentication agencies verify bank accounts"),
    N_("say how it was verified"),
    N_("say why"),
    N_("the account holds another currency"),
    N_("this Idempotency-Key was already used for a different request"),
    N_("a request with this key is still in progress; retry"),
    N_("money-moving requests need an Idempotency-Key header"),
    N_("no custodian bank is admitted yet; money cannot move"),
    N_("you proposed this adjustment; another operator must decide it"),
    N_("A second, different operator must approve"),
    N_("the adjustment has problems; nothing was proposed"),
    N_("the entry was refused; no money moved"),
    N_("must be D or C"),
    N_("must be whole minor units"),
    N_("is larger than a 64-bit amount"),
    N_("an entry has at least two legs"),
    N_("beneficiary account closed"),
    N_("rejected by the beneficiary's bank"),
    N_("name does not match the account holder"),
    # demands, service orders, attestations, listings, webhooks
    N_("the demand has problems; nothing was saved"),
    N_("cannot exceed the amount"),
    N_("must be below the price"),
    N_("must be in the future"),
    N_("must be after issued_at"),
    N_("must carry a time zone"),
    N_("give the certificate number"),
    N_("not an investing institution on the platform"),
    N_("no such document of yours"),
    N_("every move of a demand needs a reason"),
    N_("the term is outside the policy's bounds"),
    N_("over the 12-month cap"),
    N_("a waiver needs a reason"),
    N_("no such demand"),
    N_("no such service order"),
    N_("no such listing"),
    N_("no such attestation"),
    N_("no such credit file"),
    N_("the attestation has problems; nothing saved"),
    N_("not a valid Ed25519 signature of the canonical form"),
    N_(
        "the signature does not verify with the agency's registered key over the canonical form; "
        "nothing saved"
    ),
    N_("must be a JSON object of plain JSON values"),
    N_("the webhook URL is not acceptable"),
    N_("not a valid URL"),
    N_("must be an https:// (or http://) URL"),
    N_("must name a host"),
    N_("must not carry credentials; the signature authenticates the platform"),
    N_("must not have a #fragment"),
    N_("only an agency has a webhook"),
    # reasons the demand and order histories record
    N_("drafted"),
    N_("submitted by the enterprise"),
    N_("every required service is completed or waived"),
    N_("ordered for the demand"),
    N_("accepted by the agency"),
    N_("the demand was withdrawn"),
    N_("no admitted agency offers this service; the operator must act"),
    # pydantic validation, by error type (see the registration pages)
    N_("Required."),
    N_("Enter an amount, e.g. 1250000.00."),
    N_("Enter a date as YYYY-MM-DD."),
    N_("Enter a whole number."),
    N_("Not in the expected format."),
    N_("Choose one of the options."),
    N_("Too long."),
    N_("Out of range."),
    N_("Invalid value."),
    N_("Choose at least one."),
)

#: Service messages that carry a value: the English pattern and its translatable template.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), template)
    for pattern, template in (
        (r"^must be 18 characters \(got (?P<n>\d+)\)$", N_("must be 18 characters (got %(n)s)")),
        (r"^must be 6 digits \(got (?P<c>.+)\)$", N_("must be 6 digits (got %(c)s)")),
        (r"^check character should be (?P<c>\S+)$", N_("check character should be %(c)s")),
        (r"^unknown province code (?P<c>\S+)$", N_("unknown province code %(c)s")),
        (
            r"^unknown administrative division code (?P<c>\S+)$",
            N_("unknown administrative division code %(c)s"),
        ),
        (
            r"^contains a character not allowed \(I, O, S, V, Z or lowercase\): (?P<c>.+)$",
            N_("contains a character not allowed (I, O, S, V, Z or lowercase): %(c)s"),
        ),
        (
            r"^positions 3–8 must be a 6-digit administrative division code \(got (?P<c>.+)\)$",
            N_("positions 3–8 must be a 6-digit administrative division code (got %(c)s)"),
        ),
        (
            r"^positions 7–14 must be a real birth date YYYYMMDD \(got (?P<c>.+)\)$",
            N_("positions 7–14 must be a real birth date YYYYMMDD (got %(c)s)"),
        ),
        (r"^birth date (?P<c>\S+) is in the future$", N_("birth date %(c)s is in the future")),
        (
            r"^unknown industry section (?P<c>.+): expected an upper-case letter A–T$",
            N_("unknown industry section %(c)s: expected an upper-case letter A–T"),
        ),
        (
            r"^industry code needs 2, 3 or 4 digits after the section letter \(got (?P<c>.+)\)$",
            N_("industry code needs 2, 3 or 4 digits after the section letter (got %(c)s)"),
        ),
        (r"^unknown industry division (?P<c>\S+)$", N_("unknown industry division %(c)s")),
        (
            r"^division (?P<d>\S+) belongs to section (?P<s>\S+), not (?P<t>\S+)$",
            N_("division %(d)s belongs to section %(s)s, not %(t)s"),
        ),
        (r"^must be at least (?P<n>\d+) characters$", N_("must be at least %(n)s characters")),
        (r"^unknown option (?P<c>.+)$", N_("unknown option %(c)s")),
        (r"^is larger than (?P<n>\d+) MB$", N_("is larger than %(n)s MB")),
        (
            r"^(?P<c>[A-Z]{3}) debits (?P<d>\d+) and credits (?P<k>\d+) differ$",
            N_("%(c)s debits %(d)s and credits %(k)s (minor units) differ"),
        ),
        (r"^adjustment (?P<r>\S+) is already (?P<s>\w+)$", N_("adjustment %(r)s is already %(s)s")),
        (
            r"^the breakdown sums to (?P<a>.+), not (?P<b>.+)$",
            N_("the uses of the funds sum to %(a)s, not %(b)s"),
        ),
        (r"^a (?P<p>[a-z_0-9]+) is repaid by (?P<m>.+)$", N_("a %(p)s is repaid by %(m)s")),
        (r"^required for a (?P<p>[a-z_0-9]+)$", N_("required for a %(p)s")),
        (
            r"^above the legal cap of (?P<c>[0-9.]+)% \(4 × the one-year LPR\)$",
            N_("above the legal cap of %(c)s%% (4 × the one-year LPR)"),
        ),
        (r"^must be (?P<a>\d+) to (?P<b>\d+) months$", N_("must be %(a)s to %(b)s months")),
        (r"^open demand (?P<r>\S+)$", N_("this project already has an open demand: %(r)s")),
        (r"^at most (?P<m>.+ [A-Z]{3}) more$", N_("at most %(m)s more")),
        (r"^demand (?P<r>\S+) is (?P<s>[a-z_]+)$", N_("demand %(r)s is %(s)s")),
        (r"^a (?P<a>[a-z_]+) demand cannot become (?P<b>[a-z_]+)$", N_("a %(a)s demand cannot become %(b)s")),
        (r"^order (?P<r>\S+) is (?P<s>[a-z_]+)$", N_("order %(r)s is %(s)s")),
        (r"^order (?P<r>\S+) already has an attestation$", N_("order %(r)s already has an attestation")),
        (r"^a (?P<s>[a-z_]+) order takes no result$", N_("a %(s)s order takes no result")),
        (
            r"^this is a (?P<k>[a-z ]+) order: the result must be a (?P<m>\w+); nothing saved$",
            N_("this is a %(k)s order: the result must be a %(m)s; nothing saved"),
        ),
        (r"^at most (?P<n>\d+) characters$", N_("at most %(n)s characters")),
        (r"^(?P<n>\d+) third-party services ordered$", N_("%(n)s third-party services ordered")),
        (r"^attestation (?P<r>\S+)$", N_("attestation %(r)s")),
        (r"^reassigned after a decline: (?P<r>.+)$", N_("reassigned after a decline: %(r)s")),
        (r"^reassigned by the operator: (?P<r>.+)$", N_("reassigned by the operator: %(r)s")),
        (r"^the promotion is already (?P<s>[a-z]+)$", N_("the promotion is already %(s)s")),
        (
            r"^demand (?P<r>\S+) is (?P<s>[a-z_]+); decisions are made while it is verified or listed$",
            N_("demand %(r)s is %(s)s; decisions are made while it is verified or listed"),
        ),
        (
            r"^the artifact of model (?P<m>.+) is missing or was changed; not loaded$",
            N_("the artifact of model %(m)s is missing or was changed; not loaded"),
        ),
        (
            r"^cannot (?P<verb>[a-z ]+) a qualification that is (?P<status>[a-z_]+)$",
            N_("this decision is not possible while the qualification is %(status)s"),
        ),
    )
)


def translate_message(locale: str, message: str) -> str:
    """A service or validation message in the page's language: exact catalogue entries first, then
    the messages that carry a value (credit codes, counts…); anything else is shown as it came."""
    translated = i18n.gettext(locale, message)
    if translated != message or locale == i18n.EN:
        return translated
    for pattern, template in _PATTERNS:
        found = pattern.match(message)
        if found:
            values = found.groupdict()
            if "status" in values:
                values["status"] = i18n.gettext(
                    locale, QUALIFICATION_STATUS_LABELS.get(values["status"], values["status"])
                )
            return i18n.gettext(locale, template, **values)
    return message


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str


NAV: dict[Portal, tuple[NavItem, ...]] = {
    Portal.ENTERPRISE: (
        NavItem("/enterprise", N_("Dashboard")),
        NavItem("/qualification", N_("Admittance")),
        NavItem("/enterprise/demands", N_("Demands")),
        NavItem("/enterprise/loans", N_("Loans")),
        NavItem("/enterprise/credit-file", N_("Credit file")),
        NavItem("/enterprise/consents", N_("Consents")),
        NavItem("/enterprise/data", N_("Import data")),
    ),
    Portal.INVESTOR: (
        NavItem("/investor", N_("Dashboard")),
        NavItem("/qualification", N_("Admittance")),
        NavItem("/investor/listings", N_("Listings")),
        NavItem("/investor/recommendations", N_("Recommended")),
        NavItem("/investor/commitments", N_("Commitments")),
        NavItem("/investor/portfolio", N_("Portfolio")),
        NavItem("/investor/income", N_("Income")),
        NavItem("/investor/money", N_("Money")),
        NavItem("/investor/preferences", N_("Preferences")),
        NavItem("/investor/risk", N_("Risk profile")),
    ),
    Portal.AGENCY: (
        NavItem("/agency", N_("Dashboard")),
        NavItem("/qualification", N_("Admittance")),
        NavItem("/agency/orders", N_("Service orders")),
        NavItem("/agency/bank-accounts", N_("Bank accounts")),
        NavItem("/agency/webhook", N_("Webhook")),
    ),
    Portal.BANK: (
        NavItem("/bank", N_("Dashboard")),
        NavItem("/qualification", N_("Admittance")),
        NavItem("/bank/demands", N_("Demands")),
        NavItem("/bank/offers", N_("Offers")),
    ),
    Portal.REGULATOR: (
        NavItem("/regulator", N_("Dashboard")),
        NavItem("/regulator/queue", N_("Review queue")),
        NavItem("/regulator/audit", N_("Audit log")),
        NavItem("/regulator/funds", N_("Fund flows")),
        NavItem("/listings", N_("Listings")),
        NavItem("/alerts", N_("Alerts")),
        NavItem("/models", N_("Credit models")),
    ),
    Portal.OPERATOR: (
        NavItem("/operator", N_("Dashboard")),
        NavItem("/operator/organisations", N_("Organisations")),
        NavItem("/operator/orders", N_("Service orders")),
        NavItem("/operator/lpr", N_("LPR")),
        NavItem("/operator/outbox", N_("Outbox")),
        NavItem("/operator/funds", N_("Fund flows")),
        NavItem("/operator/adjustments", N_("Adjustments")),
        NavItem("/models", N_("Credit models")),
    ),
}
