from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yunrong.identity.model import OrgType
from yunrong.parties.model import (
    TRANSITIONS,
    IllegalReviewMove,
    MakerCheckerViolation,
    QualificationStatus,
    ReasonRequired,
    ReviewAction,
    blocking_status,
    mask,
    next_status,
    sniff,
)

S = QualificationStatus
A = ReviewAction


def test_two_person_approval_needs_two_different_regulators() -> None:
    first = next_status(
        A.APPROVE, S.PENDING, two_person=True, actor_id="r1", first_approver_id=None, reason="ok"
    )
    assert first.target is S.AWAITING_SECOND_APPROVAL
    with pytest.raises(MakerCheckerViolation):
        next_status(
            A.APPROVE, first.target, two_person=True, actor_id="r1", first_approver_id="r1", reason="ok"
        )
    second = next_status(
        A.APPROVE, first.target, two_person=True, actor_id="r2", first_approver_id="r1", reason="ok"
    )
    assert second.target is S.APPROVED


def test_one_person_approval_when_the_profile_allows() -> None:
    move = next_status(
        A.APPROVE, S.PENDING, two_person=False, actor_id="r1", first_approver_id=None, reason="ok"
    )
    assert move.target is S.APPROVED


@pytest.mark.parametrize("reason", ["", "   ", "\n"])
def test_every_decision_needs_a_reason(reason: str) -> None:
    with pytest.raises(ReasonRequired):
        next_status(A.REJECT, S.PENDING, two_person=True, actor_id="r", first_approver_id=None, reason=reason)


def test_terminal_and_illegal_moves_are_refused() -> None:
    for action in A:
        with pytest.raises(IllegalReviewMove):
            next_status(action, S.REJECTED, two_person=True, actor_id="r", first_approver_id=None, reason="x")
    with pytest.raises(IllegalReviewMove):
        next_status(A.SUSPEND, S.PENDING, two_person=True, actor_id="r", first_approver_id=None, reason="x")
    with pytest.raises(IllegalReviewMove):
        next_status(A.RESPOND, S.PENDING, two_person=True, actor_id="r", first_approver_id=None, reason="x")


@given(st.lists(st.tuples(st.sampled_from(list(A)), st.sampled_from(["r1", "r2", "r3"])), max_size=30))
def test_any_sequence_of_decisions_stays_within_the_table(steps: list[tuple[ReviewAction, str]]) -> None:
    status, first = S.PENDING, None
    approvers: list[str] = []
    for action, actor in steps:
        try:
            move = next_status(
                action, status, two_person=True, actor_id=actor, first_approver_id=first, reason="r"
            )
        except (IllegalReviewMove, MakerCheckerViolation):
            continue
        assert move.target in TRANSITIONS[(action, status)]
        if move.target is S.AWAITING_SECOND_APPROVAL:
            first = actor
        elif move.target is S.APPROVED and status is S.AWAITING_SECOND_APPROVAL:
            approvers = [first or "", actor]
            assert approvers[0] != approvers[1]
        elif move.target in (S.PENDING, S.INFO_REQUESTED, S.REJECTED):
            first = None
        status = move.target


def test_only_approved_parties_do_business_and_authorities_always_may() -> None:
    assert blocking_status(S.APPROVED, OrgType.ENTERPRISE) is None
    assert blocking_status(None, OrgType.REGULATOR) is None
    assert blocking_status(None, OrgType.OPERATOR) is None
    assert blocking_status(S.SUSPENDED, OrgType.AGENCY) is S.SUSPENDED
    assert blocking_status(None, OrgType.CUSTODIAN_BANK) is S.PENDING
    for status in S:
        if status is not S.APPROVED:
            assert blocking_status(status, OrgType.INVESTOR) is status


def test_uploads_are_recognised_by_content() -> None:
    assert sniff(b"%PDF-1.7 ...") == ("application/pdf", ".pdf")
    assert sniff(b"\x89PNG\r\n\x1a\n...") == ("image/png", ".png")
    assert sniff(b"\xff\xd8\xff\xe0...") == ("image/jpeg", ".jpg")
    assert sniff(b"<html>") is None
    assert sniff(b"MZ\x90\x00") is None


def test_mask_keeps_only_the_tail() -> None:
    assert mask("11010519491231002X") == "**************002X"
    assert mask("123") == "***"
