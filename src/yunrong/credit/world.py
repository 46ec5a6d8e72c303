"""A synthetic SME world — **synthetic data, not real enterprises**, for the demo and the tests.

Nothing here describes a real company. The world is calibrated to three published facts about
Chinese small and micro enterprises quoted in the seed paper (``../shared/seed``, citing the
SAIC 2015 development report): they **live 2.9 years on average**, **about 30 % close each
year**, and **about a third (32 %) of closures are for lack of funds**.

Model (monthly steps, vectorised over enterprises, deterministic for a seed):

- Each enterprise has an industry, a region and a size class, founded at a random month of the
  window. Its long-run quality ``μ`` = industry + region + size effects + an individual draw.
- A **latent health** ``h`` starts below ``μ`` (young firms are fragile) and follows a
  mean-reverting random walk with an economy-wide shock: ``h ← h + κ(μ − h) + σ ε + shock``.
- Each month an enterprise may **close for lack of funds** with probability ``σ(a_f − b_f h)``
  (strongly health-driven) or **close for other reasons** (owner exit, relocation, …) with
  probability ``σ(a_o − b_o h)`` (weakly health-driven). ``a_f`` and ``a_o`` were tuned so that the
  calibration report matches the facts above (tests hold it to that).
- The monthly **financials** are noisy readings of health: revenue (size scale × seasonality ×
  ``exp(0.3 h)``), margin, debt ratio, current ratio, cash, the share of tax and utility payments
  on time, supplier payment delays.
- **Loans**: in any month with at least 6 months of history an enterprise applies with a small
  probability, higher when its health is poor (adverse selection). A loan **defaults** when, within
  12 months of the application, the enterprise closes for lack of funds or its health falls into
  distress (90+ days past due). Loans whose 12-month window passes the end of the world have an
  unknown outcome and are left out of the training table.

Calibration report: *mean lifetime* = enterprise-years lived / closures (the exponential estimate,
which counts enterprises still open at the end); *annual closure rate* = 1 − exp(−closures /
enterprise-years); *share of closures for lack of funds* = funds closures / closures.

Output folder: ``enterprises.csv``, ``monthly.csv``, ``loans.csv`` (with the default outcome),
``training.csv`` (one row per loan with a known outcome: ``id``, the features of
`yunrong.credit.features` as of the application date, the enterprise's industry/region/size, the
amount and term, and ``default`` = 1/0), ``calibration.json`` and a ``README.md`` that says the
data are synthetic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from yunrong.credit.features import compute_features

TARGETS = {"mean_lifetime_years": 2.9, "annual_closure_rate": 0.30, "funds_share": 0.32}

INDUSTRIES = {  # name: (quality effect, revenue scale in yuan/month, seasonality amplitude)
    "manufacturing": (0.10, 400_000, 0.10),
    "wholesale_retail": (0.00, 250_000, 0.20),
    "catering": (-0.35, 90_000, 0.15),
    "tech_services": (0.25, 150_000, 0.05),
    "construction": (-0.15, 500_000, 0.25),
    "agriculture": (-0.10, 120_000, 0.35),
    "logistics": (0.05, 200_000, 0.10),
}
REGIONS = {
    "Jiangsu": 0.15,
    "Zhejiang": 0.15,
    "Guangdong": 0.10,
    "Sichuan": -0.05,
    "Henan": -0.10,
    "Liaoning": -0.20,
}
SIZES = {"micro": (0.72, -0.10, 1.0), "small": (0.23, 0.20, 5.0), "medium": (0.05, 0.45, 20.0)}

# Health dynamics and hazards (tuned; see the module docstring).
KAPPA, SIGMA, START_GAP = 0.10, 0.22, 0.6
A_FUNDS, B_FUNDS = -5.42, 1.6
A_OTHER, B_OTHER = -3.88, 0.25
DISTRESS = -1.7
LOAN_PROB, LOAN_PROB_WEAK = 0.025, 0.05


@dataclass(frozen=True)
class Calibration:
    enterprises: int
    enterprise_years: float
    closures: int
    funds_closures: int
    mean_lifetime_years: float
    annual_closure_rate: float
    funds_share: float
    loans: int
    loans_known: int
    default_rate: float

    def as_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class World:
    enterprises: pd.DataFrame
    monthly: pd.DataFrame
    loans: pd.DataFrame
    training: pd.DataFrame
    calibration: Calibration
    seed: int
    start: date
    years: int


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)))


def _month_start(start: date, offset: int) -> date:
    k = start.year * 12 + start.month - 1 + offset
    return date(k // 12, k % 12 + 1, 1)


def generate(
    enterprises: int,
    years: int,
    seed: int,
    *,
    start: date = date(2019, 1, 1),
    progress: Callable[[int, int], None] | None = None,
) -> World:
    """Simulate the world (see the module docstring). ``progress(done, total)`` is called per month."""
    if enterprises < 1 or years < 1:
        raise ValueError("need at least one enterprise and one year")
    rng = np.random.default_rng(seed)
    n, months = enterprises, years * 12
    ind_names = list(INDUSTRIES)
    reg_names = list(REGIONS)
    size_names = list(SIZES)
    ind = rng.integers(0, len(ind_names), n)
    reg = rng.integers(0, len(reg_names), n)
    size = rng.choice(len(size_names), n, p=[SIZES[s][0] for s in size_names])
    ind_eff = np.array([INDUSTRIES[i][0] for i in ind_names])[ind]
    scale = (
        np.array([INDUSTRIES[i][1] for i in ind_names])[ind]
        * np.array([SIZES[s][2] for s in size_names])[size]
    )
    season_amp = np.array([INDUSTRIES[i][2] for i in ind_names])[ind]
    mu = (
        ind_eff
        + np.array([REGIONS[r] for r in reg_names])[reg]
        + np.array([SIZES[s][1] for s in size_names])[size]
    )
    mu = mu + rng.normal(0, 0.8, n)
    founded = rng.integers(0, max(months - 6, 1), n)
    health = mu - START_GAP + rng.normal(0, 0.5, n)
    alive = np.zeros(n, dtype=bool)
    closed_at = np.full(n, -1)
    reason = np.full(n, "", dtype=object)
    age = np.zeros(n, dtype=np.int64)
    phase = rng.uniform(0, 2 * np.pi, n)
    shock = 0.0
    rows: list[pd.DataFrame] = []
    loans: list[pd.DataFrame] = []
    health_hist = np.full((months, n), np.nan)
    for t in range(months):
        alive |= founded == t
        shock = 0.7 * shock + rng.normal(0, 0.015)
        health = health + KAPPA * (mu - health) + SIGMA * rng.normal(0, 1, n) + shock
        idx = np.flatnonzero(alive)
        h = health[idx]
        health_hist[t, idx] = h
        k = len(idx)
        season = 1 + season_amp[idx] * np.sin(2 * np.pi * t / 12 + phase[idx])
        revenue = scale[idx] * season * np.exp(0.3 * h + rng.normal(0, 0.15, k))
        margin = 0.04 + 0.05 * h + rng.normal(0, 0.04, k)
        profit = revenue * margin
        assets = scale[idx] * 6 * np.exp(0.1 * h + rng.normal(0, 0.05, k))
        debt_ratio = np.clip(0.55 - 0.12 * h + rng.normal(0, 0.08, k), 0.02, 1.6)
        current_assets = assets * np.clip(0.5 + rng.normal(0, 0.05, k), 0.2, 0.9)
        cur_ratio = np.clip(1.3 + 0.35 * h + rng.normal(0, 0.25, k), 0.15, 5)
        cash = np.maximum(0, revenue * (1.0 + 0.8 * h + rng.normal(0, 0.4, k)))
        tax_due = rng.uniform(0, 1, k) < np.where(size[idx] == 0, 1 / 3, 1.0)  # micro: quarterly
        tax_on_time = np.where(
            tax_due, (rng.uniform(0, 1, k) < _sigmoid(2.2 + 1.4 * h)).astype(float), np.nan
        )
        utility_on_time = (rng.uniform(0, 1, k) < _sigmoid(2.8 + 1.1 * h)).astype(float)
        days_late = np.maximum(0, 10 - 8 * h + rng.normal(0, 6, k))
        rows.append(
            pd.DataFrame(
                {
                    "enterprise_id": idx,
                    "t": t,
                    "revenue": revenue.round(0),
                    "costs": (revenue - profit).round(0),
                    "profit": profit.round(0),
                    "total_assets": assets.round(0),
                    "total_debt": (assets * debt_ratio).round(0),
                    "current_assets": current_assets.round(0),
                    "current_liabilities": (current_assets / cur_ratio).round(0),
                    "cash": cash.round(0),
                    "tax_on_time": tax_on_time,
                    "utility_on_time": utility_on_time,
                    "supplier_days_late": days_late.round(1),
                }
            )
        )
        apply = (age[idx] >= 6) & (rng.uniform(0, 1, k) < np.where(h < 0, LOAN_PROB_WEAK, LOAN_PROB))
        if apply.any():
            a = idx[apply]
            amount = (scale[a] * rng.uniform(0.5, 3.0, len(a)) / 1000).round(0) * 1000
            loans.append(
                pd.DataFrame(
                    {
                        "enterprise_id": a,
                        "t": t,
                        "amount": amount,
                        "term_months": rng.choice([6, 12, 24], len(a)),
                    }
                )
            )
        funds = rng.uniform(0, 1, k) < _sigmoid(A_FUNDS - B_FUNDS * h)
        other = ~funds & (rng.uniform(0, 1, k) < _sigmoid(A_OTHER - B_OTHER * h))
        closing = idx[funds | other]
        reason[idx[funds]] = "lack_of_funds"
        reason[idx[other]] = "other"
        closed_at[closing] = t
        alive[closing] = False
        age[idx] += 1
        if progress is not None:
            progress(t + 1, months)
    monthly = pd.concat(rows, ignore_index=True)
    lived = np.where(closed_at >= 0, closed_at + 1, months) - founded
    exposure = float(np.clip(lived, 0, None).sum()) / 12
    closures = int((closed_at >= 0).sum())
    funds_closures = int((reason == "lack_of_funds").sum())
    ent_ids = np.array([f"E{seed:03d}-{i:06d}" for i in range(n)])
    ent = pd.DataFrame(
        {
            "enterprise_id": ent_ids,
            "industry": np.array(ind_names)[ind],
            "region": np.array(reg_names)[reg],
            "size": np.array(size_names)[size],
            "founded": [_month_start(start, int(f)).isoformat() for f in founded],
            "closed": [_month_start(start, int(c)).isoformat() if c >= 0 else "" for c in closed_at],
            "closure_reason": reason,
        }
    )
    month_dates = np.array([_month_start(start, t).isoformat() for t in range(months)])
    monthly.insert(1, "month", month_dates[monthly.pop("t").to_numpy()])
    monthly["enterprise_id"] = ent_ids[monthly["enterprise_id"].to_numpy()]
    loan = (
        pd.concat(loans, ignore_index=True)
        if loans
        else pd.DataFrame(columns=["enterprise_id", "t", "amount", "term_months"])
    )
    ent_idx = loan["enterprise_id"].to_numpy(dtype=np.int64)
    applied = loan["t"].to_numpy(dtype=np.int64)
    defaulted = np.zeros(len(loan), dtype=bool)
    default_t = np.full(len(loan), -1)
    for w in range(1, 13):  # months after the application month (it is a month's start)
        tt = applied + w - 1
        ok = tt < months
        hh = np.full(len(loan), np.nan)
        hh[ok] = health_hist[tt[ok], ent_idx[ok]]
        funds_close = (closed_at[ent_idx] == tt) & (reason[ent_idx] == "lack_of_funds")
        hit = ~defaulted & ok & ((hh < DISTRESS) | funds_close)
        default_t[hit] = tt[hit]
        defaulted |= hit
    known = applied + 12 <= months
    loans_df = pd.DataFrame(
        {
            "loan_id": [f"L{seed:03d}-{i:07d}" for i in range(len(loan))],
            "enterprise_id": ent_ids[ent_idx],
            "applied_on": [_month_start(start, int(t)).isoformat() for t in applied],
            "amount": loan["amount"].to_numpy(dtype=float),
            "term_months": loan["term_months"].to_numpy(dtype=np.int64),
            "outcome_known": known.astype(int),
            "defaulted": np.where(known | defaulted, defaulted.astype(int), -1),
            "default_month": [_month_start(start, int(t)).isoformat() if t >= 0 else "" for t in default_t],
        }
    )
    training = training_table(ent, monthly, loans_df, seed=seed)
    calibration = Calibration(
        enterprises=n,
        enterprise_years=round(exposure, 2),
        closures=closures,
        funds_closures=funds_closures,
        mean_lifetime_years=exposure / closures if closures else float("inf"),
        annual_closure_rate=1 - float(np.exp(-closures / exposure)) if exposure else 0.0,
        funds_share=funds_closures / closures if closures else 0.0,
        loans=len(loans_df),
        loans_known=int(known.sum()),
        default_rate=float(training["default"].mean()) if len(training) else 0.0,
    )
    return World(ent, monthly, loans_df, training, calibration, seed, start, years)


def training_table(
    enterprises: pd.DataFrame, monthly: pd.DataFrame, loans: pd.DataFrame, *, seed: int = 0
) -> pd.DataFrame:
    """One row per loan with a known outcome: id, features as of the application, target ``default``."""
    known = loans[loans["outcome_known"] == 1].reset_index(drop=True)
    rng = np.random.default_rng(seed + 1)
    requests = pd.DataFrame({"enterprise_id": known["enterprise_id"], "as_of": known["applied_on"]})
    # Attestation placeholders: better-kept books get more of their figures attested.
    feats = compute_features(monthly, requests)
    quality = (feats["tax_on_time_12m"].fillna(0.8) - 0.8) * 2
    requests["attestation_coverage"] = np.clip(rng.beta(4, 3, len(known)) + 0.15 * quality, 0, 1).round(2)
    requests["attestation_age_days"] = rng.exponential(90, len(known)).round(0)
    feats = compute_features(monthly, requests)
    static = enterprises.set_index("enterprise_id").loc[
        known["enterprise_id"], ["industry", "region", "size"]
    ]
    table = pd.concat(
        [
            pd.DataFrame({"id": known["loan_id"]}),
            feats.reset_index(drop=True).round(4),
            static.reset_index(drop=True),
            known[["amount", "term_months"]],
            pd.DataFrame({"default": known["defaulted"].astype(int)}),
        ],
        axis=1,
    )
    return table


README = """# Synthetic SME world (not real data)

Generated by `yunrong world generate --enterprises {n} --years {years} --seed {seed}` (start {start}).
Every enterprise, figure and loan in this folder is **synthetic**: simulated by
`yunrong.credit.world`, calibrated to published averages for Chinese small and micro enterprises
(mean life 2.9 years, ~30 % closing each year, ~32 % of closures for lack of funds). Do not treat
it as a description of any real company.

Files: enterprises.csv, monthly.csv, loans.csv (defaulted: 1/0, -1 = outcome not yet known),
training.csv (features as of each application + `default`), calibration.json.
"""


def write(world: World, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, frame in (
        ("enterprises.csv", world.enterprises),
        ("monthly.csv", world.monthly),
        ("loans.csv", world.loans),
        ("training.csv", world.training),
    ):
        path = folder / name
        frame.to_csv(path, index=False, lineterminator="\n")
        paths.append(path)
    cal = folder / "calibration.json"
    cal.write_text(
        json.dumps({"synthetic": True, "targets": TARGETS, **world.calibration.as_dict()}, indent=2) + "\n",
        encoding="utf-8",
    )
    readme = folder / "README.md"
    readme.write_text(
        README.format(n=len(world.enterprises), years=world.years, seed=world.seed, start=world.start),
        encoding="utf-8",
    )
    return [*paths, cal, readme]
