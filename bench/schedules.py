"""Repayment schedules: exact vectorised annuities against a bare float NumPy annuity kernel.

Data: ``--n`` loans (default 1 000 000), principals log-uniform from 10 000 to 10 000 000 yuan
(in fen), rates uniform 3 %..36 % in whole basis points, ``--term`` months (default 36).

- **ours** (schedules/s): `yunrong.servicing.schedules.annuity_batch` — the exact level payment
  (rounded half-even to the fen, near-ties recomputed in rational arithmetic), each month's
  interest ``balance × bp / 120 000`` rounded half-even in int64, principal = payment − interest,
  the last instalment absorbing the remainder, the clamp check; int64 principal and interest
  parts ``[n, term]``.
- **anchor** (schedules/s): the textbook kernel of the same shape in float64, no rounding:
  ``pmt = P·r / (1 − (1+r)^−n)``, then month by month ``interest = balance·r``,
  ``principal = pmt − interest``, ``balance −= principal``, written into ``[term, n]`` arrays with
  in-place ufuncs. Run over the same row blocks as ours (``--block``, the cache-sized blocks
  `annuity_batch` uses internally) and, as an extra figure, over the whole arrays at once.

Both kernels write into output buffers allocated once and reused by every run (the same number of
bytes each), so that the runs measure generating schedules, not the kernel zeroing fresh pages.

Each repetition runs the anchor(s) then ours; medians and the ratio ours/anchor (also the median
of the per-repetition ratios). Then ``--verify`` random rows of our output are compared with the
exact scalar generator `build_schedule(method="equal_instalment", day_count="30/360")` on start
dates with day 1..28: they must be identical. Targets: ≥ 1 000 000 schedules/s; ratio ≥ 0.3.
Last stdout line: JSON.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import emit, log, machine, median


def float_annuities(
    principals: npt.NDArray[np.int64],
    rates_bp: npt.NDArray[np.int64],
    term: int,
    block: int,
    out: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The anchor: textbook float annuity kernel, ``[term, n]`` principal and interest parts."""
    n = principals.size
    p = principals.astype(np.float64)
    r = rates_bp / 120_000.0
    pmt = p * r / (1.0 - (1.0 + r) ** -term)
    principal_out, interest_out = out
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        balance = p[lo:hi].copy()
        rate, pay = r[lo:hi], pmt[lo:hi]
        for k in range(term):
            interest = np.multiply(balance, rate, out=interest_out[k, lo:hi])
            principal = np.subtract(pay, interest, out=principal_out[k, lo:hi])
            balance -= principal
    return principal_out, interest_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--term", type=int, default=36)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--block", type=int, default=16_384)
    parser.add_argument("--verify", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from yunrong.servicing import DayCount, annuity_batch, build_schedule
    from yunrong.servicing.schedules import _BLOCK

    if args.block != _BLOCK:
        log(f"note: annuity_batch blocks {_BLOCK} rows internally; the anchor uses --block {args.block}")
    rng = np.random.default_rng(args.seed)
    principals = np.round(10 ** rng.uniform(6, 9, args.n)).astype(np.int64)  # 10^4..10^7 yuan in fen
    rates = rng.integers(300, 3_601, args.n).astype(np.int64)
    # Output buffers allocated and touched once, reused by every run (both kernels write the same
    # number of bytes): the runs measure generating schedules, not the kernel zeroing fresh pages.
    exact_out = (np.zeros((args.term, args.n), np.int64), np.zeros((args.term, args.n), np.int64))
    float_out = (np.zeros((args.term, args.n)), np.zeros((args.term, args.n)))
    annuity_batch(principals, rates, args.term, out=exact_out)  # warm up
    float_annuities(principals, rates, args.term, args.block, float_out)

    load_before = os.getloadavg()[0]
    ours, anchor, anchor_whole = [], [], []
    for i in range(args.repeat):
        a = time.perf_counter()
        float_annuities(principals, rates, args.term, args.block, float_out)
        b = time.perf_counter()
        float_annuities(principals, rates, args.term, args.n, float_out)
        c = time.perf_counter()
        principal_parts, interest_parts = annuity_batch(principals, rates, args.term, out=exact_out)
        d = time.perf_counter()
        anchor.append(args.n / (b - a))
        anchor_whole.append(args.n / (c - b))
        ours.append(args.n / (d - c))
        log(
            f"run {i + 1}: ours {ours[-1]:,.0f}/s, anchor (blocked) {anchor[-1]:,.0f}/s, "
            f"anchor (whole arrays) {anchor_whole[-1]:,.0f}/s"
        )

    assert (principal_parts.sum(axis=1) == principals).all()
    float_principal, _ = float_annuities(principals, rates, args.term, args.block, float_out)
    max_diff = float(np.abs(float_principal.T - principal_parts).max())
    checked = 0
    for row in rng.choice(args.n, min(args.verify, args.n), replace=False):
        start = date(2024, 1 + int(row) % 12, 1 + int(row) % 28)
        s = build_schedule(
            principal=int(principals[row]),
            annual_rate=Decimal(int(rates[row])) / 10_000,
            term_months=args.term,
            method="equal_instalment",
            start_date=start,
            day_count=DayCount.THIRTY_360,
        )
        if principal_parts[row].tolist() != [i.principal for i in s.instalments] or interest_parts[
            row
        ].tolist() != [i.interest for i in s.instalments]:
            raise SystemExit(f"row {row}: the vectorised schedule differs from build_schedule")
        checked += 1
    log(
        f"verified {checked} random rows identical to build_schedule; "
        f"the float kernel differs by up to {max_diff:.2f} fen"
    )
    emit(
        "schedules",
        median(ours),
        f"exact {args.term}-month annuity schedules/s (int64 principal + interest parts)",
        f"float64 textbook annuity kernel, same shape, blocks of {args.block} rows",
        median(anchor),
        n=args.n,
        term=args.term,
        paired_ratio_median=round(median([o / a for o, a in zip(ours, anchor, strict=True)]), 3),
        anchor_whole_arrays=round(median(anchor_whole), 1),
        ratio_vs_whole_arrays=round(median(ours) / median(anchor_whole), 3),
        runs_ours=[round(v) for v in ours],
        runs_anchor=[round(v) for v in anchor],
        runs_anchor_whole=[round(v) for v in anchor_whole],
        verified_rows=checked,
        float_kernel_max_diff_fen=round(max_diff, 2),
        load_average_1min=[round(load_before, 2), round(os.getloadavg()[0], 2)],
        machine=machine(),
    )


if __name__ == "__main__":
    main()
