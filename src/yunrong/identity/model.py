"""Pure identity rules: organisation types, roles, the permission matrix, the acting principal.

Deny by default: an action not listed in ``PERMISSIONS`` is allowed to nobody.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from yunrong.kit.clock import Clock


class OrgType(StrEnum):
    ENTERPRISE = "enterprise"
    INVESTOR = "investor"
    AGENCY = "agency"
    CUSTODIAN_BANK = "custodian_bank"
    REGULATOR = "regulator"
    OPERATOR = "operator"


class InvestorKind(StrEnum):
    PERSON = "person"
    INSTITUTION = "institution"


class Role(StrEnum):
    ENTERPRISE_ADMIN = "enterprise_admin"
    ENTERPRISE_STAFF = "enterprise_staff"
    INVESTOR = "investor"
    AGENCY_ADMIN = "agency_admin"
    AGENCY_ANALYST = "agency_analyst"
    BANK_OFFICER = "bank_officer"
    REGULATOR = "regulator"
    OPERATOR_ADMIN = "operator_admin"


class Portal(StrEnum):
    ENTERPRISE = "enterprise"
    INVESTOR = "investor"
    AGENCY = "agency"
    BANK = "bank"
    REGULATOR = "regulator"
    OPERATOR = "operator"


ROLES_BY_ORG_TYPE: dict[OrgType, frozenset[Role]] = {
    OrgType.ENTERPRISE: frozenset({Role.ENTERPRISE_ADMIN, Role.ENTERPRISE_STAFF}),
    OrgType.INVESTOR: frozenset({Role.INVESTOR}),
    OrgType.AGENCY: frozenset({Role.AGENCY_ADMIN, Role.AGENCY_ANALYST}),
    OrgType.CUSTODIAN_BANK: frozenset({Role.BANK_OFFICER}),
    OrgType.REGULATOR: frozenset({Role.REGULATOR}),
    OrgType.OPERATOR: frozenset({Role.OPERATOR_ADMIN}),
}

PORTAL_BY_ORG_TYPE: dict[OrgType, Portal] = {
    OrgType.ENTERPRISE: Portal.ENTERPRISE,
    OrgType.INVESTOR: Portal.INVESTOR,
    OrgType.AGENCY: Portal.AGENCY,
    OrgType.CUSTODIAN_BANK: Portal.BANK,
    OrgType.REGULATOR: Portal.REGULATOR,
    OrgType.OPERATOR: Portal.OPERATOR,
}

#: Roles whose users must pass TOTP two-factor when the setting requires it.
TOTP_ROLES: frozenset[Role] = frozenset(
    {Role.REGULATOR, Role.OPERATOR_ADMIN, Role.AGENCY_ADMIN, Role.AGENCY_ANALYST}
)

#: Roles that may hold API keys for machine clients (agencies, the custodian, the operator).
API_KEY_ROLES: frozenset[Role] = frozenset({Role.AGENCY_ADMIN, Role.BANK_OFFICER, Role.OPERATOR_ADMIN})


class Action(StrEnum):
    READ_ME = "read_me"
    ENROL_TOTP = "enrol_totp"
    VIEW_ENTERPRISE_PORTAL = "view_enterprise_portal"
    VIEW_INVESTOR_PORTAL = "view_investor_portal"
    VIEW_AGENCY_PORTAL = "view_agency_portal"
    VIEW_BANK_PORTAL = "view_bank_portal"
    VIEW_REGULATOR_PORTAL = "view_regulator_portal"
    VIEW_OPERATOR_PORTAL = "view_operator_portal"
    LIST_ORGANISATIONS = "list_organisations"
    READ_ORGANISATION = "read_organisation"
    CREATE_ORGANISATION = "create_organisation"
    LIST_USERS = "list_users"
    READ_USER = "read_user"
    CREATE_USER = "create_user"
    MANAGE_API_KEYS = "manage_api_keys"
    READ_AUDIT_LOG = "read_audit_log"
    VERIFY_AUDIT_LOG = "verify_audit_log"
    READ_OUTBOX = "read_outbox"
    READ_PARTY = "read_party"
    MANAGE_OWN_PROFILE = "manage_own_profile"
    REVIEW_QUALIFICATIONS = "review_qualifications"
    READ_QUALIFICATION = "read_qualification"
    RESPOND_TO_REVIEW = "respond_to_review"
    SUSPEND_PARTY = "suspend_party"
    UPLOAD_DOCUMENT = "upload_document"
    READ_DOCUMENT = "read_document"
    MANAGE_CONSENTS = "manage_consents"
    ASSESS_RISK_TOLERANCE = "assess_risk_tolerance"
    READ_POLICY = "read_policy"
    SET_LPR = "set_lpr"
    READ_NOTIFICATIONS = "read_notifications"
    MOVE_OWN_MONEY = "move_own_money"
    READ_OWN_ACCOUNTS = "read_own_accounts"
    READ_FUND_FLOWS = "read_fund_flows"
    RECONCILE = "reconcile"
    READ_BANK_STATEMENT = "read_bank_statement"
    PROPOSE_ADJUSTMENT = "propose_adjustment"
    APPROVE_ADJUSTMENT = "approve_adjustment"
    VERIFY_BANK_ACCOUNT = "verify_bank_account"
    VERIFY_LEDGER = "verify_ledger"
    READ_ALERTS = "read_alerts"
    READ_CREDIT_FILE = "read_credit_file"
    READ_LISTINGS = "read_listings"
    REVOKE_ATTESTATION = "revoke_attestation"
    CREATE_DEMAND = "create_demand"
    MANAGE_MODELS = "manage_models"
    READ_MODELS = "read_models"
    DECIDE_CREDIT = "decide_credit"
    OVERRIDE_CREDIT = "override_credit"
    READ_DEMAND = "read_demand"
    MANAGE_ORDERS = "manage_orders"
    WORK_ORDERS = "work_orders"
    READ_ORDERS = "read_orders"
    MANAGE_WEBHOOKS = "manage_webhooks"
    IMPORT_OWN_DATA = "import_own_data"
    FEED_DATA = "feed_data"
    SET_INVESTMENT_PREFERENCES = "set_investment_preferences"
    READ_INVESTMENT_PREFERENCES = "read_investment_preferences"
    LIST_RECOMMENDATIONS = "list_recommendations"
    SET_PUSH_SETTINGS = "set_push_settings"
    COMMIT_FUNDS = "commit_funds"
    READ_COMMITMENTS = "read_commitments"
    DECIDE_FUNDING = "decide_funding"
    MAKE_OFFERS = "make_offers"
    READ_OFFERS = "read_offers"
    MANAGE_AUTOINVEST = "manage_autoinvest"
    READ_LOANS = "read_loans"
    ACCEPT_CONTRACT = "accept_contract"
    READ_PORTFOLIO = "read_portfolio"
    TAKE_KNOWLEDGE_TEST = "take_knowledge_test"
    REPAY_LOAN = "repay_loan"
    RUN_END_OF_DAY = "run_end_of_day"
    MANAGE_DEFAULTS = "manage_defaults"
    VOTE_RESTRUCTURING = "vote_restructuring"
    PROPOSE_RESTRUCTURING = "propose_restructuring"
    READ_CREDIT_RISK_REPORTS = "read_credit_risk_reports"
    PAY_CLAIMS = "pay_claims"


_EVERYONE = frozenset(Role)
_ORG_ADMINS = frozenset({Role.ENTERPRISE_ADMIN, Role.AGENCY_ADMIN, Role.OPERATOR_ADMIN})
#: Who answers for a reviewed party: its administrators (an investor answers for itself).
_PARTY_ADMINS = frozenset({Role.ENTERPRISE_ADMIN, Role.INVESTOR, Role.AGENCY_ADMIN, Role.BANK_OFFICER})

#: The permission matrix: role × action, in one place. Object-level scoping is done in services.
PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.READ_ME: _EVERYONE,
    Action.ENROL_TOTP: _EVERYONE,
    Action.VIEW_ENTERPRISE_PORTAL: frozenset({Role.ENTERPRISE_ADMIN, Role.ENTERPRISE_STAFF}),
    Action.VIEW_INVESTOR_PORTAL: frozenset({Role.INVESTOR}),
    Action.VIEW_AGENCY_PORTAL: frozenset({Role.AGENCY_ADMIN, Role.AGENCY_ANALYST}),
    Action.VIEW_BANK_PORTAL: frozenset({Role.BANK_OFFICER}),
    Action.VIEW_REGULATOR_PORTAL: frozenset({Role.REGULATOR}),
    Action.VIEW_OPERATOR_PORTAL: frozenset({Role.OPERATOR_ADMIN}),
    Action.LIST_ORGANISATIONS: frozenset({Role.OPERATOR_ADMIN, Role.REGULATOR}),
    Action.READ_ORGANISATION: _EVERYONE,
    Action.CREATE_ORGANISATION: frozenset({Role.OPERATOR_ADMIN}),
    Action.LIST_USERS: _ORG_ADMINS | {Role.REGULATOR},
    Action.READ_USER: _ORG_ADMINS | {Role.REGULATOR},
    Action.CREATE_USER: _ORG_ADMINS,
    Action.MANAGE_API_KEYS: API_KEY_ROLES,
    Action.READ_AUDIT_LOG: frozenset({Role.REGULATOR}),
    Action.VERIFY_AUDIT_LOG: frozenset({Role.REGULATOR, Role.OPERATOR_ADMIN}),
    Action.READ_OUTBOX: frozenset({Role.OPERATOR_ADMIN}),
    Action.READ_PARTY: _EVERYONE,
    Action.MANAGE_OWN_PROFILE: _PARTY_ADMINS,
    Action.REVIEW_QUALIFICATIONS: frozenset({Role.REGULATOR}),
    Action.READ_QUALIFICATION: _EVERYONE,
    Action.RESPOND_TO_REVIEW: _PARTY_ADMINS,
    Action.SUSPEND_PARTY: frozenset({Role.REGULATOR}),
    Action.UPLOAD_DOCUMENT: _PARTY_ADMINS | {Role.ENTERPRISE_STAFF, Role.AGENCY_ANALYST},
    Action.READ_DOCUMENT: _EVERYONE,
    Action.MANAGE_CONSENTS: frozenset({Role.ENTERPRISE_ADMIN}),
    Action.ASSESS_RISK_TOLERANCE: frozenset({Role.INVESTOR}),
    Action.READ_POLICY: _EVERYONE,
    Action.SET_LPR: frozenset({Role.OPERATOR_ADMIN}),
    Action.READ_NOTIFICATIONS: _EVERYONE,
    Action.MOVE_OWN_MONEY: frozenset({Role.INVESTOR, Role.BANK_OFFICER}),
    Action.READ_OWN_ACCOUNTS: _PARTY_ADMINS | {Role.ENTERPRISE_STAFF},
    Action.READ_FUND_FLOWS: frozenset({Role.REGULATOR, Role.OPERATOR_ADMIN}),
    Action.RECONCILE: frozenset({Role.OPERATOR_ADMIN}),
    Action.READ_BANK_STATEMENT: frozenset({Role.BANK_OFFICER, Role.OPERATOR_ADMIN, Role.REGULATOR}),
    Action.PROPOSE_ADJUSTMENT: frozenset({Role.OPERATOR_ADMIN}),
    Action.APPROVE_ADJUSTMENT: frozenset({Role.OPERATOR_ADMIN}),
    Action.VERIFY_BANK_ACCOUNT: frozenset({Role.AGENCY_ADMIN, Role.AGENCY_ANALYST}),
    Action.VERIFY_LEDGER: frozenset({Role.REGULATOR, Role.OPERATOR_ADMIN}),
    Action.READ_ALERTS: frozenset({Role.REGULATOR, Role.OPERATOR_ADMIN}),
    Action.READ_CREDIT_FILE: _EVERYONE,  # scoped in the service: owner, supervisors, agencies with an order
    Action.READ_LISTINGS: frozenset({Role.INVESTOR, Role.REGULATOR, Role.OPERATOR_ADMIN}),
    Action.REVOKE_ATTESTATION: frozenset({Role.AGENCY_ADMIN, Role.AGENCY_ANALYST}),
    Action.CREATE_DEMAND: frozenset({Role.ENTERPRISE_ADMIN}),
    Action.MANAGE_MODELS: frozenset({Role.OPERATOR_ADMIN}),
    Action.READ_MODELS: frozenset({Role.OPERATOR_ADMIN, Role.REGULATOR}),
    Action.DECIDE_CREDIT: frozenset({Role.OPERATOR_ADMIN}),
    Action.OVERRIDE_CREDIT: frozenset({Role.OPERATOR_ADMIN}),
    Action.READ_DEMAND: frozenset(
        {Role.ENTERPRISE_ADMIN, Role.ENTERPRISE_STAFF, Role.OPERATOR_ADMIN, Role.REGULATOR}
    ),
    Action.MANAGE_ORDERS: frozenset({Role.OPERATOR_ADMIN}),
    Action.WORK_ORDERS: frozenset({Role.AGENCY_ADMIN, Role.AGENCY_ANALYST}),
    Action.READ_ORDERS: frozenset(
        {
            Role.AGENCY_ADMIN,
            Role.AGENCY_ANALYST,
            Role.ENTERPRISE_ADMIN,
            Role.ENTERPRISE_STAFF,
            Role.OPERATOR_ADMIN,
            Role.REGULATOR,
        }
    ),
    Action.MANAGE_WEBHOOKS: frozenset({Role.AGENCY_ADMIN, Role.INVESTOR}),
    Action.IMPORT_OWN_DATA: frozenset({Role.ENTERPRISE_ADMIN}),
    Action.FEED_DATA: frozenset({Role.OPERATOR_ADMIN, Role.AGENCY_ADMIN, Role.AGENCY_ANALYST}),
    Action.SET_INVESTMENT_PREFERENCES: frozenset({Role.INVESTOR}),
    Action.READ_INVESTMENT_PREFERENCES: frozenset({Role.INVESTOR}),
    Action.LIST_RECOMMENDATIONS: frozenset({Role.INVESTOR}),
    Action.SET_PUSH_SETTINGS: frozenset({Role.INVESTOR}),
    Action.COMMIT_FUNDS: frozenset({Role.INVESTOR}),
    Action.READ_COMMITMENTS: frozenset(
        {Role.INVESTOR, Role.ENTERPRISE_ADMIN, Role.OPERATOR_ADMIN, Role.REGULATOR}
    ),
    Action.DECIDE_FUNDING: frozenset({Role.ENTERPRISE_ADMIN}),
    Action.MAKE_OFFERS: frozenset({Role.BANK_OFFICER}),
    Action.READ_OFFERS: frozenset(
        {Role.BANK_OFFICER, Role.ENTERPRISE_ADMIN, Role.ENTERPRISE_STAFF, Role.OPERATOR_ADMIN, Role.REGULATOR}
    ),
    Action.MANAGE_AUTOINVEST: frozenset({Role.INVESTOR}),
    Action.READ_LOANS: frozenset(
        {
            Role.INVESTOR,
            Role.ENTERPRISE_ADMIN,
            Role.ENTERPRISE_STAFF,
            Role.BANK_OFFICER,
            Role.OPERATOR_ADMIN,
            Role.REGULATOR,
        }
    ),
    Action.ACCEPT_CONTRACT: frozenset({Role.INVESTOR, Role.ENTERPRISE_ADMIN, Role.BANK_OFFICER}),
    Action.READ_PORTFOLIO: frozenset({Role.INVESTOR}),
    Action.TAKE_KNOWLEDGE_TEST: frozenset({Role.INVESTOR}),
    Action.REPAY_LOAN: frozenset({Role.ENTERPRISE_ADMIN}),
    Action.RUN_END_OF_DAY: frozenset({Role.OPERATOR_ADMIN}),
    Action.MANAGE_DEFAULTS: frozenset({Role.OPERATOR_ADMIN}),
    Action.VOTE_RESTRUCTURING: frozenset({Role.INVESTOR, Role.BANK_OFFICER}),
    Action.PROPOSE_RESTRUCTURING: frozenset({Role.ENTERPRISE_ADMIN, Role.OPERATOR_ADMIN}),
    Action.READ_CREDIT_RISK_REPORTS: frozenset({Role.OPERATOR_ADMIN, Role.REGULATOR}),
    Action.PAY_CLAIMS: frozenset({Role.AGENCY_ADMIN, Role.OPERATOR_ADMIN}),
}

PORTAL_ACTION: dict[Portal, Action] = {
    Portal.ENTERPRISE: Action.VIEW_ENTERPRISE_PORTAL,
    Portal.INVESTOR: Action.VIEW_INVESTOR_PORTAL,
    Portal.AGENCY: Action.VIEW_AGENCY_PORTAL,
    Portal.BANK: Action.VIEW_BANK_PORTAL,
    Portal.REGULATOR: Action.VIEW_REGULATOR_PORTAL,
    Portal.OPERATOR: Action.VIEW_OPERATOR_PORTAL,
}

#: Roles that see every organisation (supervision and operations); everyone else sees only their own.
CROSS_ORG_ROLES: frozenset[Role] = frozenset({Role.REGULATOR, Role.OPERATOR_ADMIN})


def is_allowed(roles: frozenset[Role], action: Action) -> bool:
    """True when any of the roles may perform the action. Unknown actions are denied."""
    return bool(roles & PERMISSIONS.get(action, frozenset()))


def roles_valid_for(org_type: OrgType, roles: frozenset[Role]) -> bool:
    return bool(roles) and roles <= ROLES_BY_ORG_TYPE[org_type]


def needs_totp(roles: frozenset[Role]) -> bool:
    return bool(roles & TOTP_ROLES)


PASSWORD_MIN_LENGTH = 10


def password_problems(password: str, email: str) -> list[str]:
    """Every reason a password is unacceptable (empty list when it is fine)."""
    problems: list[str] = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"must be at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > 256:
        problems.append("must be at most 256 characters")
    local = email.split("@", 1)[0].lower()
    if email and (email.lower() in password.lower() or (len(local) >= 3 and local in password.lower())):
        problems.append("must not contain the e-mail address")
    return problems


@dataclass(frozen=True, slots=True)
class Credential:
    """What an API caller presents: an OAuth2 bearer token, or an API key."""

    kind: Literal["token", "api_key"]
    value: str


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a user of one organisation with roles, or the system itself."""

    user_id: uuid.UUID | None
    organisation_id: uuid.UUID | None
    org_type: OrgType | None
    roles: frozenset[Role]
    email: str = "system"
    name: str = "system"
    via: str = "system"

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(None, None, None, frozenset(), email=name, name=name, via="system")

    @property
    def is_system(self) -> bool:
        return self.user_id is None

    def can(self, action: Action) -> bool:
        return self.is_system or is_allowed(self.roles, action)

    @property
    def sees_all_organisations(self) -> bool:
        return self.is_system or bool(self.roles & CROSS_ORG_ROLES)

    @property
    def portal(self) -> Portal | None:
        return PORTAL_BY_ORG_TYPE.get(self.org_type) if self.org_type else None


@dataclass(frozen=True)
class Context:
    """What every service call carries besides the session: the actor, the clock, the request id."""

    actor: Actor
    clock: Clock
    request_id: str = field(default="-")

    def now(self) -> datetime:
        return self.clock.now()
