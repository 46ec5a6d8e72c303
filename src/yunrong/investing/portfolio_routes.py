"""JSON API of the investor's portfolio, and its statement as CSV or PDF."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from yunrong.deps import DB, ApiCtx, SettingsDep
from yunrong.investing import portfolio as service
from yunrong.kit.money import Money

router = APIRouter(prefix="/api/v1", tags=["portfolio"])

Currency = Query(None, pattern=r"^[A-Z]{3}$", description="Default: the policy profile's currency")


def _major(minor: int, currency: str) -> str:
    return str(Money(minor, currency).decimal)


class HoldingOut(BaseModel):
    note_id: uuid.UUID
    note_ref: str
    loan_id: uuid.UUID
    loan_ref: str
    demand_id: uuid.UUID
    enterprise_org_id: uuid.UUID
    enterprise: str
    product: str
    grade: str
    industry_code: str
    region_code: str
    currency: str
    principal: str
    principal_minor: int
    repaid_principal_minor: int
    outstanding: str
    outstanding_minor: int
    annual_rate: str
    expected_return: str | None = Field(description="Contract rate less PD × LGD, a fraction")
    loan_status: str
    noted_on: date


class PendingOut(BaseModel):
    commitment_id: uuid.UUID
    ref: str
    demand_id: uuid.UUID
    demand_ref: str
    enterprise: str
    held: str
    held_minor: int
    committed_at: datetime
    revocable_until: datetime | None


class CashOut(BaseModel):
    currency: str
    balance_minor: int
    available: str
    available_minor: int
    held: str
    held_minor: int
    held_for_commitments_minor: int
    held_for_withdrawals_minor: int


class ExposureOut(BaseModel):
    key: str
    label: str
    outstanding: str
    outstanding_minor: int
    share: str = Field(description="Of the total outstanding, a fraction (4 places)")


class BreakdownOut(BaseModel):
    dimension: str
    total_minor: int
    items: list[ExposureOut]
    largest: ExposureOut | None
    herfindahl: str = Field(description="Σ share², from 1/n (n equal exposures) to 1 (one exposure)")


class ChartOut(BaseModel):
    title_en: str
    title_zh: str
    currency: str
    max_minor: int = Field(description="The longest bar, to scale the others")
    series: list[ExposureOut]


class FlowOut(BaseModel):
    on: date
    amount_minor: int = Field(description="Signed: negative = money out of the investor")


class PortfolioOut(BaseModel):
    investor_org_id: uuid.UUID
    investor_name: str
    investor_ref: str
    currency: str
    as_of: date
    generated_at: datetime
    principal: str
    principal_minor: int
    outstanding: str
    outstanding_minor: int
    expected_return: str | None = Field(description="Weighted by outstanding, a fraction")
    realised_xirr: str | None = Field(
        description="Annual effective rate of the investor's flows on its loans; null when undefined"
    )
    xirr_flows: list[FlowOut]
    cash: CashOut
    holdings: list[HoldingOut]
    pending_commitments: list[PendingOut]
    diversification: dict[str, BreakdownOut]
    charts: dict[str, ChartOut]


def _exposure(e: service.Exposure, currency: str) -> ExposureOut:
    return ExposureOut(
        key=e.key,
        label=e.label,
        outstanding=_major(e.outstanding_minor, currency),
        outstanding_minor=e.outstanding_minor,
        share=str(e.share),
    )


def _chart(b: service.Breakdown, currency: str, en: str, zh: str, *, by_grade: bool) -> ChartOut:
    series = [_exposure(e, currency) for e in service.chart_series(b, by_grade=by_grade)]
    return ChartOut(
        title_en=en,
        title_zh=zh,
        currency=currency,
        max_minor=max((e.outstanding_minor for e in series), default=0),
        series=series,
    )


def portfolio_out(p: service.Portfolio) -> PortfolioOut:
    cur = p.currency
    return PortfolioOut(
        investor_org_id=p.investor_org_id,
        investor_name=p.investor_name,
        investor_ref=p.investor_ref,
        currency=cur,
        as_of=p.as_of,
        generated_at=p.generated_at,
        principal=_major(p.principal_minor, cur),
        principal_minor=p.principal_minor,
        outstanding=_major(p.outstanding_minor, cur),
        outstanding_minor=p.outstanding_minor,
        expected_return=None if p.expected_return is None else str(p.expected_return),
        realised_xirr=None if p.realised_xirr is None else str(p.realised_xirr),
        xirr_flows=[FlowOut(on=on, amount_minor=amount) for on, amount in p.xirr_flows],
        cash=CashOut(
            currency=p.cash.currency,
            balance_minor=p.cash.balance_minor,
            available=_major(p.cash.available_minor, cur),
            available_minor=p.cash.available_minor,
            held=_major(p.cash.held_minor, cur),
            held_minor=p.cash.held_minor,
            held_for_commitments_minor=p.cash.held_for_commitments_minor,
            held_for_withdrawals_minor=p.cash.held_for_withdrawals_minor,
        ),
        holdings=[
            HoldingOut(
                note_id=h.note_id,
                note_ref=h.note_ref,
                loan_id=h.loan_id,
                loan_ref=h.loan_ref,
                demand_id=h.demand_id,
                enterprise_org_id=h.enterprise_org_id,
                enterprise=h.enterprise,
                product=h.product,
                grade=h.grade,
                industry_code=h.industry_code,
                region_code=h.region_code,
                currency=h.currency,
                principal=_major(h.principal_minor, cur),
                principal_minor=h.principal_minor,
                repaid_principal_minor=h.repaid_principal_minor,
                outstanding=_major(h.outstanding_minor, cur),
                outstanding_minor=h.outstanding_minor,
                annual_rate=str(h.annual_rate),
                expected_return=None if h.expected_return is None else str(h.expected_return),
                loan_status=h.loan_status,
                noted_on=h.noted_on,
            )
            for h in p.holdings
        ],
        pending_commitments=[
            PendingOut(
                commitment_id=c.commitment_id,
                ref=c.ref,
                demand_id=c.demand_id,
                demand_ref=c.demand_ref,
                enterprise=c.enterprise,
                held=_major(c.amount_minor, cur),
                held_minor=c.amount_minor,
                committed_at=c.committed_at,
                revocable_until=c.revocable_until,
            )
            for c in p.pending
        ],
        diversification={
            name: BreakdownOut(
                dimension=b.dimension,
                total_minor=b.total_minor,
                items=[_exposure(e, cur) for e in b.items],
                largest=None if b.largest is None else _exposure(b.largest, cur),
                herfindahl=str(b.herfindahl),
            )
            for name, b in p.diversification.items()
        },
        charts={
            "by_grade": _chart(
                p.diversification["grade"], cur, "Outstanding by grade", "按等级分布的待收本金", by_grade=True
            ),
            "by_industry": _chart(
                p.diversification["industry"],
                cur,
                "Outstanding by industry",
                "按行业分布的待收本金",
                by_grade=False,
            ),
        },
    )


@router.get("/me/portfolio", operation_id="read_portfolio", response_model=PortfolioOut)
def read_portfolio(
    session: DB,
    ctx: ApiCtx,
    settings: SettingsDep,
    as_of: date | None = Query(None, description="Business date to value at; default today"),
    currency: str | None = Currency,
) -> PortfolioOut:
    """Your holdings (one per note), pending commitments, cash, expected and realised return (XIRR)
    and diversification by grade, industry, region, product and enterprise, with chart series."""
    return portfolio_out(
        service.read_portfolio(session, ctx=ctx, settings=settings, as_of=as_of, currency=currency)
    )


@router.get(
    "/me/portfolio/statement",
    operation_id="read_portfolio_statement",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/pdf": {}}}},
)
def read_portfolio_statement(
    session: DB,
    ctx: ApiCtx,
    settings: SettingsDep,
    format: Literal["csv", "pdf"] = Query("csv"),
    since: date | None = Query(None, description="First business date; default the first movement"),
    until: date | None = Query(None, description="Last business date; default today"),
    currency: str | None = Currency,
) -> Response:
    """Your statement: holdings at ``until``, then every cash movement of the period. CSV is UTF-8
    with a byte-order mark (spreadsheets read the Chinese right); the PDF adds charts by grade and
    industry."""
    st = service.statement(session, ctx=ctx, settings=settings, since=since, until=until, currency=currency)
    name = f"portfolio-{st.portfolio.investor_ref}-{st.since.isoformat()}-{st.until.isoformat()}"
    if format == "pdf":
        return Response(
            service.statement_pdf(st),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
        )
    return Response(
        service.statement_csv(st),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
