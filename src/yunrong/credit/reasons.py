"""Reason codes and counterfactuals: pure functions over a fitted model and one row.

**Reason codes** come from the champion scorecard, whose score is a sum of points per feature. For
each feature, *points lost* = the most points that feature can give − the points this row got. The
reasons are the features that lost the most points (largest first, at most ``top``, only those that
lost any), each in plain words in English and Chinese, with the row's value and its bin. This is
the "points below maximum" method used for adverse-action notices.

**Counterfactual** — "what would move this enterprise up one grade": the smallest change to
*actionable* numeric features that brings the decision PD (the model's ``decision`` model, default
the ensemble) below the upper PD bound of the next better grade. Candidate changes move one feature
to the edge of another of its scorecard bins; every candidate is re-scored with the full model.
One change is preferred (the one moving across the fewest bins, then the lowest PD); failing that,
changes are combined greedily (largest PD reduction first, at most ``max_changes``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from yunrong.credit.grades import Grade, better, grade_of
from yunrong.credit.model import CreditModel
from yunrong.credit.scorecard import Scorecard


@dataclass(frozen=True, slots=True)
class Reason:
    code: str  # "R:<feature>"
    feature: str
    value: object
    bin: str
    points_lost: float
    text_en: str
    text_zh: str


@dataclass(frozen=True, slots=True)
class Change:
    feature: str
    current: object
    target: float
    text_en: str
    text_zh: str


@dataclass(frozen=True)
class Counterfactual:
    current_pd: float
    current_grade: str
    target_grade: str | None
    achievable: bool
    changes: list[Change] = field(default_factory=list)
    new_pd: float | None = None
    new_grade: str | None = None


def _labels(feature: str) -> tuple[str, str]:
    from yunrong.credit.features import FEATURES

    spec = FEATURES.get(feature)
    return (spec.label_en, spec.label_zh) if spec else (feature, feature)


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def as_frame(row: Mapping[str, object] | pd.Series | pd.DataFrame) -> pd.DataFrame:
    if isinstance(row, pd.DataFrame):
        return row.iloc[:1]
    return pd.DataFrame([dict(row)])


def top_reasons_batch(points: np.ndarray, max_points: np.ndarray, top: int = 3) -> np.ndarray:
    """Vectorised: (rows × top) feature indices of the largest points lost, −1 where none lost."""
    lost = max_points[None, :] - points
    k = min(top, lost.shape[1])
    order = np.argsort(-lost, axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(lost, order, axis=1)
    return np.where(chosen > 1e-9, order, -1)


def reasons(
    scorecard: Scorecard,
    row: Mapping[str, object] | pd.Series | pd.DataFrame,
    top: int = 3,
    bins: np.ndarray | None = None,
) -> list[Reason]:
    """The features that lowered this row's score the most, in plain words (both languages)."""
    frame = as_frame(row)
    bins = scorecard.bin_matrix(frame) if bins is None else bins
    points = scorecard.points_matrix(frame, bins)
    found = []
    for j in top_reasons_batch(points, scorecard.max_points, top)[0]:
        if j < 0:
            continue
        var = scorecard.variables[j]
        b = int(bins[0, j])
        label = var.labels[b] if b >= 0 else "unseen"
        value = frame.iloc[0][var.name]
        en, zh = _labels(var.name)
        lost = float(scorecard.max_points[j] - points[0, j])
        shown = _fmt(value)
        found.append(
            Reason(
                code=f"R:{var.name}",
                feature=var.name,
                value=value,
                bin=label,
                points_lost=round(lost, 1),
                text_en=f"{en} ({shown}) lowered the score by {lost:.0f} points",
                text_zh=f"{zh}（{shown if shown != 'missing' else '缺失'}）使评分降低 {lost:.0f} 分",
            )
        )
    return found


def _candidates(
    scorecard: Scorecard, frame: pd.DataFrame, actionable: set[str]
) -> list[tuple[str, float, int]]:
    """(feature, new value, bins moved) for every other bin of every actionable numeric feature."""
    out = []
    bins = scorecard.bin_matrix(frame)[0]
    for j, var in enumerate(scorecard.variables):
        if var.kind != "numeric" or var.name not in actionable:
            continue
        edges = [-math.inf, *map(float, var.splits), math.inf]
        here = int(bins[j])
        for b in range(var.n_bins):
            if b == here:
                continue
            lo, hi = edges[b], edges[b + 1]
            if here == var.missing_bin:
                value = lo if math.isfinite(lo) else (hi - 1 if math.isfinite(hi) else 0.0)
                moved = 1
            elif b > here:
                value, moved = lo, b - here
            else:
                value, moved = float(np.nextafter(hi, -math.inf)), here - b
            out.append((var.name, value, moved))
    return out


def _change(feature: str, current: object, target: float) -> Change:
    en, zh = _labels(feature)
    cur = _fmt(current)
    try:
        up = float(str(current)) < target
    except ValueError:
        up = True
    if cur == "missing":
        return Change(
            feature, current, target, f"report {en} (about {target:.4g})", f"提供{zh}（约 {target:.4g}）"
        )
    verb_en, verb_zh = ("raise", "提高") if up else ("lower", "降低")
    rel_en, rel_zh = ("at least", "至少") if up else ("below", "低于")
    return Change(
        feature,
        current,
        target,
        f"{verb_en} {en} from {cur} to {rel_en} {target:.4g}",
        f"将{zh}从 {cur} {verb_zh}到{rel_zh} {target:.4g}",
    )


def counterfactual(
    model: CreditModel,
    row: Mapping[str, object] | pd.Series | pd.DataFrame,
    *,
    actionable: list[str] | None = None,
    max_changes: int = 3,
) -> Counterfactual:
    """What would move this row up one grade (see the module docstring)."""
    from yunrong.credit.features import FEATURES

    frame = as_frame(row).reset_index(drop=True)
    if actionable is None:
        actionable = [f for f in model.numeric if f not in FEATURES or FEATURES[f].actionable]
    allowed = set(actionable)
    current_pd = float(model.predict_pd(frame)[0])
    grade: Grade = grade_of(current_pd)
    target = better(grade)
    if target is None:
        return Counterfactual(current_pd, grade.code, None, True, [], current_pd, grade.code)
    chosen: list[tuple[str, float]] = []
    working = frame.copy()
    pd_now = current_pd
    for _ in range(max_changes):
        cands = [
            c for c in _candidates(model.scorecard, working, allowed) if c[0] not in {f for f, _ in chosen}
        ]
        if not cands:
            break
        trial = pd.concat([working] * len(cands), ignore_index=True)
        for i, (feature, value, _moved) in enumerate(cands):
            trial.loc[i, feature] = value
        pds = model.predict_pd(trial)
        winners = [i for i in range(len(cands)) if pds[i] < target.pd_to]
        if winners:
            best = min(winners, key=lambda i: (cands[i][2], pds[i]))
            chosen.append((cands[best][0], cands[best][1]))
            pd_now = float(pds[best])
            changes = [_change(f, frame.loc[0, f], v) for f, v in chosen]
            return Counterfactual(
                current_pd, grade.code, target.code, True, changes, pd_now, grade_of(pd_now).code
            )
        best = int(np.argmin(pds))
        if pds[best] >= pd_now:
            break
        chosen.append((cands[best][0], cands[best][1]))
        working.loc[0, cands[best][0]] = cands[best][1]
        pd_now = float(pds[best])
    changes = [_change(f, frame.loc[0, f], v) for f, v in chosen]
    return Counterfactual(current_pd, grade.code, target.code, False, changes, pd_now, grade_of(pd_now).code)
