"""The entry knowledge test (EU ECSP art. 21): before a non-sophisticated investor's first
commitment, the platform checks they understand what lending to small firms means.

The questions are data; an investor passes with at least :data:`PASS_MARK` correct answers. The
latest attempt is kept (retaking is allowed) and every attempt is in the audit log. Under profiles
that require no test (cn-2016), taking it is possible but not needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from yunrong.identity.model import Action, Context, OrgType
from yunrong.identity.service import require
from yunrong.investing.tables import KnowledgeTest
from yunrong.kit.errors import FieldProblem, InvalidInput, PermissionDenied
from yunrong.parties import service as parties
from yunrong.supervision import service as audit


@dataclass(frozen=True)
class Question:
    key: str
    en: str
    zh: str
    options: tuple[tuple[str, str, str], ...]  # (key, English, Chinese)
    answer: str


QUESTIONS: tuple[Question, ...] = (
    Question(
        "capital-at-risk",
        "If the enterprise cannot repay, what happens to the money you lent?",
        "如果企业无法还款，您出借的资金会怎样？",
        (
            ("a", "The platform repays it in full", "平台全额兑付"),
            ("b", "You may lose part or all of it", "您可能损失部分或全部本金"),
            ("c", "The custodian bank repays it", "存管银行兑付"),
        ),
        "b",
    ),
    Question(
        "liquidity",
        "Can you always get your money back before the loan's term ends?",
        "在借款到期前，您能随时收回资金吗？",
        (
            ("a", "Yes, at any time", "可以，随时"),
            ("b", "No, it is committed until the enterprise repays", "不能，资金在企业还款前被占用"),
        ),
        "b",
    ),
    Question(
        "diversification",
        "Which spreads your risk better?",
        "以下哪种方式更能分散风险？",
        (
            ("a", "One large loan to one enterprise", "把全部资金借给一家企业"),
            ("b", "Small amounts across many enterprises and sectors", "小额分散到多家企业和行业"),
        ),
        "b",
    ),
    Question(
        "grade",
        "What does a lower credit grade mean?",
        "较低的信用等级意味着什么？",
        (
            ("a", "A higher chance that the enterprise does not repay", "企业违约的可能性更高"),
            ("b", "A guaranteed higher return", "保证更高的收益"),
        ),
        "a",
    ),
    Question(
        "custody",
        "Where is your money held before it is lent?",
        "出借前您的资金存放在哪里？",
        (
            ("a", "In the platform's own bank account", "平台自有账户"),
            ("b", "In a segregated account at the custodian bank", "存管银行的独立托管账户"),
        ),
        "b",
    ),
)

PASS_MARK = 4


def score(answers: dict[str, str]) -> int:
    return sum(1 for q in QUESTIONS if answers.get(q.key) == q.answer)


def take_test(session: Session, *, ctx: Context, answers: dict[str, str]) -> KnowledgeTest:
    """Record an attempt (the latest one counts)."""
    require(ctx, Action.TAKE_KNOWLEDGE_TEST)
    actor = ctx.actor
    if actor.org_type is not OrgType.INVESTOR or actor.organisation_id is None:
        raise PermissionDenied("only investors take the knowledge test")
    parties.require_admitted(session, ctx=ctx)
    missing = [q.key for q in QUESTIONS if q.key not in answers]
    unknown = [k for k in answers if k not in {q.key for q in QUESTIONS}]
    if missing or unknown:
        raise InvalidInput(
            "answer every question of the test, and only those",
            [FieldProblem(("answers", k), "missing") for k in missing]
            + [FieldProblem(("answers", k), "not a question of the test") for k in unknown],
        )
    points = score(answers)
    row = session.get(KnowledgeTest, actor.organisation_id)
    if row is None:
        row = KnowledgeTest(organisation_id=actor.organisation_id)
        session.add(row)
    row.score = points
    row.out_of = len(QUESTIONS)
    row.passed = points >= PASS_MARK
    row.answers = dict(answers)
    row.taken_by = actor.email
    row.taken_at = ctx.now()
    session.flush()
    audit.record(
        session,
        ctx=ctx,
        action="investing.knowledge_test_taken",
        object_type="organisation",
        object_id=actor.organisation_id,
        after={"score": points, "out_of": len(QUESTIONS), "passed": row.passed},
    )
    return row


def latest(session: Session, *, ctx: Context) -> KnowledgeTest | None:
    require(ctx, Action.TAKE_KNOWLEDGE_TEST)
    if ctx.actor.organisation_id is None:
        return None
    return session.get(KnowledgeTest, ctx.actor.organisation_id)
