"""Alerts to the operator and the regulator, in the app and by e-mail."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yunrong.identity.model import Action, Context, OrgType
from yunrong.identity.service import require
from yunrong.identity.tables import Organisation
from yunrong.messaging.service import Message, notify_organisation
from yunrong.supervision.tables import Alert


def raise_alert(
    session: Session,
    *,
    ctx: Context,
    kind: str,
    severity: str,
    subject_en: str,
    subject_zh: str,
    detail: dict[str, Any],
) -> Alert:
    alert = Alert(
        kind=kind,
        severity=severity,
        subject_en=subject_en,
        subject_zh=subject_zh,
        detail=detail,
        created_at=ctx.now(),
    )
    session.add(alert)
    session.flush()
    authorities = session.scalars(
        select(Organisation.id).where(
            Organisation.type.in_([OrgType.OPERATOR.value, OrgType.REGULATOR.value])
        )
    ).all()
    for org_id in authorities:
        notify_organisation(
            session,
            ctx=ctx,
            organisation_id=org_id,
            message=Message(
                kind=f"alert.{kind}",
                subject_en=f"[{severity}] {subject_en}",
                subject_zh=f"【{severity}】{subject_zh}",
                body_en=subject_en,
                body_zh=subject_zh,
                link="/alerts",
            ),
        )
    return alert


def list_alerts(session: Session, *, ctx: Context, open_only: bool = True, limit: int = 100) -> list[Alert]:
    require(ctx, Action.READ_ALERTS)
    query = select(Alert).order_by(Alert.created_at.desc()).limit(limit)
    if open_only:
        query = query.where(Alert.resolved_at.is_(None))
    return list(session.scalars(query).all())
