from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yunrong.parties.codes import parse_industry
from yunrong.parties.size import SIZE_ORDER, SizeClass, classify, group_of

WAN = 1_000_000  # fen in one 万元
E, R, A = "employees", "revenue", "assets"
L, M, S, MI = SizeClass.LARGE, SizeClass.MEDIUM, SizeClass.SMALL, SizeClass.MICRO

# group → (a code in the group, metrics used, thresholds for large, medium, small), written out
# from 工信部联企业〔2011〕300号 independently of the module's own table.
STANDARD: dict[str, tuple[str, tuple[str, ...], tuple[tuple[int, ...], ...]]] = {
    "agriculture": ("A0111", (R,), ((20000,), (500,), (50,))),
    "industry": ("C1311", (E, R), ((1000, 40000), (300, 2000), (20, 300))),
    "construction": ("E4710", (R, A), ((80000, 80000), (6000, 5000), (300, 300))),
    "wholesale": ("F5111", (E, R), ((200, 40000), (20, 5000), (5, 1000))),
    "retail": ("F5211", (E, R), ((300, 20000), (50, 500), (10, 100))),
    "transport": ("G5410", (E, R), ((1000, 30000), (300, 3000), (20, 200))),
    "warehousing": ("G5920", (E, R), ((200, 30000), (100, 1000), (20, 100))),
    "postal": ("G6010", (E, R), ((1000, 30000), (300, 2000), (20, 100))),
    "accommodation": ("H6110", (E, R), ((300, 10000), (100, 2000), (10, 100))),
    "catering": ("H6210", (E, R), ((300, 10000), (100, 2000), (10, 100))),
    "information_transmission": ("I6311", (E, R), ((2000, 100000), (100, 1000), (10, 100))),
    "software_it": ("I6510", (E, R), ((300, 10000), (100, 1000), (10, 50))),
    "real_estate_development": ("K7010", (R, A), ((200000, 10000), (1000, 5000), (100, 2000))),
    "property_management": ("K7020", (E, R), ((1000, 5000), (300, 1000), (100, 500))),
    "leasing_business_services": ("L7111", (E, A), ((300, 120000), (100, 8000), (10, 100))),
    "other": ("M7310", (E,), ((300,), (100,), (10,))),
}


def _figures(metrics: tuple[str, ...], values: tuple[int, ...]) -> dict[str, int]:
    """Keyword arguments for classify; unused metrics get a huge value to show they do not count."""
    units = {E: 1, R: WAN, A: WAN}
    figures = {E: 10**9, R: 10**15, A: 10**15}
    for metric, value in zip(metrics, values, strict=True):
        figures[metric] = value * units[metric]
    return {"employees": figures[E], "revenue_minor": figures[R], "total_assets_minor": figures[A]}


def _boundary_cases() -> list[tuple[str, dict[str, int], SizeClass]]:
    cases: list[tuple[str, dict[str, int], SizeClass]] = []
    for group, (_code, metrics, tiers) in STANDARD.items():
        for (size, thresholds), lower in zip(zip((L, M, S), tiers, strict=True), (M, S, MI), strict=True):
            at = _figures(metrics, thresholds)
            cases.append((group, at, size))
            for metric in metrics:
                key = {E: "employees", R: "revenue_minor", A: "total_assets_minor"}[metric]
                below = dict(at)
                below[key] -= 1  # one employee less, one fen less
                cases.append((group, below, lower))
    return cases


@pytest.mark.parametrize(("group", "figures", "expected"), _boundary_cases())
def test_every_boundary_of_every_group(group: str, figures: dict[str, int], expected: SizeClass) -> None:
    decision = classify(parse_industry(STANDARD[group][0]), **figures)
    assert decision.group == group
    assert decision.size is expected


def test_every_group_is_covered() -> None:
    assert len(_boundary_cases()) == sum(3 * (1 + len(m)) for _, m, _ in STANDARD.values())


@pytest.mark.parametrize(
    ("code", "group"),
    [
        ("A05", "agriculture"),
        ("B0610", "industry"),
        ("D4411", "industry"),
        ("C43", "industry"),
        ("E50", "construction"),
        ("G58", "transport"),
        ("G5910", "transport"),  # 装卸搬运 counts with transport (2017 method)
        ("G59", "warehousing"),
        ("G5990", "warehousing"),
        ("G53", "other"),  # rail transport is outside the transport row ("不含铁路运输业")
        ("I64", "information_transmission"),
        ("K70", "other"),
        ("K701", "real_estate_development"),
        ("K702", "property_management"),
        ("K7030", "other"),
        ("L72", "leasing_business_services"),
        ("J6620", "other"),
        ("T97", "other"),
    ],
)
def test_groups_of_codes(code: str, group: str) -> None:
    assert group_of(parse_industry(code)) == group


def test_rule_texts_quote_the_standard_and_the_figures() -> None:
    micro = classify(parse_industry("C1311"), employees=15, revenue_minor=500 * WAN, total_assets_minor=0)
    assert micro.rule_en == "industry: employees 15 < 20 → micro"
    assert micro.rule_zh == "工业：从业人员15人 < 20人 → 微型企业"
    medium = classify(parse_industry("F52"), employees=60, revenue_minor=600 * WAN + 1, total_assets_minor=0)
    assert medium.size is M
    assert medium.rule_en == (
        "retail: employees 60 ≥ 50 and revenue 600.000001万元 ≥ 500万元, "
        "but employees 60 < 300 or revenue 600.000001万元 < 20000万元 → medium"
    )


@pytest.mark.parametrize("field", ["employees", "revenue_minor", "total_assets_minor"])
def test_negative_figures_are_refused(field: str) -> None:
    figures = {"employees": 1, "revenue_minor": 1, "total_assets_minor": 1, field: -1}
    with pytest.raises(ValueError, match="must not be negative"):
        classify(parse_industry("C13"), **figures)


codes = st.sampled_from([c for c, _, _ in STANDARD.values()] + ["G53", "K70", "G5910", "J66"])
figures = st.tuples(st.integers(0, 5000), st.integers(0, 3 * 10**11), st.integers(0, 3 * 10**12))


@given(codes, figures, figures)
def test_size_is_monotone_and_rules_quote_the_figures(
    code: str, a: tuple[int, int, int], b: tuple[int, int, int]
) -> None:
    industry = parse_industry(code)
    low = tuple(min(x, y) for x, y in zip(a, b, strict=True))
    high = tuple(max(x, y) for x, y in zip(a, b, strict=True))
    small = classify(industry, employees=low[0], revenue_minor=low[1], total_assets_minor=low[2])
    large = classify(industry, employees=high[0], revenue_minor=high[1], total_assets_minor=high[2])
    assert SIZE_ORDER.index(small.size) <= SIZE_ORDER.index(large.size)
    for decision, (employees, revenue, assets) in ((small, low), (large, high)):
        used = {
            "employees": str(employees),
            "revenue": _wan_text(revenue),
            "assets": _wan_text(assets),
        }
        quoted = [name for name, text in used.items() if f"{name} {text}" in decision.rule_en]
        assert quoted, decision.rule_en
        assert decision.rule_en.endswith(decision.size.value)


def _wan_text(fen: int) -> str:
    whole, rest = divmod(fen, WAN)
    return f"{whole}万元" if rest == 0 else f"{whole}.{rest:06d}".rstrip("0") + "万元"
