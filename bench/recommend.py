"""Recommendations: the top 20 listings for each of 100,000 investors over 10,000 open listings.

Data: the seeded synthetic investors and listings of `push.py`.

- **encode** (s): `ProfileMatrix.from_profiles` and `ListingMatrix.from_listings`, once.
- **ours** (s): `matching.vector.top_k_listings(profiles, listings, policy, k=20)`: per chunk of
  investors one float32 product ``X @ Y`` (score and every categorical rule as a penalty), the
  three threshold rules as integer comparisons, ``argpartition`` to the best 20 + margin, then the
  exact rules and exact scores on those candidates (rows that cannot be proven are recomputed
  exactly over all listings; their count is reported).
- **anchor** (s): the bare NumPy work of the same shape in the same chunks: a random float32
  ``(100,000 × F) @ (F × 10,000)`` product, F being the width ours builds, and
  ``argpartition`` top 20 of every row. Alternating with ours, same process.

Target: ratio = anchor time / our time >= 0.5. Last stdout line: JSON (value and anchor_value are
the throughputs in investors/s, so ratio = anchor time / our time).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import emit, log, machine, median
from bench.push import investors, listings


def bare(x: np.ndarray, y: np.ndarray, k: int, chunk: int) -> np.ndarray:
    out = np.empty((len(x), k), dtype=np.int64)
    for start in range(0, len(x), chunk):
        a = x[start : start + chunk] @ y
        out[start : start + chunk] = np.argpartition(a, a.shape[1] - k, axis=1)[:, a.shape[1] - k :]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--investors", type=int, default=100_000)
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from yunrong.matching import vector
    from yunrong.supervision.policy import EU_ECSP

    t0 = time.perf_counter()
    people = investors(args.investors, args.seed)
    items = listings(args.listings, args.seed + 1)
    rng = np.random.default_rng(args.seed + 2)
    sections = rng.choice(list("ABCDEFGHIJKLMNOPQRST"), args.investors)
    pushed = rng.integers(1, 4, args.investors)
    had = rng.random(args.investors) < 0.3  # 30 % were already pushed some listings of one section
    counts = [{str(s): int(c)} if h else {} for s, c, h in zip(sections, pushed, had, strict=True)]
    log(f"generated in {time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    pm = vector.ProfileMatrix.from_profiles(people, counts)
    lm = vector.ListingMatrix.from_listings(items)
    encode_s = time.perf_counter() - t0
    log(f"encoded {pm.n:,} investors and {lm.n:,} listings in {encode_s:.2f}s")
    del people, items
    features = vector.feature_count(pm, lm, EU_ECSP)
    x = rng.random((args.investors, features), dtype=np.float32)
    y = rng.random((features, args.listings), dtype=np.float32)
    log(f"F = {features}")
    ours, anchor = [], []
    stats: dict[str, float] = {}
    for i in range(args.repeat):
        a = time.perf_counter()
        bare(x, y, args.k, args.chunk)
        b = time.perf_counter()
        idx, scores = vector.top_k_listings(pm, lm, EU_ECSP, args.k, chunk=args.chunk, stats=stats)
        c = time.perf_counter()
        anchor.append(b - a)
        ours.append(c - b)
        log(f"run {i + 1}: ours {ours[-1]:.2f} s, anchor {anchor[-1]:.2f} s")
    found = (idx >= 0).sum(axis=1)
    log(
        f"median ours {median(ours):.2f} s, anchor {median(anchor):.2f} s; "
        f"{int(stats['fallback_rows'])} rows recomputed exactly; "
        f"investors with a full top {args.k}: {int((found == args.k).sum()):,}, with none: "
        f"{int((found == 0).sum()):,}; best score {np.nanmax(scores):.6f}"
    )
    emit(
        "recommend_top_k",
        args.investors / median(ours),
        f"investors/s (top {args.k} of {args.listings:,} listings, exact)",
        f"bare NumPy float32 ({args.investors:,}×F) @ (F×{args.listings:,}) + argpartition top {args.k}",
        args.investors / median(anchor),
        investors=args.investors,
        listings=args.listings,
        k=args.k,
        features=features,
        chunk=args.chunk,
        ours_s=round(median(ours), 3),
        anchor_s=round(median(anchor), 3),
        encode_s=round(encode_s, 2),
        fallback_rows=int(stats["fallback_rows"]),
        full_top_k=int((found == args.k).sum()),
        none_found=int((found == 0).sum()),
        paired_ratio_median=round(median([a / o for o, a in zip(ours, anchor, strict=True)]), 3),
        runs_ours=[round(v, 3) for v in ours],
        runs_anchor=[round(v, 3) for v in anchor],
        machine=machine(),
    )


if __name__ == "__main__":
    main()
