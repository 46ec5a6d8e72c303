"""The model registry: versioned artifacts with their card, champion and challenger, promotion by
two operators (maker–checker), and rollback (promoting the previous champion again, likewise).

Artifacts are joblib files, which run code when loaded: only files whose sha256 matches the
registered one are ever loaded.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from yunrong.decisions.tables import ModelPromotion, ModelVersion
from yunrong.identity.model import Action, Context
from yunrong.identity.service import require
from yunrong.kit.errors import Conflict, FieldProblem, InvalidInput, NotFound
from yunrong.supervision import service as audit


class SecondOperatorRequired(Conflict):
    code = "maker-checker"
    title = "A second, different operator must approve"


class NoChampion(Conflict):
    code = "no-champion"
    title = "No champion credit model"


_cache: dict[str, Any] = {}
_lock = threading.Lock()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def register(
    session: Session,
    *,
    ctx: Context,
    model_dir: Path,
    artifact: Path,
    reference_scores: dict[str, Any] | None = None,
) -> ModelVersion:
    """Copy an artifact into the model store and register it (role 'registered': not used yet)."""
    require(ctx, Action.MANAGE_MODELS)
    from yunrong.credit.artifact import load_artifact

    if not artifact.is_file():
        raise InvalidInput("no such artifact file", [FieldProblem(("artifact",), str(artifact))])
    try:
        loaded = load_artifact(artifact)
    except Exception as exc:
        raise InvalidInput(
            f"not a Yunrong credit model: {exc}", [FieldProblem(("artifact",), "unreadable")]
        ) from None
    digest = sha256_of(artifact)
    name = str(loaded.card.get("name") or artifact.stem)
    version = (
        int(
            session.scalar(
                select(func.coalesce(func.max(ModelVersion.version), 0)).where(ModelVersion.name == name)
            )
            or 0
        )
        + 1
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / f"{name}-v{version}-{digest[:12]}.joblib"
    shutil.copyfile(artifact, target)
    if reference_scores is None:
        reference_scores = {}
    row = ModelVersion(
        name=name,
        version=version,
        role="registered",
        artifact_path=str(target),
        artifact_sha256=digest,
        card=loaded.card,
        reference_scores=reference_scores,
        registered_by=ctx.actor.email,
        registered_at=ctx.now(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="credit_model.register",
        object_type="credit_model",
        object_id=row.id,
        after={"name": name, "version": version, "sha256": digest},
    )
    return row


def load(row: ModelVersion) -> Any:
    """The fitted model of a registered version, after checking its file is the registered one."""
    with _lock:
        cached = _cache.get(row.artifact_sha256)
        if cached is not None:
            return cached
    from yunrong.credit.artifact import load_artifact

    path = Path(row.artifact_path)
    if not path.is_file() or sha256_of(path) != row.artifact_sha256:
        raise Conflict(
            f"the artifact of model {row.name} v{row.version} is missing or was changed; not loaded"
        )
    model = load_artifact(path).model
    with _lock:
        _cache[row.artifact_sha256] = model
    return model


def champion(session: Session) -> ModelVersion:
    row = session.scalars(select(ModelVersion).where(ModelVersion.role == "champion")).first()
    if row is None:
        raise NoChampion("no credit model is champion yet; an operator must promote one")
    return row


def challenger(session: Session) -> ModelVersion | None:
    return session.scalars(select(ModelVersion).where(ModelVersion.role == "challenger")).first()


def propose(
    session: Session, *, ctx: Context, model_id: uuid.UUID, target_role: str, reason: str
) -> ModelPromotion:
    require(ctx, Action.MANAGE_MODELS)
    if target_role not in ("champion", "challenger", "retired"):
        raise InvalidInput(
            "unknown role", [FieldProblem(("target_role",), "champion, challenger or retired")]
        )
    if not reason.strip():
        raise InvalidInput("say why", [FieldProblem(("reason",), "required")])
    model = session.get(ModelVersion, model_id)
    if model is None:
        raise NotFound("no such model")
    promotion = ModelPromotion(
        model_id=model.id,
        target_role=target_role,
        status="proposed",
        reason=reason.strip(),
        proposed_by=str(ctx.actor.user_id),
        proposed_label=ctx.actor.email,
        created_at=ctx.now(),
    )
    session.add(promotion)
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="credit_model.promotion_proposed",
        object_type="credit_model",
        object_id=model.id,
        detail={"target_role": target_role, "reason": reason.strip()},
    )
    return promotion


def decide(
    session: Session, *, ctx: Context, promotion_id: uuid.UUID, approve: bool, reason: str
) -> ModelPromotion:
    """A second operator approves or rejects. Approving a champion moves the old champion back to
    'registered' (so a rollback is promoting it again)."""
    require(ctx, Action.MANAGE_MODELS)
    promotion = session.execute(
        select(ModelPromotion).where(ModelPromotion.id == promotion_id).with_for_update()
    ).scalar_one_or_none()
    if promotion is None:
        raise NotFound("no such promotion")
    if promotion.status != "proposed":
        raise Conflict(f"the promotion is already {promotion.status}")
    if promotion.proposed_by == str(ctx.actor.user_id):
        raise SecondOperatorRequired("you proposed this promotion; another operator must decide it")
    if not reason.strip():
        raise InvalidInput("say why", [FieldProblem(("reason",), "required")])
    model = session.get(ModelVersion, promotion.model_id)
    assert model is not None
    if approve:
        if promotion.target_role in ("champion", "challenger"):
            session.execute(
                update(ModelVersion)
                .where(ModelVersion.role == promotion.target_role)
                .values(role="registered")
            )
        model.role = promotion.target_role
    promotion.status = "approved" if approve else "rejected"
    promotion.decided_by = str(ctx.actor.user_id)
    promotion.decided_label = ctx.actor.email
    promotion.decided_at = ctx.now()
    audit.record(
        session,
        ctx=ctx,
        action=f"credit_model.promotion_{promotion.status}",
        object_type="credit_model",
        object_id=model.id,
        after={"role": model.role},
        detail={"reason": reason.strip()},
    )
    return promotion


def list_models(session: Session, *, ctx: Context) -> list[ModelVersion]:
    require(ctx, Action.READ_MODELS)
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.registered_at.desc())).all())


def visible_model(session: Session, *, ctx: Context, model_id: uuid.UUID) -> ModelVersion:
    require(ctx, Action.READ_MODELS)
    model = session.get(ModelVersion, model_id)
    if model is None:
        raise NotFound("no such model")
    return model


def psi(reference_edges: list[float], reference_shares: list[float], scores: list[float]) -> float | None:
    """Population stability index of ``scores`` against the training distribution's bins."""
    if not scores or not reference_edges or len(reference_shares) != len(reference_edges) + 1:
        return None
    counts = np.histogram(scores, bins=[-np.inf, *reference_edges, np.inf])[0]
    actual = np.clip(counts / counts.sum(), 1e-4, None)
    expected = np.clip(np.asarray(reference_shares, dtype=float), 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
