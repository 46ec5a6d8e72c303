"""Credit model quality on the public data sets in ../shared/data (this benchmark reads ../shared).

For each file and each fold seed: stratified 5-fold cross-validation of our models
(`yunrong.credit.evaluate.cross_validate`: scorecard, gbm, ensemble) and, on the *same folds*,
the anchor: optbinning's default ``BinningProcess`` + ``Scorecard`` with scikit-learn's
``LogisticRegression()`` (every column, string columns declared categorical, nothing else set).
AUC is computed on the pooled out-of-fold predictions.

Ours = our best model's AUC (the best of scorecard, gbm, ensemble, as ``yunrong credit evaluate``
reports it). Targets: ours / anchor >= 1.0 on every file; our scorecard within 2.5 % of our best.
Last stdout line: JSON with the smallest ratio over the files (AUC × 1000 as value).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import emit, log, machine, median

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = {
    "credit_data.csv": ("Status", "bad"),
    "lending_club.csv": ("Class", "bad"),
    "uci_credit_card_sample.csv": ("default", "1"),
}


def anchor_oof(data, folds: int, seed: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    from optbinning import BinningProcess, Scorecard
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    X = data.X.copy()
    for c in data.categorical:
        X[c] = X[c].astype(object)
    y = data.y.astype(int)
    oof = np.zeros(len(y))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        process = BinningProcess(list(X.columns), categorical_variables=list(data.categorical))
        card = Scorecard(binning_process=process, estimator=LogisticRegression())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            card.fit(X.iloc[train], y[train])
            oof[test] = card.predict_proba(X.iloc[test])[:, 1]
    return oof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", default="0,1,2", help="fold seeds, comma-separated")
    args = parser.parse_args()

    from yunrong.credit.evaluate import auc, cross_validate
    from yunrong.credit.tabular import load_dataset

    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    summary = {}
    for name, (target, bad) in FILES.items():
        data = load_dataset(args.data / name, target=target, bad=bad)
        runs = []
        for seed in seeds:
            t0 = time.perf_counter()
            ev = cross_validate(data, folds=args.folds, seed=seed)
            t1 = time.perf_counter()
            anchor = auc(data.y, anchor_oof(data, args.folds, seed))
            t2 = time.perf_counter()
            models = ev.models
            best = ev.best
            run = {
                "seed": seed,
                "scorecard": models["scorecard"]["auc"],
                "gbm": models["gbm"]["auc"],
                "ensemble": models["ensemble"]["auc"],
                "best": best,
                "ours": models[best]["auc"],
                "anchor": round(anchor, 4),
                "seconds_ours": round(t1 - t0, 1),
                "seconds_anchor": round(t2 - t1, 1),
            }
            runs.append(run)
            log(f"{name} seed {seed}: {run}")
        ours = median([r["ours"] for r in runs])
        anchor_auc = median([r["anchor"] for r in runs])
        card = median([r["scorecard"] for r in runs])
        summary[name] = {
            "ours": round(ours, 4),
            "anchor": round(anchor_auc, 4),
            "ratio": round(ours / anchor_auc, 4),
            "scorecard": round(card, 4),
            "gbm": round(median([r["gbm"] for r in runs]), 4),
            "ensemble": round(median([r["ensemble"] for r in runs]), 4),
            "scorecard_gap": round(1 - card / ours, 4),
            "runs": runs,
        }
        log(f"{name}: {summary[name]}")
        emit(
            f"credit_quality:{name}",
            ours * 1000,
            "AUC x 1000",
            "optbinning default BinningProcess+Scorecard (LogisticRegression), same folds",
            anchor_auc * 1000,
            scorecard_gap=summary[name]["scorecard_gap"],
        )
    worst = min(summary, key=lambda n: summary[n]["ratio"])
    emit(
        "credit_quality",
        summary[worst]["ours"] * 1000,
        "AUC x 1000 (file with the smallest ratio)",
        "optbinning default BinningProcess+Scorecard (LogisticRegression), same folds",
        summary[worst]["anchor"] * 1000,
        worst_file=worst,
        files={n: {k: v for k, v in s.items() if k != "runs"} for n, s in summary.items()},
        max_scorecard_gap=max(s["scorecard_gap"] for s in summary.values()),
        seeds=seeds,
        folds=args.folds,
        seconds=round(time.perf_counter() - started, 1),
        machine=machine(),
    )


if __name__ == "__main__":
    main()
