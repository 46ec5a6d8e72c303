"""Investor risk-tolerance questionnaire and the risk level it gives.

Modelled on the practice under the CSRC's 《证券期货投资者适当性管理办法》: ten questions, each
worth 0–10 points, so the total runs 0..100. The total maps to a level C1 (most conservative)
to C5 (most aggressive), and a level may buy products rated up to the same R level:

====== ============ ========================= ====================
level  score band   profile                   max product risk
====== ============ ========================= ====================
C1     0–20         conservative (保守型)      R1
C2     21–40        cautious (谨慎型)          R2
C3     41–60        balanced (稳健型)          R3
C4     61–80        growth (积极型)            R4
C5     81–100       aggressive (激进型)        R5
====== ============ ========================= ====================

Later work maps loan grades to product risk ratings R1–R5 and offers an investor only the
products with ``rating <= max_product_risk(level)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Option:
    key: str
    text_en: str
    text_zh: str
    score: int


@dataclass(frozen=True, slots=True)
class Question:
    key: str
    text_en: str
    text_zh: str
    options: tuple[Option, ...]

    def option(self, key: str) -> Option | None:
        return next((o for o in self.options if o.key == key), None)

    @property
    def max_score(self) -> int:
        return max(o.score for o in self.options)


def _q(key: str, text_en: str, text_zh: str, *options: tuple[str, str, str, int]) -> Question:
    return Question(key, text_en, text_zh, tuple(Option(*o) for o in options))


QUESTIONS: tuple[Question, ...] = (
    _q(
        "age",
        "What is your age?",
        "您的年龄是？",
        ("over_65", "Over 65", "65岁以上", 0),
        ("56_65", "56 to 65", "56–65岁", 3),
        ("18_25", "18 to 25", "18–25岁", 6),
        ("46_55", "46 to 55", "46–55岁", 8),
        ("26_45", "26 to 45", "26–45岁", 10),
    ),
    _q(
        "experience",
        "How many years have you invested in products other than deposits (funds, bonds, shares, loans)?",
        "您投资存款以外的金融产品（基金、债券、股票、借贷等）有多少年？",
        ("none", "None", "没有经验", 0),
        ("under_2", "Less than 2 years", "2年以下", 3),
        ("2_5", "2 to 5 years", "2–5年", 6),
        ("5_10", "5 to 10 years", "5–10年", 8),
        ("over_10", "More than 10 years", "10年以上", 10),
    ),
    _q(
        "credit_knowledge",
        "Which describes your knowledge of lending to businesses and of credit risk?",
        "您对企业借贷及信用风险的了解程度是？",
        ("none", "I know nothing about it", "完全不了解", 0),
        ("basic", "I know a borrower may repay late or not at all", "知道借款人可能逾期或不还款", 4),
        ("good", "I understand grades, collateral and recovery rates", "了解信用评级、担保和回收率", 7),
        ("expert", "I have analysed credit professionally", "有专业信用分析经验", 10),
    ),
    _q(
        "share_of_assets",
        "What share of your financial assets do you intend to invest here?",
        "您计划在本平台投资的金额占您金融资产的比例是？",
        ("over_50", "More than 50%", "50%以上", 0),
        ("30_50", "30% to 50%", "30%–50%", 3),
        ("10_30", "10% to 30%", "10%–30%", 7),
        ("under_10", "Less than 10%", "10%以下", 10),
    ),
    _q(
        "income_stability",
        "How stable is your income over the coming years?",
        "您未来几年的收入来源是否稳定？",
        ("none", "No regular income", "无固定收入", 0),
        ("unstable", "Irregular income", "收入不稳定", 3),
        ("stable", "Stable salary or business income", "工资或经营收入稳定", 7),
        ("very_stable", "Stable and growing, with other sources besides", "稳定增长且有其他收入来源", 10),
    ),
    _q(
        "loss_tolerance",
        "What loss of the amount invested could you bear?",
        "您能承受的最大投资损失是？",
        ("none", "No loss at all", "不能承受任何损失", 0),
        ("under_10", "Up to 10%", "10%以内", 3),
        ("10_30", "10% to 30%", "10%–30%", 6),
        ("30_50", "30% to 50%", "30%–50%", 8),
        ("over_50", "More than 50%", "50%以上", 10),
    ),
    _q(
        "horizon",
        "How long could you leave the money invested?",
        "您的资金可以投资多长时间？",
        ("under_1y", "Less than 1 year", "1年以内", 0),
        ("1_3y", "1 to 3 years", "1–3年", 5),
        ("3_5y", "3 to 5 years", "3–5年", 8),
        ("over_5y", "More than 5 years", "5年以上", 10),
    ),
    _q(
        "objective",
        "What is your main objective?",
        "您的主要投资目标是？",
        ("preserve", "Keep the capital safe", "保本，资产保值", 0),
        ("income", "Steady income above deposit rates", "获取高于存款的稳定收益", 4),
        ("growth", "Growth, accepting some swings", "资产增值，可接受一定波动", 7),
        ("maximise", "The highest return, accepting large losses", "追求最高收益，可接受较大损失", 10),
    ),
    _q(
        "liquidity_need",
        "How likely are you to need this money at short notice?",
        "您短期内需要动用这笔资金的可能性？",
        ("likely", "Likely", "很可能需要", 0),
        ("possible", "Possibly", "可能需要", 4),
        ("unlikely", "Unlikely", "不太可能", 7),
        ("never", "I will not need it", "不会需要", 10),
    ),
    _q(
        "past_losses",
        "What is the largest loss you have had on an investment, and how did you react?",
        "您过去投资的最大损失以及您的反应是？",
        ("none_would_panic", "None, and a loss would worry me greatly", "从未亏损，亏损会让我非常不安", 0),
        ("sold_in_panic", "I had a loss and sold out", "有过亏损并全部卖出", 2),
        ("small_held", "Small losses that I held through", "有过小额亏损并继续持有", 6),
        ("large_held", "Large losses that I held through or added to", "有过较大亏损仍继续持有或加仓", 10),
    ),
)

MAX_SCORE = sum(q.max_score for q in QUESTIONS)
assert MAX_SCORE == 100, MAX_SCORE


class RiskLevel(StrEnum):
    """Investor risk level; score bands over the 0..100 total are in :data:`LEVEL_BANDS`."""

    C1 = "C1"
    C2 = "C2"
    C3 = "C3"
    C4 = "C4"
    C5 = "C5"


#: Inclusive score band of each level.
LEVEL_BANDS: dict[RiskLevel, tuple[int, int]] = {
    RiskLevel.C1: (0, 20),
    RiskLevel.C2: (21, 40),
    RiskLevel.C3: (41, 60),
    RiskLevel.C4: (61, 80),
    RiskLevel.C5: (81, 100),
}


def level_for(score: int) -> RiskLevel:
    """The level whose band holds ``score`` (0..100)."""
    for level, (low, high) in LEVEL_BANDS.items():
        if low <= score <= high:
            return level
    raise ValueError(f"score {score} is outside 0..{MAX_SCORE}")


def max_product_risk(level: RiskLevel) -> int:
    """The highest product risk rating (1 = R1 … 5 = R5) an investor of ``level`` may buy."""
    return int(level.value[1])


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    score: int
    level: RiskLevel
    #: (question key, option key, points) in questionnaire order.
    breakdown: tuple[tuple[str, str, int], ...]


class QuestionnaireError(ValueError):
    """The answers are incomplete or name unknown options; ``problems`` lists every one."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {msg}" for key, msg in problems))


def score_answers(answers: Mapping[str, str]) -> RiskAssessment:
    """Score a complete set of answers (question key → option key).

    Raises :class:`QuestionnaireError` listing, as (key, message) pairs, every unanswered
    question, every unknown option and every answer to a question that does not exist.
    """
    problems: list[tuple[str, str]] = []
    breakdown: list[tuple[str, str, int]] = []
    for question in QUESTIONS:
        chosen = answers.get(question.key)
        if chosen is None:
            problems.append((question.key, "not answered"))
            continue
        option = question.option(chosen)
        if option is None:
            problems.append((question.key, f"unknown option {chosen!r}"))
            continue
        breakdown.append((question.key, option.key, option.score))
    known = {q.key for q in QUESTIONS}
    problems.extend((key, "unknown question") for key in answers if key not in known)
    if problems:
        raise QuestionnaireError(problems)
    score = sum(points for _, _, points in breakdown)
    return RiskAssessment(score, level_for(score), tuple(breakdown))
