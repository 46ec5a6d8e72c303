"""Expected credit loss by IFRS 9 stage, as a report for the operator and the regulator.

    ECL = PD × LGD × EAD, per loan, half-even to the fen

- **Stage** (`loan_servicing.ifrs9_stage`, set by the end of day; a defaulted or written-off loan is
  stage 3): 1 performing, 2 significant increase in credit risk, 3 credit-impaired.
- **PD.** The loan's credit decision gives a 12-month PD (`decisions.service.current_decision(...).pd`,
  the PD the pricing treats as annual). With a constant hazard it is annualised to any horizon:
  ``PD(h months) = 1 − (1 − PD₁₂)^(h / 12)``. Stage 1 takes 12 months (or the remaining life if
  shorter), stage 2 the remaining life to maturity, stage 3 is in default: PD = 1. A loan without a
  decision (none should exist) is taken at PD₁₂ = ``FALLBACK_PD``.
- **LGD** = 45 % (the Basel foundation-IRB figure for senior unsecured claims) × (1 − covered share),
  the covered share = (guarantee cover + insurance cover) ÷ EAD, at most 1. Guarantee cover is the
  attested ``coverage_percent`` × EAD within its cap; insurance the policy's cover; a cover whose
  claim has been paid is used up (its money already reduced the EAD). Appraisals of assets are not
  pledges, so no collateral is counted.
- **EAD** = outstanding principal + accrued interest (the note holders' part: what a guarantor paid is
  the guarantor's risk).

Figures are Decimals until the ECL of each loan is rounded once; totals are sums of those.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.identity.model import Context
from yunrong.investing.tables import Loan
from yunrong.servicing.tables import Claim, LoanServicing

BASE_LGD = Decimal("0.45")
FALLBACK_PD = Decimal("0.05")
PD_PLACES = Decimal("0.0000000001")  # PDs are kept to 10 decimal places


def horizon_pd(pd_12m: Decimal, months: int) -> Decimal:
    """The probability of default within ``months``, from a 12-month PD at a constant hazard."""
    if not Decimal(0) <= pd_12m <= Decimal(1):
        raise ValueError(f"PD must be in [0, 1], got {pd_12m}")
    if months <= 0:
        return Decimal(0)
    if pd_12m == 1:
        return Decimal(1)
    survive = (1 - pd_12m) ** (Decimal(months) / 12)
    return (1 - survive).quantize(PD_PLACES, rounding=ROUND_HALF_EVEN)


def stage_pd(pd_12m: Decimal, stage: int, remaining_months: int) -> Decimal:
    if stage == 3:
        return Decimal(1)
    if stage == 2:
        return horizon_pd(pd_12m, max(remaining_months, 1))
    if stage == 1:
        return horizon_pd(pd_12m, min(12, max(remaining_months, 1)))
    raise ValueError(f"IFRS 9 stage must be 1, 2 or 3, got {stage}")


def lgd(ead_minor: int, covered_minor: int) -> Decimal:
    if ead_minor <= 0:
        return BASE_LGD
    share = min(Decimal(1), Decimal(max(covered_minor, 0)) / Decimal(ead_minor))
    return BASE_LGD * (1 - share)


def ecl_minor(pd: Decimal, loss: Decimal, ead_minor: int) -> int:
    return int((pd * loss * ead_minor).to_integral_value(rounding=ROUND_HALF_EVEN))


@dataclass(frozen=True)
class Exposure:
    loan_id: uuid.UUID
    loan_ref: str
    currency: str
    grade: str
    stage: int
    pd_12m: Decimal
    remaining_months: int
    ead_minor: int
    covered_minor: int


@dataclass(frozen=True)
class EclLine:
    exposure: Exposure
    pd: Decimal
    lgd: Decimal
    ecl_minor: int


def expected_loss(e: Exposure) -> EclLine:
    pd = stage_pd(e.pd_12m, e.stage, e.remaining_months)
    loss = lgd(e.ead_minor, e.covered_minor)
    return EclLine(e, pd, loss, ecl_minor(pd, loss, e.ead_minor))


@dataclass(frozen=True)
class Bucket:
    key: str
    loans: int
    ead_minor: int
    ecl_minor: int

    @property
    def coverage(self) -> Decimal:
        """ECL ÷ EAD, the provision rate."""
        if not self.ead_minor:
            return Decimal(0)
        return (Decimal(self.ecl_minor) / Decimal(self.ead_minor)).quantize(Decimal("0.000001"))


def _buckets(lines: Iterable[EclLine], key: str) -> list[Bucket]:
    acc: dict[str, list[int]] = {}
    for line in lines:
        k = str(getattr(line.exposure, key))
        slot = acc.setdefault(k, [0, 0, 0])
        slot[0] += 1
        slot[1] += line.exposure.ead_minor
        slot[2] += line.ecl_minor
    return [Bucket(k, *acc[k]) for k in sorted(acc)]


@dataclass(frozen=True)
class EclReport:
    as_of: date
    currency: str
    lines: list[EclLine]
    by_stage: list[Bucket]
    by_grade: list[Bucket]
    ead_minor: int
    ecl_minor: int


def summarise(as_of: date, currency: str, exposures: Iterable[Exposure]) -> EclReport:
    lines = [expected_loss(e) for e in exposures]
    return EclReport(
        as_of=as_of,
        currency=currency,
        lines=lines,
        by_stage=_buckets(lines, "stage"),
        by_grade=_buckets(lines, "grade"),
        ead_minor=sum(x.exposure.ead_minor for x in lines),
        ecl_minor=sum(x.ecl_minor for x in lines),
    )


# --- from the database -------------------------------------------------------------------------------


def _months_left(as_of: date, maturity: date) -> int:
    months = (maturity.year - as_of.year) * 12 + maturity.month - as_of.month
    if maturity.day > as_of.day:
        months += 1  # a part month counts as a month of life
    return max(months, 0)


def exposures(session: Session, *, as_of: date, currency: str) -> list[Exposure]:
    from yunrong.decisions.service import current_decision
    from yunrong.servicing.defaults import cover_of

    rows = session.execute(
        select(LoanServicing, Loan)
        .join(Loan, Loan.id == LoanServicing.loan_id)
        .where(LoanServicing.currency == currency, LoanServicing.state.not_in(("written_off", "closed")))
        .order_by(Loan.ref)
    ).all()
    out: list[Exposure] = []
    for servicing, loan in rows:
        decision = current_decision(session, loan.demand_id)
        pd = Decimal(str(decision.pd)) if decision is not None else FALLBACK_PD
        grade = (decision.override_grade or decision.grade) if decision is not None else "NR"
        ead = servicing.principal_outstanding + servicing.interest_accrued
        paid = set(
            session.scalars(select(Claim.kind).where(Claim.loan_id == loan.id, Claim.status == "paid")).all()
        )
        covered = 0
        for kind in ("guarantee", "insurance"):
            cover = None if kind in paid else cover_of(session, loan, kind)
            if cover is None:
                continue
            if cover.coverage is not None:
                share = int((cover.coverage * ead).to_integral_value(rounding=ROUND_HALF_EVEN))
                covered += min(cover.cap_minor, share)
            else:
                covered += cover.cap_minor
        stage = 3 if servicing.state == "defaulted" else servicing.ifrs9_stage
        out.append(
            Exposure(
                loan_id=loan.id,
                loan_ref=loan.ref,
                currency=currency,
                grade=grade,
                stage=stage,
                pd_12m=pd,
                remaining_months=_months_left(as_of, servicing.maturity_date),
                ead_minor=ead,
                covered_minor=min(covered, ead),
            )
        )
    return out


def ecl_report(session: Session, *, ctx: Context, as_of: date, currency: str) -> EclReport:
    """The ECL report (operator and regulator)."""
    from yunrong.servicing.defaults import require_action

    require_action(ctx, "read_credit_risk_reports")
    return summarise(as_of, currency, exposures(session, as_of=as_of, currency=currency))


def report_csv(report: EclReport) -> str:
    """One row per loan, then the totals by stage and by grade (UTF-8 with a byte-order mark)."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(["# ECL report / 预期信用损失报告", report.as_of.isoformat(), report.currency])
    writer.writerow(
        ["loan", "grade", "stage", "pd_12m", "remaining_months", "pd", "lgd", "ead_minor", "covered_minor",
         "ecl_minor"]
    )  # fmt: skip
    for line in report.lines:
        e = line.exposure
        writer.writerow(
            [e.loan_ref, e.grade, e.stage, e.pd_12m, e.remaining_months, line.pd, line.lgd, e.ead_minor,
             e.covered_minor, line.ecl_minor]
        )  # fmt: skip
    for title, buckets in (("stage", report.by_stage), ("grade", report.by_grade)):
        writer.writerow([])
        writer.writerow([f"by {title}", "loans", "ead_minor", "ecl_minor", "coverage"])
        for b in buckets:
            writer.writerow([b.key, b.loans, b.ead_minor, b.ecl_minor, b.coverage])
    writer.writerow([])
    writer.writerow(["total", len(report.lines), report.ead_minor, report.ecl_minor])
    return buffer.getvalue()
