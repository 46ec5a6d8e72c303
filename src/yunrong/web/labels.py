"""What the portals call things: role, organisation and status labels, the navigation per portal.

Every label is an English message id marked with ``N_`` and translated when a page shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from yunrong.identity.model import InvestorKind, OrgType, Portal, Role
from yunrong.messaging.model import EventStatus
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
)


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str


NAV: dict[Portal, tuple[NavItem, ...]] = {
    Portal.ENTERPRISE: (NavItem("/enterprise", N_("Dashboard")),),
    Portal.INVESTOR: (NavItem("/investor", N_("Dashboard")),),
    Portal.AGENCY: (NavItem("/agency", N_("Dashboard")),),
    Portal.BANK: (NavItem("/bank", N_("Dashboard")),),
    Portal.REGULATOR: (NavItem("/regulator", N_("Dashboard")), NavItem("/regulator/audit", N_("Audit log"))),
    Portal.OPERATOR: (
        NavItem("/operator", N_("Dashboard")),
        NavItem("/operator/organisations", N_("Organisations")),
        NavItem("/operator/outbox", N_("Outbox")),
    ),
}
