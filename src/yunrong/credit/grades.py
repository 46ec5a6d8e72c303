"""PD → grade. Nine grades on the familiar rating-agency letters, by 12-month PD bands.

| grade | PD from (incl.) | PD to (excl.) | plain words |
|---|---|---|---|
| AAA | 0 % | 0.25 % | exceptionally strong |
| AA | 0.25 % | 0.5 % | very strong |
| A | 0.5 % | 1 % | strong |
| BBB | 1 % | 2 % | adequate |
| BB | 2 % | 4 % | some weakness |
| B | 4 % | 8 % | weak |
| CCC | 8 % | 15 % | very weak |
| CC | 15 % | 30 % | highly vulnerable |
| C | 30 % | 100 % | near default |

Each band's upper bound roughly doubles the one before, as agency default studies do. A PD exactly
on a boundary takes the worse grade. The map is monotone: a higher PD never gets a better grade
(tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Grade:
    code: str
    rank: int  # 0 = best
    pd_from: float
    pd_to: float
    name_en: str
    name_zh: str


_BANDS = [
    ("AAA", 0.0025, "exceptionally strong", "极强"),
    ("AA", 0.005, "very strong", "很强"),
    ("A", 0.01, "strong", "强"),
    ("BBB", 0.02, "adequate", "较好"),
    ("BB", 0.04, "some weakness", "一般"),
    ("B", 0.08, "weak", "较弱"),
    ("CCC", 0.15, "very weak", "弱"),
    ("CC", 0.30, "highly vulnerable", "很弱"),
    ("C", 1.0, "near default", "接近违约"),
]

GRADES: tuple[Grade, ...] = tuple(
    Grade(code, rank, _BANDS[rank - 1][1] if rank else 0.0, upper, en, zh)
    for rank, (code, upper, en, zh) in enumerate(_BANDS)
)
UPPER_BOUNDS = np.array([g.pd_to for g in GRADES[:-1]])
BY_CODE = {g.code: g for g in GRADES}


def grade_rank(pd: np.ndarray) -> np.ndarray:
    """Vectorised: the rank (0 = AAA … 8 = C) of each PD."""
    return np.searchsorted(UPPER_BOUNDS, np.asarray(pd, dtype=float), side="right")


def grade_of(pd: float) -> Grade:
    if not 0.0 <= pd <= 1.0:
        raise ValueError(f"PD must be in [0, 1], got {pd}")
    return GRADES[int(grade_rank(np.array([pd]))[0])]


def better(grade: Grade) -> Grade | None:
    """The next better grade, or None for the best."""
    return GRADES[grade.rank - 1] if grade.rank > 0 else None
