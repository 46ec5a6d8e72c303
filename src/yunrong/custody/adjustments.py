"""Manual ledger adjustments, with maker–checker: one operator proposes, another approves."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.identity.model import Action, Context
from yunrong.identity.service import require
from yunrong.kit.errors import Conflict, FieldProblem, InvalidInput, NotFound
from yunrong.kit.ids import human_ref
from yunrong.ledger import service as ledger
from yunrong.ledger.model import Leg, Side, ensure_valid
from yunrong.ledger.tables import Adjustment, LedgerAccount
from yunrong.supervision import service as audit


class SecondOperatorRequired(Conflict):
    code = "maker-checker"
    title = "A second, different operator must approve"


def _legs(session: Session, raw: Sequence[dict[str, Any]]) -> list[Leg]:
    legs: list[Leg] = []
    problems: list[FieldProblem] = []
    for i, item in enumerate(raw):
        account = session.scalars(
            select(LedgerAccount).where(LedgerAccount.code == item.get("account_code"))
        ).first()
        if account is None:
            problems.append(FieldProblem(("legs", i, "account_code"), "no such account"))
            continue
        try:
            side = Side(str(item.get("side")))
        except ValueError:
            problems.append(FieldProblem(("legs", i, "side"), "must be D or C"))
            continue
        amount = item.get("amount_minor")
        if isinstance(amount, bool) or not isinstance(amount, int):
            problems.append(FieldProblem(("legs", i, "amount_minor"), "must be whole minor units"))
            continue
        legs.append(Leg(account.id, side, amount, account.currency))
    if problems:
        raise InvalidInput("the adjustment has problems; nothing was proposed", problems)
    ensure_valid(legs)
    return legs


def propose(session: Session, *, ctx: Context, legs: Sequence[dict[str, Any]], reason: str) -> Adjustment:
    require(ctx, Action.PROPOSE_ADJUSTMENT)
    if not reason.strip():
        raise InvalidInput("say why", [FieldProblem(("reason",), "required")])
    _legs(session, legs)  # validated now; posted only on approval
    adjustment = Adjustment(
        ref=human_ref("ADJ"),
        legs=[dict(leg) for leg in legs],
        reason=reason.strip(),
        status="proposed",
        proposed_by=str(ctx.actor.user_id),
        proposed_label=ctx.actor.email,
        created_at=ctx.now(),
    )
    session.add(adjustment)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="ledger.adjustment_proposed",
        object_type="adjustment",
        object_id=adjustment.id,
        after={"legs": adjustment.legs, "reason": adjustment.reason},
    )
    return adjustment


def decide(
    session: Session, *, ctx: Context, adjustment_id: uuid.UUID, approve: bool, reason: str
) -> Adjustment:
    require(ctx, Action.APPROVE_ADJUSTMENT)
    adjustment = session.execute(
        select(Adjustment).where(Adjustment.id == adjustment_id).with_for_update()
    ).scalar_one_or_none()
    if adjustment is None:
        raise NotFound("no such adjustment")
    if adjustment.status != "proposed":
        raise Conflict(f"adjustment {adjustment.ref} is already {adjustment.status}")
    if adjustment.proposed_by == str(ctx.actor.user_id):
        raise SecondOperatorRequired("you proposed this adjustment; another operator must decide it")
    if not reason.strip():
        raise InvalidInput("say why", [FieldProblem(("reason",), "required")])
    if approve:
        legs = _legs(session, adjustment.legs)
        adjustment.entry_id = ledger.post(
            session,
            ctx=ctx,
            drafts=[
                ledger.EntryDraft(
                    legs=legs,
                    kind="adjustment",
                    description=f"{adjustment.ref}: {adjustment.reason}",
                    external_ref=adjustment.ref,
                )
            ],
        )[0]
    adjustment.status = "approved" if approve else "rejected"
    adjustment.decided_by = str(ctx.actor.user_id)
    adjustment.decided_label = ctx.actor.email
    adjustment.decision_reason = reason.strip()
    adjustment.decided_at = ctx.now()
    audit.record(
        session,
        ctx=ctx,
        action=f"ledger.adjustment_{adjustment.status}",
        object_type="adjustment",
        object_id=adjustment.id,
        detail={"reason": reason.strip()},
    )
    return adjustment


def list_adjustments(session: Session, *, ctx: Context) -> list[Adjustment]:
    require(ctx, Action.PROPOSE_ADJUSTMENT)
    return list(session.scalars(select(Adjustment).order_by(Adjustment.created_at.desc())).all())
