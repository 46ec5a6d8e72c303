"""Credit scoring speed: the whole pipeline against bare LightGBM ``predict`` on the same matrix.

Data: a synthetic world (`yunrong.credit.world`, no ../shared needed): the model is trained on its
training table, then a batch of ``--rows`` rows resampled from it is scored.

- **ours** (rows/s): `yunrong.credit.pipeline.score_batch` from the raw feature frame (strings for
  categories): encoding, scorecard bins/points/PD, LightGBM PD + calibration, ensemble, grade,
  price (vectorised, capped), top-3 reason codes.
- **anchor** (rows/s): ``booster.predict(M)`` of the same fitted LightGBM on the already-encoded
  numeric matrix ``M`` of the same rows — the model alone, nothing else.
- **single decision**: `yunrong.credit.pipeline.decide` on one row (PD, grade, Decimal price,
  reasons in both languages), ``--single`` calls; p50 and p99 latency in ms.

Target: ratio >= 0.5 (also reported: the median of the per-repetition ratios, which pairs
each of our runs with the anchor run just before it and so cancels most of the machine's
noise); single p99 <= 5 ms. Last stdout line: JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import emit, log, machine, median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--single", type=int, default=2000)
    parser.add_argument("--enterprises", type=int, default=8000)
    args = parser.parse_args()

    from yunrong.credit.model import fit_model
    from yunrong.credit.pipeline import decide, score_batch
    from yunrong.credit.tabular import check_table
    from yunrong.credit.world import generate

    t0 = time.perf_counter()
    world = generate(args.enterprises, 5, 0)
    raw = world.training.astype(str).replace({"nan": None})
    data = check_table(raw, target="default", bad="1")
    model = fit_model(data.X, data.y, numeric=data.numeric, categorical=data.categorical)
    log(f"trained on {data.rows} synthetic loans in {time.perf_counter() - t0:.1f}s")
    rng = np.random.default_rng(0)
    X = data.X.iloc[rng.integers(0, data.rows, args.rows)].reset_index(drop=True)
    M = model.gbm.encoder.matrix(X)
    booster = model.gbm.booster
    score_batch(model, X.head(1000))
    booster.predict(M[:1000])
    ours, anchor = [], []
    for i in range(args.repeat):
        a = time.perf_counter()
        booster.predict(M)
        b = time.perf_counter()
        result = score_batch(model, X)
        c = time.perf_counter()
        anchor.append(args.rows / (b - a))
        ours.append(args.rows / (c - b))
        log(f"run {i + 1}: ours {ours[-1]:,.0f} rows/s, anchor {anchor[-1]:,.0f} rows/s")
    assert len(result["pd"]) == args.rows
    rows = [X.iloc[[i]] for i in rng.integers(0, args.rows, args.single)]
    for row in rows[:50]:
        decide(model, row)
    latencies = []
    for row in rows:
        a = time.perf_counter()
        decide(model, row)
        latencies.append((time.perf_counter() - a) * 1000)
    p50, p99 = float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99))
    log(f"single decision: p50 {p50:.2f} ms, p99 {p99:.2f} ms over {args.single} calls")
    emit(
        "credit_speed",
        median(ours),
        "rows/s (features → PD → grade → price → reasons)",
        "bare LightGBM booster.predict on the encoded matrix",
        median(anchor),
        rows=args.rows,
        paired_ratio_median=round(median([o / a for o, a in zip(ours, anchor, strict=True)]), 3),
        runs_ours=[round(v) for v in ours],
        runs_anchor=[round(v) for v in anchor],
        single_p50_ms=round(p50, 3),
        single_p99_ms=round(p99, 3),
        declined_share=round(float(np.mean(result["declined"])), 4),
        machine=machine(),
    )


if __name__ == "__main__":
    main()
