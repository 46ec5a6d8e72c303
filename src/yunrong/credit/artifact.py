"""Saving and loading a fitted credit model: one joblib file plus a JSON card beside it.

``save_artifact(model, path, card)`` writes ``path`` (joblib of the `CreditModel`, with its
optbinning, scikit-learn and LightGBM objects) and ``path.with_suffix(".json")``, the **card**:
name, creation time, training data sha256, rows, bad rate, features (name and kind), the decision
model, cross-validated metrics, library versions and the file's own sha256. The card is also stored
inside the joblib file, so a loaded artifact carries it. Load only artifacts you trust: joblib files
run code when loaded (the registry keeps them with their sha256).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from yunrong.credit.model import CreditModel
from yunrong.credit.tabular import Dataset

FORMAT = "yunrong-credit-model/1"


@dataclass
class Artifact:
    model: CreditModel
    card: dict[str, Any]


def versions() -> dict[str, str]:
    import lightgbm
    import optbinning
    import pandas
    import sklearn

    return {
        "optbinning": optbinning.__version__,
        "lightgbm": lightgbm.__version__,
        "scikit-learn": sklearn.__version__,
        "pandas": pandas.__version__,
    }


def make_card(
    model: CreditModel,
    data: Dataset,
    *,
    name: str,
    metrics: dict[str, dict[str, float]] | None = None,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "name": name,
        "created_at": (created_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "training_data": {
            "source": data.source,
            "sha256": data.sha256,
            "rows": data.rows,
            "bad_rate": round(data.bad_rate, 4),
            "target": data.target,
            "bad": data.bad,
        },
        "features": [{"name": c, "kind": "numeric"} for c in model.numeric]
        + [{"name": c, "kind": "categorical"} for c in model.categorical],
        "decision_model": model.decision,
        "scaling": {
            "pdo": model.scorecard.pdo,
            "base_points": model.scorecard.base_points,
            "base_odds": model.scorecard.base_odds,
        },
        "metrics": metrics or {},
        "versions": versions(),
    }


def save_artifact(model: CreditModel, path: Path, card: dict[str, Any]) -> dict[str, Any]:
    """Write the model and its card; return the card (with the file's sha256)."""
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({"format": FORMAT, "model": model, "card": card}, path, compress=3)
    card = {**card, "artifact_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "path": str(path)}
    path.with_suffix(".json").write_text(
        json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return card


def load_artifact(path: Path) -> Artifact:
    import joblib

    payload = joblib.load(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} artifact")
    return Artifact(model=payload["model"], card=payload["card"])
