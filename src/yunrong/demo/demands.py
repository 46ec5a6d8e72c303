"""Demo specialist agencies and demo financing demands in every state.

``seed_specialist_agencies`` registers the simulated agencies that every product needs besides the
demo rating agency (a guarantee company, an insurer, an IP valuation and appraisal firm, a logistics
monitoring firm that also confirms receivables), each admitted by the two demo regulators and
signing with a key derived by ``demo_agency_private_key``. It also marks the demo agency simulated,
so that the worker answers orders no one answers in the portal.

``seed_demands`` gives the demo SMEs demands in every state: a draft, a withdrawn demand, demands
under verification (one with its orders partly done), and a listed one whose required services
were completed with real signed attestations — one per product type. The open total of each SME
stays under the cn-2016 cap of CNY 1,000,000 per legal person.

Both are idempotent (agencies are found by their first user's e-mail, demands by project key).
Every name and figure is made up for the demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.config import Settings
from yunrong.demands import service as demands
from yunrong.demands.schemas import DemandIn
from yunrong.demands.tables import Demand
from yunrong.demo.seed import (
    AGENCY,
    DEMO_PASSWORD,
    REGULATOR_1,
    REGULATOR_2,
    SME,
    demo_agency_public_key,
)
from yunrong.identity import repository as repo
from yunrong.identity.model import Context
from yunrong.identity.service import actor_for
from yunrong.kit.clock import business_date
from yunrong.parties import codes
from yunrong.parties import service as parties
from yunrong.parties.model import AgencyType, PersonRole, ReviewAction
from yunrong.parties.schemas import (
    AgencyIn,
    AgencyRegistrationIn,
    AgencyServiceIn,
    ApplicantIn,
    BankAccountIn,
    ContactIn,
    EnterpriseIn,
    EnterpriseRegistrationIn,
    PersonIn,
)
from yunrong.parties.tables import Agency
from yunrong.verification import orders, simulated
from yunrong.verification.tables import ServiceOrder

T = AgencyType


@dataclass(frozen=True)
class DemoAgency:
    email: str
    person: str
    name: str
    code_body: str
    licence: str
    region: str
    types: tuple[AgencyType, ...]
    services: tuple[tuple[AgencyType, str, str, int], ...]  # type, service, fee CNY, SLA hours


SPECIALISTS: tuple[DemoAgency, ...] = (
    DemoAgency(
        "guarantee@demo.yunrong.cn",
        "Zhu Hong 朱红",
        "Jiangsu Huirong Financing Guarantee Co. 江苏汇融融资担保有限公司",
        "91320106MA1HRDB2X",
        "JSRZDB-2018-0112",
        "320106",
        (T.GUARANTEE,),
        ((T.GUARANTEE, "loan_guarantee", "2000.00", 96),),
    ),
    DemoAgency(
        "insurer@demo.yunrong.cn",
        "Gao Yan 高燕",
        "Jiangsu Anheng Property Insurance Co. 江苏安恒财产保险有限公司",
        "91320104MA1AHBX7K",
        "JSBX-2017-0045",
        "320104",
        (T.INSURANCE,),
        ((T.INSURANCE, "equipment_insurance", "800.00", 72),),
    ),
    DemoAgency(
        "appraisal@demo.yunrong.cn",
        "Lin Hao 林浩",
        "Nanjing Zhicai Asset Appraisal Co. 南京智财资产评估有限公司",
        "91320105MA1JCPG4T",
        "JSPG-2016-0309",
        "320105",
        (T.IP_VALUATION, T.APPRAISAL),
        (
            (T.IP_VALUATION, "patent_valuation", "4000.00", 120),
            (T.APPRAISAL, "equipment_appraisal", "3000.00", 96),
            (T.APPRAISAL, "business_appraisal", "4500.00", 120),
        ),
    ),
    DemoAgency(
        "logistics@demo.yunrong.cn",
        "He Jun 何军",
        "Jiangsu Tongda Supply-Chain Monitoring Co. 江苏通达供应链监管有限公司",
        "91320402MA1TDJG6W",
        "JSJG-2020-0021",
        "320402",
        (T.LOGISTICS_MONITORING, T.AUTHENTICATION),
        (
            (T.LOGISTICS_MONITORING, "inventory_monitoring", "1500.00", 72),
            (T.AUTHENTICATION, "receivable_confirmation", "600.00", 48),
        ),
    ),
)

#: The second demo SME, for room under the per-legal-person cap.
SME2_EMAIL = "sme2@demo.yunrong.cn"
SME2_PERSON = "Xie Gang 谢刚"
SME2_NAME = "Changzhou Hengtai Machinery Co., Ltd. 常州恒泰机械有限公司"


def _ctx_of(session: Session, email: str, ctx: Context) -> Context:
    user = repo.user_by_email(session, email)
    assert user is not None, f"demo user {email} is missing: seed the demo world first"
    org = repo.organisation_by_id(session, user.organisation_id)
    assert org is not None
    return Context(actor=actor_for(user, org, "demo-seed"), clock=ctx.clock, request_id="demo-seed")


def _admit(session: Session, *, ctx: Context, settings: Settings, registration: parties.Registration) -> None:
    for login, reason in (
        (REGULATOR_1, "documents complete and consistent"),
        (REGULATOR_2, "second review: agreed"),
    ):
        parties.decide(
            session,
            ctx=_ctx_of(session, login.email, ctx),
            settings=settings,
            qualification_id=registration.qualification.id,
            decision=ReviewAction.APPROVE,
            reason=reason,
        )


def seed_specialist_agencies(session: Session, *, ctx: Context, settings: Settings) -> int:
    """Register and admit the simulated specialist agencies; returns how many were created."""
    created = 0
    for spec in SPECIALISTS:
        if repo.user_by_email(session, spec.email) is None:
            registration = parties.register_agency(
                session,
                ctx=ctx,
                settings=settings,
                data=AgencyRegistrationIn(
                    agency=AgencyIn(
                        name=spec.name,
                        credit_code=codes.make_uscc(spec.code_body),
                        licence_number=spec.licence,
                        region_code=spec.region,
                        types=list(spec.types),
                        public_key=demo_agency_public_key(settings, spec.name),
                        services=[
                            AgencyServiceIn(agency_type=t, service=s, fee=Decimal(fee), sla_hours=sla)
                            for t, s, fee, sla in spec.services
                        ],
                    ),
                    applicant=ApplicantIn(email=spec.email, name=spec.person, password=DEMO_PASSWORD),
                ),
            )
            _admit(session, ctx=ctx, settings=settings, registration=registration)
            created += 1
    for email in (AGENCY.email, *(s.email for s in SPECIALISTS)):
        user = repo.user_by_email(session, email)
        agency = session.get(Agency, user.organisation_id) if user else None
        if agency is not None and not agency.simulated:
            agency.simulated = True
    session.flush()
    return created


def _seed_second_sme(session: Session, *, ctx: Context, settings: Settings) -> None:
    if repo.user_by_email(session, SME2_EMAIL) is not None:
        return
    registration = parties.register_enterprise(
        session,
        ctx=ctx,
        settings=settings,
        data=EnterpriseRegistrationIn(
            enterprise=EnterpriseIn(
                credit_code=codes.make_uscc("91320411MA1HTJX3P"),
                name=SME2_NAME,
                legal_representative=SME2_PERSON,
                registered_capital=Decimal("8000000.00"),
                founded_on=date(2012, 6, 18),
                industry_code="C3484",
                region_code="320411",
                employees=86,
                annual_revenue=Decimal("42000000.00"),
                total_assets=Decimal("51000000.00"),
                contact=ContactIn(name=SME2_PERSON, phone="+86 519 8600 0001", email=SME2_EMAIL),
            ),
            applicant=ApplicantIn(email=SME2_EMAIL, name=SME2_PERSON, password=DEMO_PASSWORD),
            people=[
                PersonIn(
                    role=PersonRole.LEGAL_REPRESENTATIVE,
                    name=SME2_PERSON,
                    identifier=codes.make_resident_id("32040219750812351"),
                ),
                PersonIn(
                    role=PersonRole.SHAREHOLDER,
                    name=SME2_PERSON,
                    identifier=codes.make_resident_id("32040219750812351"),
                    share_percent=Decimal("100"),
                ),
                PersonIn(role=PersonRole.ACTUAL_CONTROLLER, name=SME2_PERSON),
            ],
            bank_account=BankAccountIn(
                bank_name="Bank of Jiangsu Changzhou Branch 江苏银行常州分行",
                account_name=SME2_NAME,
                account_number="32100466000055667788",
            ),
        ),
    )
    _admit(session, ctx=ctx, settings=settings, registration=registration)


# --- the demands ---------------------------------------------------------------------------------


def _uses(*items: tuple[str, str]) -> list[dict[str, str]]:
    return [{"item": item, "amount": amount} for item, amount in items]


def _demand_bodies(today: date) -> list[tuple[str, str, dict[str, Any]]]:
    """(owner e-mail, what to do with it, the demand) in the order they are made."""
    debtor = codes.make_uscc("91320100MA1XFCH5N")
    return [
        (
            SME.email,
            "withdrawn",
            {
                "product": "p2p_loan",
                "title": "Drip irrigation for the Dantu orchards",
                "amount": "100000.00",
                "term_months": 12,
                "repayment_method": "equal_instalment",
                "max_annual_rate": "9.0000",
                "purpose": "Drip irrigation lines for 40 mu of pear orchards",
                "use_of_funds": _uses(("Drip lines and fittings", "70000.00"), ("Installation", "30000.00")),
                "project_key": "demo-drip-irrigation",
            },
        ),
        (
            SME.email,
            "draft",
            {
                "product": "p2p_loan",
                "title": "Refrigerated van for same-day deliveries",
                "amount": "150000.00",
                "term_months": 24,
                "repayment_method": "equal_principal",
                "max_annual_rate": "8.5000",
                "purpose": "A refrigerated van to deliver vegetables to Zhenjiang supermarkets on the day",
                "use_of_funds": _uses(("Refrigerated van", "150000.00")),
                "project_key": "demo-refrigerated-van",
            },
        ),
        (
            SME.email,
            "listed",
            {
                "product": "bank_loan",
                "title": "Smart greenhouse expansion, phase 2",
                "amount": "400000.00",
                "term_months": 36,
                "repayment_method": "equal_instalment",
                "max_annual_rate": "7.2000",
                "purpose": "Two more climate-controlled seedling greenhouses, with sensors and irrigation",
                "use_of_funds": _uses(
                    ("Greenhouse structures", "260000.00"),
                    ("Climate sensors and controllers", "90000.00"),
                    ("Working capital for the first season", "50000.00"),
                ),
                "innovation": {
                    "rd_spend": "620000.00",
                    "patents": [
                        {
                            "number": "ZL202110234567.8",
                            "title": "Greenhouse humidity control by seedling stage",
                        },
                        {"number": "ZL202220876543.2", "title": "Modular hydroponic seedling tray"},
                    ],
                    "high_tech_certified": True,
                    "certificate_number": "GR202332001234",
                },
                "collateral": [
                    {
                        "kind": "equipment",
                        "description": "Existing greenhouse equipment",
                        "value": "300000.00",
                    }
                ],
                "guarantee_wanted": True,
                "project_key": "demo-greenhouse-phase-2",
            },
        ),
        (
            SME.email,
            "partly_done",
            {
                "product": "supply_chain_receivable",
                "title": "Receivable from Xianfeng Supermarkets, winter vegetables",
                "amount": "300000.00",
                "term_months": 3,
                "repayment_method": "bullet",
                "max_annual_rate": "8.0000",
                "purpose": "Finance the winter vegetable delivery until the supermarket chain pays",
                "use_of_funds": _uses(("Seedlings, fertiliser and labour", "300000.00")),
                "project_key": "demo-xianfeng-receivable",
                "facts": {
                    "receivable": {
                        "debtor_name": "Jiangsu Xianfeng Supermarket Chain Co. 江苏鲜丰连锁超市有限公司",
                        "debtor_credit_code": debtor,
                        "invoice_number": "32001900-0458812",
                        "amount": "360000.00",
                        "due_date": (today + timedelta(days=90)).isoformat(),
                    },
                    "inventory": {
                        "goods": "Chinese cabbage and radish, cold-stored",
                        "warehouse": "Lvyuan cold store No. 1, Dantu District, Zhenjiang",
                        "quantity": "180",
                        "unit": "tonnes",
                        "value": "410000.00",
                    },
                },
            },
        ),
        (
            SME.email,
            "submitted",
            {
                "product": "ecommerce_credit_line",
                "title": "Credit line for the Tmall farm store",
                "amount": "200000.00",
                "term_months": 12,
                "repayment_method": "revolving",
                "max_annual_rate": "9.5000",
                "purpose": "Stock for the Spring Festival season of the online store",
                "use_of_funds": _uses(("Gift-box packaging", "60000.00"), ("Seasonal stock", "140000.00")),
                "project_key": "demo-tmall-credit-line",
                "facts": {
                    "store": {
                        "platform": "Tmall",
                        "store_id": "lvyuan-farm-001",
                        "monthly_sales": [
                            "210000.00",
                            "198000.00",
                            "226000.00",
                            "240000.00",
                            "251000.00",
                            "237000.00",
                            "262000.00",
                            "275000.00",
                            "301000.00",
                            "289000.00",
                            "334000.00",
                            "412000.00",
                        ],
                    }
                },
            },
        ),
        (
            SME2_EMAIL,
            "submitted",
            {
                "product": "financial_lease",
                "title": "Five-axis machining centre",
                "amount": "600000.00",
                "term_months": 36,
                "repayment_method": "lease_rent",
                "max_annual_rate": "7.8000",
                "purpose": "Lease a five-axis machining centre for gearbox housings",
                "use_of_funds": _uses(("Five-axis machining centre", "600000.00")),
                "project_key": "demo-five-axis-lease",
                "facts": {
                    "lease": {
                        "equipment": "Five-axis vertical machining centre, 650 mm table",
                        "supplier": "Wuxi Jingcheng CNC Equipment Co. 无锡精诚数控设备有限公司",
                        "price": "680000.00",
                        "residual_value": "68000.00",
                        "end_option": "purchase",
                    }
                },
            },
        ),
        (
            SME2_EMAIL,
            "submitted",
            {
                "product": "p2p_loan",
                "title": "Working capital for an export order",
                "amount": "250000.00",
                "term_months": 6,
                "repayment_method": "interest_only_balloon",
                "max_annual_rate": "10.0000",
                "purpose": "Steel and castings for a gearbox order from a Vietnamese customer",
                "use_of_funds": _uses(("Steel", "150000.00"), ("Castings", "100000.00")),
                "project_key": "demo-export-order",
            },
        ),
    ]


def _step(order: ServiceOrder, stage: str) -> str | None:
    """What the agency does with an order at seeding: complete it, only accept it, or nothing yet."""
    if stage == "listed":
        return "complete"
    if order.service == "business_licence_check" or order.agency_type == T.CREDIT_RATING.value:
        return "complete"
    if order.service == "bank_account_check":
        return "accept"
    return None


def _work(session: Session, *, ctx: Context, settings: Settings, demand: Demand, stage: str) -> None:
    """Have the agencies work the demand's orders: all of them (listed) or some (partly done)."""
    for _ in range(3):  # an order an agency cannot do is declined and reassigned: work it again
        pending = False
        for order in orders.list_orders_of_demand(session, demand.id):
            step = _step(order, stage)
            if step is None or order.status not in orders.OPEN_ORDER or order.agency_id is None:
                continue
            agency_ctx = simulated.agency_context(session, order.agency_id, ctx.clock)
            if agency_ctx is None:
                continue
            if order.accepted_at is None:
                orders.accept_order(session, ctx=agency_ctx, order_id=order.id)
            if step == "complete":
                outcome = simulated.complete_with_result(
                    session, ctx=agency_ctx, settings=settings, order_id=order.id
                )
                pending = pending or outcome == "declined"
        if not pending:
            break
    if stage == "listed":
        # Anything no admitted agency offers is waived by the operator, with the reason on record.
        for order in orders.list_orders_of_demand(session, demand.id):
            if order.required and order.status == "unassigned":
                orders.waive_order(
                    session, ctx=ctx, order_id=order.id, reason="demo: no admitted agency offers it"
                )


def seed_demands(session: Session, *, ctx: Context, settings: Settings) -> int:
    """Demo demands in every state (after the demo world and the specialist agencies). Returns how
    many were created."""
    _seed_second_sme(session, ctx=ctx, settings=settings)
    today = business_date(ctx.now(), settings.timezone)
    created = 0
    for email, stage, body in _demand_bodies(today):
        owner = _ctx_of(session, email, ctx)
        exists = session.scalar(
            select(Demand.id).where(
                Demand.organisation_id == owner.actor.organisation_id,
                Demand.project_key == body["project_key"],
            )
        )
        if exists is not None:
            continue
        demand = demands.create_demand(
            session, ctx=owner, settings=settings, data=DemandIn.model_validate(body)
        )
        created += 1
        if stage == "draft":
            continue
        demands.submit_demand(session, ctx=owner, settings=settings, demand_id=demand.id)
        if stage == "withdrawn":
            demands.withdraw_demand(
                session,
                ctx=owner,
                demand_id=demand.id,
                reason="financed by our cooperative's members instead",
            )
        elif stage in ("listed", "partly_done"):
            _work(session, ctx=ctx, settings=settings, demand=demand, stage=stage)
    session.flush()
    return created
