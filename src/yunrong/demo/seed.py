"""Seed a demo world: every kind of party, admitted by two regulators, plus a few applications
still waiting in the regulator's queue.

Idempotent: parties are found by their first user's e-mail; running it twice creates nothing
twice. Demo passwords are public by design and only for ``YUNRONG_DEMO=true`` deployments.
Every figure here is made up for the demo (no real enterprise or person is described).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.identity import repository as repo
from yunrong.identity import service as identity
from yunrong.identity.model import Context, InvestorKind, OrgType, Role
from yunrong.identity.service import actor_for
from yunrong.identity.tables import Organisation
from yunrong.parties import codes
from yunrong.parties import service as parties
from yunrong.parties.model import AgencyType, FundsSource, InstitutionType, PersonRole, ReviewAction
from yunrong.parties.risk import QUESTIONS
from yunrong.parties.schemas import (
    AgencyIn,
    AgencyRegistrationIn,
    AgencyServiceIn,
    ApplicantIn,
    BankAccountIn,
    ContactIn,
    EnterpriseIn,
    EnterpriseRegistrationIn,
    InvestorIn,
    InvestorRegistrationIn,
    PersonIn,
)
from yunrong.supervision import rates

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


OPERATOR = DemoLogin(
    Role.OPERATOR_ADMIN,
    "operator@demo.yunrong.cn",
    "Zhou Min 周敏",
    "Yunrong Platform Operations 云融平台运营",
    OrgType.OPERATOR,
)
REGULATOR_1 = DemoLogin(
    Role.REGULATOR,
    "regulator1@demo.yunrong.cn",
    "Wang Fang 王芳",
    "Jiangsu Local Financial Supervision Bureau 江苏省地方金融监督管理局",
    OrgType.REGULATOR,
)
REGULATOR_2 = DemoLogin(
    Role.REGULATOR,
    "regulator2@demo.yunrong.cn",
    "Sun Lei 孙磊",
    "Jiangsu Local Financial Supervision Bureau 江苏省地方金融监督管理局",
    OrgType.REGULATOR,
)
SME = DemoLogin(
    Role.ENTERPRISE_ADMIN,
    "sme@demo.yunrong.cn",
    "Chen Jie 陈杰",
    "Zhenjiang Lvyuan Agri-Tech Co., Ltd. 镇江绿源农业科技有限公司",
    OrgType.ENTERPRISE,
)
PERSON = DemoLogin(
    Role.INVESTOR,
    "investor@demo.yunrong.cn",
    "Li Wei 李伟",
    "Li Wei 李伟",
    OrgType.INVESTOR,
    InvestorKind.PERSON,
)
INSTITUTION = DemoLogin(
    Role.INVESTOR,
    "institution@demo.yunrong.cn",
    "Huang Tao 黄涛",
    "Zhenjiang Runfeng Small-Loan Co. 镇江润丰小额贷款公司",
    OrgType.INVESTOR,
    InvestorKind.INSTITUTION,
)
AGENCY = DemoLogin(
    Role.AGENCY_ADMIN,
    "agency@demo.yunrong.cn",
    "Xu Na 徐娜",
    "Jiangsu Chengxin Credit Rating Co. 江苏诚信资信评估有限公司",
    OrgType.AGENCY,
)
BANK = DemoLogin(
    Role.BANK_OFFICER,
    "bank@demo.yunrong.cn",
    "Ma Qiang 马强",
    "Bank of Jiangsu Custody Dept. 江苏银行资金存管部",
    OrgType.CUSTODIAN_BANK,
)

DEMO_LOGINS: tuple[DemoLogin, ...] = (
    OPERATOR,
    REGULATOR_1,
    REGULATOR_2,
    SME,
    PERSON,
    INSTITUTION,
    AGENCY,
    BANK,
)


@dataclass(frozen=True)
class SeedReport:
    organisations_created: int
    users_created: int


def demo_agency_private_key(settings: Settings, organisation_name: str) -> bytes:
    """The demo agency's Ed25519 seed, derived so that simulated agencies can sign again later."""
    material = f"{settings.secret_key.get_secret_value()}|demo-agency|{organisation_name}".encode()
    return hashlib.sha256(material).digest()


def demo_agency_public_key(settings: Settings, organisation_name: str) -> str:
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.from_private_bytes(demo_agency_private_key(settings, organisation_name))
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def _uscc(body: str) -> str:
    return codes.make_uscc(body)


def _applicant(login: DemoLogin) -> ApplicantIn:
    return ApplicantIn(email=login.email, name=login.name, password=login.password)


def _answers(level: float) -> dict[str, str]:
    """Questionnaire answers: 0 = the most cautious option of every question, 1 = the boldest."""
    chosen = {}
    for question in QUESTIONS:
        ordered = sorted(question.options, key=lambda o: o.score)
        chosen[question.key] = ordered[min(len(ordered) - 1, round(level * (len(ordered) - 1)))].key
    return chosen


def _enterprise(
    login: DemoLogin | None,
    *,
    name: str,
    code_body: str,
    industry: str,
    region: str,
    employees: int,
    revenue: str,
    assets: str,
    applicant: ApplicantIn | None = None,
    founded: date = date(2019, 4, 12),
) -> EnterpriseRegistrationIn:
    return EnterpriseRegistrationIn(
        enterprise=EnterpriseIn(
            credit_code=_uscc(code_body),
            name=name,
            legal_representative=(login.name if login else "Zhao Lei 赵磊"),
            registered_capital=Decimal("5000000.00"),
            founded_on=founded,
            industry_code=industry,
            region_code=region,
            employees=employees,
            annual_revenue=Decimal(revenue),
            total_assets=Decimal(assets),
            contact=ContactIn(
                name=(login.name if login else "Zhao Lei 赵磊"),
                phone="+86 511 8888 0001",
                email=(login.email if login else "contact@example.cn"),
            ),
        ),
        applicant=applicant
        or (_applicant(login) if login else ApplicantIn(email="x@x.cn", name="x", password="x")),
        people=[
            PersonIn(
                role=PersonRole.LEGAL_REPRESENTATIVE,
                name=(login.name if login else "Zhao Lei 赵磊"),
                identifier=codes.make_resident_id("32110219800101123"),
            ),
            PersonIn(
                role=PersonRole.SHAREHOLDER,
                name=(login.name if login else "Zhao Lei 赵磊"),
                identifier=codes.make_resident_id("32110219800101123"),
                share_percent=Decimal("60"),
            ),
            PersonIn(
                role=PersonRole.SHAREHOLDER,
                name="Zhenjiang Agricultural Investment Co. 镇江农投",
                identifier=_uscc("91321100MA1XYW123"),
                share_percent=Decimal("40"),
            ),
            PersonIn(role=PersonRole.ACTUAL_CONTROLLER, name=(login.name if login else "Zhao Lei 赵磊")),
        ],
        bank_account=BankAccountIn(
            bank_name="Bank of Jiangsu Zhenjiang Branch 江苏银行镇江分行",
            account_name=name,
            account_number="32100188000012345678",
        ),
    )


def _login_context(session: Session, email: str, clock: Context) -> Context:
    user = repo.user_by_email(session, email)
    assert user is not None
    org = repo.organisation_by_id(session, user.organisation_id)
    assert org is not None
    return Context(actor=actor_for(user, org, "demo-seed"), clock=clock.clock, request_id="demo-seed")


def _verify_accounts_and_fund(
    session: Session, *, ctx: Context, settings: Settings, with_money: bool
) -> None:
    """The demo agency verifies the demo parties' bank accounts; the investors pay money in. The
    deposits stay pending until the simulated bank confirms them (the worker does that)."""
    from yunrong.custody import service as custody
    from yunrong.custody.tables import Instruction
    from yunrong.parties.tables import BankAccount

    agency = _login_context(session, AGENCY.email, ctx)
    for login in (SME, PERSON, INSTITUTION):
        org_ctx = _login_context(session, login.email, ctx)
        for account in session.scalars(
            select(BankAccount).where(BankAccount.organisation_id == org_ctx.actor.organisation_id)
        ).all():
            if account.verified_at is None:
                custody.verify_bank_account(
                    session,
                    ctx=agency,
                    bank_account_id=account.id,
                    evidence="demo: bank confirmation letter checked",
                )
    if not with_money:
        return
    for login, amount in ((PERSON, 200_000_00), (INSTITUTION, 5_000_000_00)):
        investor = _login_context(session, login.email, ctx)
        if session.scalar(
            select(Instruction.id).where(Instruction.organisation_id == investor.actor.organisation_id)
        ):
            continue
        funding = session.scalars(
            select(BankAccount).where(BankAccount.organisation_id == investor.actor.organisation_id)
        ).first()
        assert funding is not None
        custody.create_deposit(
            session, ctx=investor, amount=amount, currency="CNY", bank_account_id=funding.id
        )


def _champion_model(session: Session, *, ctx: Context, settings: Settings) -> None:
    """Train the default model on a synthetic world, have the demo operator approve it as champion
    (the seed proposes, a person decides), and decide on the listed demo demands."""
    from yunrong.decisions import registry
    from yunrong.decisions import service as decisions
    from yunrong.decisions.tables import ModelVersion
    from yunrong.demands.tables import Demand

    if session.scalar(select(ModelVersion.id).limit(1)) is not None:
        return
    from yunrong.demo.history import feed_history
    from yunrong.parties.tables import Enterprise

    operator = _login_context(session, OPERATOR.email, ctx)
    for enterprise in session.scalars(
        select(Enterprise).join(Demand, Demand.organisation_id == Enterprise.organisation_id).distinct()
    ).all():
        feed_history(session, ctx=operator, enterprise=enterprise, timezone=settings.timezone)
    model = decisions.train_default_model(session, ctx=ctx, settings=settings)
    promotion = registry.propose(
        session,
        ctx=ctx,
        model_id=model.id,
        target_role="champion",
        reason="the default model, trained on the synthetic world",
    )
    registry.decide(
        session,
        ctx=_login_context(session, OPERATOR.email, ctx),
        promotion_id=promotion.id,
        approve=True,
        reason="demo: approved by the platform operator",
    )
    from yunrong.investing.service import open_round

    for demand in session.scalars(select(Demand).where(Demand.status == "listed")).all():
        decisions.decide_demand(session, ctx=ctx, settings=settings, demand_id=demand.id)
        open_round(session, ctx=ctx, demand=demand, settings=settings)  # step 5: the funding window


def seed_demo(
    session: Session, *, ctx: Context, settings: Settings, with_money: bool = True, with_demands: bool = False
) -> SeedReport:
    users_before = repo.count_users(session)
    orgs_before = len(repo.list_organisations(session, org_type=None, only_id=None, limit=100_000))

    authorities: dict[tuple[OrgType, str], Organisation] = {}
    for login in (OPERATOR, REGULATOR_1, REGULATOR_2):
        key = (login.org_type, login.organisation)
        org = authorities.get(key) or repo.organisation_by_name(
            session, login.org_type.value, login.organisation
        )
        if org is None:
            org = identity.create_organisation(
                session, ctx=ctx, org_type=login.org_type, name=login.organisation
            )
        authorities[key] = org
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
    rates.seed_published(session, ctx=ctx)

    def regulator(login: DemoLogin) -> Context:
        user = repo.user_by_email(session, login.email)
        assert user is not None
        org = repo.organisation_by_id(session, user.organisation_id)
        assert org is not None
        return Context(actor=actor_for(user, org, "demo-seed"), clock=ctx.clock, request_id="demo-seed")

    def admit(registration: parties.Registration) -> None:
        for login, reason in (
            (REGULATOR_1, "documents complete and consistent"),
            (REGULATOR_2, "second review: agreed"),
        ):
            parties.decide(
                session,
                ctx=regulator(login),
                settings=settings,
                qualification_id=registration.qualification.id,
                decision=ReviewAction.APPROVE,
                reason=reason,
            )

    if repo.user_by_email(session, SME.email) is None:
        admit(
            parties.register_enterprise(
                session,
                ctx=ctx,
                settings=settings,
                data=_enterprise(
                    SME,
                    name=SME.organisation,
                    code_body="91321100MA1MLY8K4",
                    industry="A0141",
                    region="321102",
                    employees=38,
                    revenue="18600000.00",
                    assets="24500000.00",
                ),
            )
        )

    if repo.user_by_email(session, PERSON.email) is None:
        admit(
            parties.register_investor(
                session,
                ctx=ctx,
                settings=settings,
                data=InvestorRegistrationIn(
                    investor=InvestorIn(
                        kind=InvestorKind.PERSON,
                        name=PERSON.organisation,
                        resident_id=codes.make_resident_id("32010619850315421"),
                        contact_phone="+86 139 0000 0001",
                        net_worth=Decimal("2600000.00"),
                        annual_income=Decimal("380000.00"),
                        funds_sources=[FundsSource.SALARY, FundsSource.SAVINGS],
                        funds_note="Salary and savings held at Bank of Jiangsu",
                    ),
                    applicant=_applicant(PERSON),
                    risk_answers=_answers(0.55),
                    bank_account=BankAccountIn(
                        bank_name="Bank of Jiangsu 江苏银行",
                        account_name=PERSON.organisation,
                        account_number="6214830100012345",
                    ),
                ),
            )
        )

    if repo.user_by_email(session, INSTITUTION.email) is None:
        admit(
            parties.register_investor(
                session,
                ctx=ctx,
                settings=settings,
                data=InvestorRegistrationIn(
                    investor=InvestorIn(
                        kind=InvestorKind.INSTITUTION,
                        name=INSTITUTION.organisation,
                        institution_type=InstitutionType.SMALL_LOAN_COMPANY,
                        credit_code=_uscc("91321100MA1RUNF5G"),
                        contact_phone="+86 511 8500 0000",
                        net_worth=Decimal("300000000.00"),
                        annual_income=Decimal("42000000.00"),
                        funds_sources=[FundsSource.OWN_CAPITAL],
                        funds_note="Registered capital and retained earnings",
                    ),
                    applicant=_applicant(INSTITUTION),
                    risk_answers=_answers(0.8),
                    bank_account=BankAccountIn(
                        bank_name="Bank of Jiangsu 江苏银行",
                        account_name=INSTITUTION.organisation,
                        account_number="32100188000099887766",
                    ),
                ),
            )
        )

    if repo.user_by_email(session, AGENCY.email) is None:
        admit(
            parties.register_agency(
                session,
                ctx=ctx,
                settings=settings,
                data=AgencyRegistrationIn(
                    agency=AgencyIn(
                        name=AGENCY.organisation,
                        credit_code=_uscc("91320100MA1CXPJ3X"),
                        licence_number="JSCR-2019-0087",
                        region_code="320102",
                        types=[AgencyType.CREDIT_RATING, AgencyType.AUTHENTICATION, AgencyType.APPRAISAL],
                        public_key=demo_agency_public_key(settings, AGENCY.organisation),
                        services=[
                            AgencyServiceIn(
                                agency_type=AgencyType.CREDIT_RATING,
                                service="sme_credit_rating",
                                fee=Decimal("3000.00"),
                                sla_hours=72,
                            ),
                            AgencyServiceIn(
                                agency_type=AgencyType.AUTHENTICATION,
                                service="business_licence_check",
                                fee=Decimal("200.00"),
                                sla_hours=24,
                            ),
                            AgencyServiceIn(
                                agency_type=AgencyType.AUTHENTICATION,
                                service="bank_account_check",
                                fee=Decimal("100.00"),
                                sla_hours=24,
                            ),
                            AgencyServiceIn(
                                agency_type=AgencyType.APPRAISAL,
                                service="business_appraisal",
                                fee=Decimal("5000.00"),
                                sla_hours=120,
                            ),
                        ],
                    ),
                    applicant=_applicant(AGENCY),
                ),
            )
        )

    if repo.user_by_email(session, BANK.email) is None:
        operator = Context(actor=ctx.actor, clock=ctx.clock, request_id="demo-seed")
        bank = identity.create_organisation(
            session, ctx=operator, org_type=OrgType.CUSTODIAN_BANK, name=BANK.organisation
        )
        identity.create_user(
            session,
            ctx=operator,
            settings=settings,
            organisation_id=bank.id,
            email=BANK.email,
            name=BANK.name,
            password=BANK.password,
            roles=frozenset({BANK.role}),
            enrol_totp=False,
        )
        qualification = parties.open_qualification(session, ctx=operator, org=bank)
        admit(parties.Registration(bank, repo.user_by_email(session, BANK.email), qualification))  # type: ignore[arg-type]

    _verify_accounts_and_fund(session, ctx=ctx, settings=settings, with_money=with_money)
    # Imported here: demo.demands builds on this module.
    from yunrong.demo.demands import seed_demands, seed_specialist_agencies

    seed_specialist_agencies(session, ctx=ctx, settings=settings)
    if with_demands:
        seed_demands(session, ctx=ctx, settings=settings)
        _champion_model(session, ctx=ctx, settings=settings)

    # Applications still in the regulator's queue.
    pending_email = "applicant@qianli-machinery.example.cn"
    if repo.user_by_email(session, pending_email) is None:
        parties.register_enterprise(
            session,
            ctx=ctx,
            settings=settings,
            data=_enterprise(
                None,
                name="Suzhou Qianli Precision Machinery Co. 苏州千里精密机械有限公司",
                code_body="91320500MA1QLJM2P",
                industry="C3484",
                region="320505",
                employees=120,
                revenue="56000000.00",
                assets="73000000.00",
                applicant=ApplicantIn(email=pending_email, name="Zhao Lei 赵磊", password=DEMO_PASSWORD),
                founded=date(2016, 9, 1),
            ),
        )
    info_email = "founder@lantian-ecommerce.example.cn"
    if repo.user_by_email(session, info_email) is None:
        registration = parties.register_enterprise(
            session,
            ctx=ctx,
            settings=settings,
            data=_enterprise(
                None,
                name="Wuxi Lantian E-commerce Co. 无锡蓝天电子商务有限公司",
                code_body="91320200MA1LTDW8Q",
                industry="F5292",
                region="320213",
                employees=9,
                revenue="4200000.00",
                assets="1800000.00",
                applicant=ApplicantIn(email=info_email, name="Qian Yu 钱宇", password=DEMO_PASSWORD),
                founded=date(2021, 3, 15),
            ),
        )
        parties.decide(
            session,
            ctx=regulator(REGULATOR_1),
            settings=settings,
            qualification_id=registration.qualification.id,
            decision=ReviewAction.REQUEST_INFO,
            reason="Please upload the 2025 annual financial statements.",
        )

    orgs_after = len(repo.list_organisations(session, org_type=None, only_id=None, limit=100_000))
    return SeedReport(orgs_after - orgs_before, repo.count_users(session) - users_before)
