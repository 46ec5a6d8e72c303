"""Seed a demo world: one organisation of every kind and a login for every role.

Idempotent: organisations are found by type and name, users by e-mail; running it twice creates
nothing twice. Demo passwords are public by design and only for ``YUNRONG_DEMO=true`` deployments.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.identity import repository as repo
from yunrong.identity import service as identity
from yunrong.identity.model import Context, InvestorKind, OrgType, Role
from yunrong.identity.tables import Organisation

DEMO_PASSWORD = "yunrong-demo-2026"


@dataclass(frozen=True)
class DemoLogin:
    role: Role
    email: str
    name: str
    organisation: str
    org_type: OrgType
    investor_kind: InvestorKind | None = None

    @property
    def password(self) -> str:
        return DEMO_PASSWORD

    def as_dict(self) -> dict[str, str]:
        return {
            "role": self.role.value,
            "email": self.email,
            "password": self.password,
            "organisation": self.organisation,
        }


DEMO_LOGINS: tuple[DemoLogin, ...] = (
    DemoLogin(
        Role.OPERATOR_ADMIN,
        "operator@demo.yunrong.cn",
        "Zhou Min 周敏",
        "Yunrong Platform Operations 云融平台运营",
        OrgType.OPERATOR,
    ),
    DemoLogin(
        Role.REGULATOR,
        "regulator1@demo.yunrong.cn",
        "Wang Fang 王芳",
        "Jiangsu Local Financial Supervision Bureau 江苏省地方金融监督管理局",
        OrgType.REGULATOR,
    ),
    DemoLogin(
        Role.REGULATOR,
        "regulator2@demo.yunrong.cn",
        "Sun Lei 孙磊",
        "Jiangsu Local Financial Supervision Bureau 江苏省地方金融监督管理局",
        OrgType.REGULATOR,
    ),
    DemoLogin(
        Role.ENTERPRISE_ADMIN,
        "sme@demo.yunrong.cn",
        "Chen Jie 陈杰",
        "Zhenjiang Lvyuan Agri-Tech Co., Ltd. 镇江绿源农业科技有限公司",
        OrgType.ENTERPRISE,
    ),
    DemoLogin(
        Role.INVESTOR,
        "investor@demo.yunrong.cn",
        "Li Wei 李伟",
        "Li Wei 李伟",
        OrgType.INVESTOR,
        InvestorKind.PERSON,
    ),
    DemoLogin(
        Role.INVESTOR,
        "institution@demo.yunrong.cn",
        "Huang Tao 黄涛",
        "Zhenjiang Runfeng Small-Loan Co. 镇江润丰小额贷款公司",
        OrgType.INVESTOR,
        InvestorKind.INSTITUTION,
    ),
    DemoLogin(
        Role.AGENCY_ADMIN,
        "agency@demo.yunrong.cn",
        "Xu Na 徐娜",
        "Jiangsu Chengxin Credit Rating Co. 江苏诚信资信评估有限公司",
        OrgType.AGENCY,
    ),
    DemoLogin(
        Role.BANK_OFFICER,
        "bank@demo.yunrong.cn",
        "Ma Qiang 马强",
        "Bank of Jiangsu Custody Dept. 江苏银行资金存管部",
        OrgType.CUSTODIAN_BANK,
    ),
)


@dataclass(frozen=True)
class SeedReport:
    organisations_created: int
    users_created: int


def seed_demo(session: Session, *, ctx: Context, settings: Settings) -> SeedReport:
    orgs_created = users_created = 0
    orgs: dict[tuple[OrgType, str], Organisation] = {}
    for login in DEMO_LOGINS:
        key = (login.org_type, login.organisation)
        org = orgs.get(key) or repo.organisation_by_name(session, login.org_type.value, login.organisation)
        if org is None:
            org = identity.create_organisation(
                session,
                ctx=ctx,
                org_type=login.org_type,
                name=login.organisation,
                investor_kind=login.investor_kind,
            )
            orgs_created += 1
        orgs[key] = org
        if repo.user_by_email(session, login.email) is None:
            identity.create_user(
                session,
                ctx=ctx,
                settings=settings,
                organisation_id=org.id,
                email=login.email,
                name=login.name,
                password=login.password,
                roles=frozenset({login.role}),
                enrol_totp=False,
            )
            users_created += 1
    return SeedReport(orgs_created, users_created)
