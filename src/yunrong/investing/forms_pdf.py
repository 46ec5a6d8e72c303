"""The agreement form of a listing as a PDF, for investors to read before they commit.

``contracts.form_sha256`` renders the form once per round and keeps only its hash: what every
commitment records as the text the investor accepted. Investors need the document itself, so this
renders it again from the very same terms (rendering is deterministic: the same terms give the
same bytes) and says whether the bytes still hash to what the round recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from yunrong.config import get_settings
from yunrong.demands.tables import Demand
from yunrong.investing import contracts
from yunrong.investing.agreement import agreement_sha256, render_agreement
from yunrong.investing.tables import FundingRound
from yunrong.kit.clock import business_date


@dataclass(frozen=True)
class AgreementForm:
    pdf: bytes
    sha256: str  # of ``pdf``
    recorded_sha256: str  # what the round recorded (and commitments accept)

    @property
    def matches_record(self) -> bool:
        return self.sha256 == self.recorded_sha256


def agreement_form(session: Session, *, demand: Demand, funding: FundingRound) -> AgreementForm:
    """Render the listing's agreement form exactly as ``contracts.form_sha256`` does (recording its
    hash on the round the first time)."""
    recorded = contracts.form_sha256(session, demand, funding)
    # The same settings and arguments as contracts.form_sha256, so that the bytes are the same.
    settings = get_settings()
    from yunrong.investing.loans import fee_of

    terms = contracts._terms(
        session,
        demand=demand,
        principal=funding.target_minor,
        annual_rate=funding.annual_rate,
        term_months=demand.term_months,
        repayment_method=demand.repayment_method,
        fee_minor=fee_of(funding.target_minor, settings),
        lenders=[(contracts.FORM_LENDERS_EN, "annex", funding.target_minor)],
        lender_kind="investors",
        loan_ref=f"{demand.ref}-FORM",
        start=business_date(funding.opens_at, settings.timezone),
        created_at=funding.opens_at,
        settings=settings,
    )
    pdf = render_agreement(terms)
    return AgreementForm(pdf=pdf, sha256=agreement_sha256(pdf), recorded_sha256=recorded)
