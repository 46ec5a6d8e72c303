"""Enterprise size class under the official SME size standard.

Source: 工信部联企业〔2011〕300号《中小企业划型标准规定》, as restated in the National Bureau of
Statistics' 《统计上大中小微型企业划分办法（2017）》. In the standard "以上" includes the number and
"以下" excludes it, so a class is reached when every figure is *at least* its threshold. An
enterprise is large when it meets every large threshold, else medium when it meets every medium
threshold, else small when it meets every small threshold, else micro (one figure below the small
threshold suffices, e.g. "从业人员20人以下或营业收入300万元以下的为微型企业").

Groups follow the 2017 statistical method's industry combinations, keyed to GB/T 4754-2017:

- transport covers G54–G58 and loading/unloading (装卸搬运, G591); rail transport (G53) is not
  covered by the transport row ("不含铁路运输业") and falls under ``other``;
- warehousing is G59 except G591 (a bare "G59" is taken as warehousing);
- real estate development is K701, property management K702; other real-estate codes and a bare
  "K70" fall under ``other``;
- finance (J) has its own standard (《金融业企业划型标准规定》) not implemented here and falls
  under ``other``, as do every section not listed.

Revenue (营业收入) and total assets (资产总额) are CNY minor units (fen); 1 万元 = 1,000,000 fen.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from yunrong.parties.codes import IndustryCode

#: Fen in one 万元 (ten thousand yuan).
FEN_PER_WAN = 1_000_000


class SizeClass(StrEnum):
    MICRO = "micro"
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


#: Order from smallest to largest, for comparisons.
SIZE_ORDER: tuple[SizeClass, ...] = (SizeClass.MICRO, SizeClass.SMALL, SizeClass.MEDIUM, SizeClass.LARGE)

_SIZE_ZH = {
    SizeClass.MICRO: "微型企业",
    SizeClass.SMALL: "小型企业",
    SizeClass.MEDIUM: "中型企业",
    SizeClass.LARGE: "大型企业",
}


class Metric(StrEnum):
    EMPLOYEES = "employees"
    REVENUE = "revenue"
    ASSETS = "assets"


_METRIC_ZH = {Metric.EMPLOYEES: "从业人员", Metric.REVENUE: "营业收入", Metric.ASSETS: "资产总额"}


@dataclass(frozen=True, slots=True)
class SizeRule:
    """One row of the standard: the metrics it uses and the thresholds of each tier.

    Thresholds are people for employees and 万元 for revenue and assets, in the order of
    ``metrics``; ``tiers`` runs large, medium, small.
    """

    group: str
    name_en: str
    name_zh: str
    metrics: tuple[Metric, ...]
    tiers: tuple[tuple[SizeClass, tuple[int, ...]], ...]


def _rule(
    group: str, name_en: str, name_zh: str, metrics: tuple[Metric, ...], *tiers: tuple[int, ...]
) -> SizeRule:
    classes = (SizeClass.LARGE, SizeClass.MEDIUM, SizeClass.SMALL)
    return SizeRule(group, name_en, name_zh, metrics, tuple(zip(classes, tiers, strict=True)))


_ER = (Metric.EMPLOYEES, Metric.REVENUE)
_RA = (Metric.REVENUE, Metric.ASSETS)

#: Every group of the standard, keyed by group name.
RULES: dict[str, SizeRule] = {
    r.group: r
    for r in (
        _rule("agriculture", "agriculture", "农、林、牧、渔业", (Metric.REVENUE,), (20000,), (500,), (50,)),
        _rule("industry", "industry", "工业", _ER, (1000, 40000), (300, 2000), (20, 300)),
        _rule("construction", "construction", "建筑业", _RA, (80000, 80000), (6000, 5000), (300, 300)),
        _rule("wholesale", "wholesale", "批发业", _ER, (200, 40000), (20, 5000), (5, 1000)),
        _rule("retail", "retail", "零售业", _ER, (300, 20000), (50, 500), (10, 100)),
        _rule("transport", "transport", "交通运输业", _ER, (1000, 30000), (300, 3000), (20, 200)),
        _rule("warehousing", "warehousing", "仓储业", _ER, (200, 30000), (100, 1000), (20, 100)),
        _rule("postal", "postal", "邮政业", _ER, (1000, 30000), (300, 2000), (20, 100)),
        _rule("accommodation", "accommodation", "住宿业", _ER, (300, 10000), (100, 2000), (10, 100)),
        _rule("catering", "catering", "餐饮业", _ER, (300, 10000), (100, 2000), (10, 100)),
        _rule(
            "information_transmission",
            "information transmission",
            "信息传输业",
            _ER,
            (2000, 100000),
            (100, 1000),
            (10, 100),
        ),
        _rule(
            "software_it",
            "software and IT services",
            "软件和信息技术服务业",
            _ER,
            (300, 10000),
            (100, 1000),
            (10, 50),
        ),
        _rule(
            "real_estate_development",
            "real estate development",
            "房地产开发经营",
            _RA,
            (200000, 10000),
            (1000, 5000),
            (100, 2000),
        ),
        _rule(
            "property_management",
            "property management",
            "物业管理",
            _ER,
            (1000, 5000),
            (300, 1000),
            (100, 500),
        ),
        _rule(
            "leasing_business_services",
            "leasing and business services",
            "租赁和商务服务业",
            (Metric.EMPLOYEES, Metric.ASSETS),
            (300, 120000),
            (100, 8000),
            (10, 100),
        ),
        _rule("other", "other (not listed)", "其他未列明行业", (Metric.EMPLOYEES,), (300,), (100,), (10,)),
    )
}

_DIVISION_GROUPS: dict[str, str] = {
    "51": "wholesale",
    "52": "retail",
    "54": "transport",
    "55": "transport",
    "56": "transport",
    "57": "transport",
    "58": "transport",
    "59": "warehousing",
    "60": "postal",
    "61": "accommodation",
    "62": "catering",
    "63": "information_transmission",
    "64": "information_transmission",
    "65": "software_it",
    "71": "leasing_business_services",
    "72": "leasing_business_services",
}
_SECTION_GROUPS: dict[str, str] = {
    "A": "agriculture",
    "B": "industry",
    "C": "industry",
    "D": "industry",
    "E": "construction",
}


def group_of(industry: IndustryCode) -> str:
    """The group of the standard that covers an industry code (see the module notes)."""
    if industry.section in _SECTION_GROUPS:
        return _SECTION_GROUPS[industry.section]
    digits = industry.digits
    if digits.startswith("591"):  # 装卸搬运 counts with transport in the 2017 method
        return "transport"
    if digits.startswith("701"):
        return "real_estate_development"
    if digits.startswith("702"):
        return "property_management"
    return _DIVISION_GROUPS.get(industry.division, "other")


@dataclass(frozen=True, slots=True)
class SizeDecision:
    """The size class, the group whose row decided it, and that row's sentence with the figures."""

    size: SizeClass
    group: str
    rule_en: str
    rule_zh: str


def _wan(fen: int) -> str:
    """Fen as 万元 written exactly, e.g. 2_500_000_000 → "2500", 299_999_999 → "299.999999"."""
    return f"{(Decimal(fen) / FEN_PER_WAN).normalize():f}"


def _figure_en(metric: Metric, value: int) -> str:
    return str(value) if metric is Metric.EMPLOYEES else f"{_wan(value)}万元"


def _threshold_en(metric: Metric, threshold: int) -> str:
    return str(threshold) if metric is Metric.EMPLOYEES else f"{threshold}万元"


def _figure_zh(metric: Metric, value: int) -> str:
    return f"{value}人" if metric is Metric.EMPLOYEES else f"{_wan(value)}万元"


def _threshold_zh(metric: Metric, threshold: int) -> str:
    return f"{threshold}人" if metric is Metric.EMPLOYEES else f"{threshold}万元"


def _scaled(metric: Metric, threshold: int) -> int:
    return threshold if metric is Metric.EMPLOYEES else threshold * FEN_PER_WAN


def classify(
    industry: IndustryCode, *, employees: int, revenue_minor: int, total_assets_minor: int
) -> SizeDecision:
    """Size class of an enterprise; ValueError on negative figures.

    ``rule_en``/``rule_zh`` quote the decisive comparison with the enterprise's figures, e.g.
    "industry: employees 15 < 20 → micro".
    """
    for name, value in (
        ("employees", employees),
        ("revenue_minor", revenue_minor),
        ("total_assets_minor", total_assets_minor),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer")
        if value < 0:
            raise ValueError(f"{name} must not be negative (got {value})")
    rule = RULES[group_of(industry)]
    figures = {Metric.EMPLOYEES: employees, Metric.REVENUE: revenue_minor, Metric.ASSETS: total_assets_minor}

    last_failed: list[tuple[Metric, int]] = []
    for size, thresholds in rule.tiers:
        pairs = list(zip(rule.metrics, thresholds, strict=True))
        failed = [(m, t) for m, t in pairs if figures[m] < _scaled(m, t)]
        if not failed:
            met_en = " and ".join(
                f"{m.value} {_figure_en(m, figures[m])} ≥ {_threshold_en(m, t)}" for m, t in pairs
            )
            met_zh = "且".join(
                f"{_METRIC_ZH[m]}{_figure_zh(m, figures[m])} ≥ {_threshold_zh(m, t)}" for m, t in pairs
            )
            below_en, below_zh = _below(last_failed, figures)
            return SizeDecision(
                size,
                rule.group,
                f"{rule.name_en}: {met_en}{below_en} → {size.value}",
                f"{rule.name_zh}：{met_zh}{below_zh} → {_SIZE_ZH[size]}",
            )
        last_failed = failed
    fail_en = " or ".join(
        f"{m.value} {_figure_en(m, figures[m])} < {_threshold_en(m, t)}" for m, t in last_failed
    )
    fail_zh = "或".join(
        f"{_METRIC_ZH[m]}{_figure_zh(m, figures[m])} < {_threshold_zh(m, t)}" for m, t in last_failed
    )
    return SizeDecision(
        SizeClass.MICRO,
        rule.group,
        f"{rule.name_en}: {fail_en} → {SizeClass.MICRO.value}",
        f"{rule.name_zh}：{fail_zh} → {_SIZE_ZH[SizeClass.MICRO]}",
    )


def _below(failed: list[tuple[Metric, int]], figures: dict[Metric, int]) -> tuple[str, str]:
    """Why the next larger class was not reached (empty for large)."""
    if not failed:
        return "", ""
    en = " or ".join(f"{m.value} {_figure_en(m, figures[m])} < {_threshold_en(m, t)}" for m, t in failed)
    zh = "或".join(f"{_METRIC_ZH[m]}{_figure_zh(m, figures[m])} < {_threshold_zh(m, t)}" for m, t in failed)
    return f", but {en}", f"，但{zh}"
