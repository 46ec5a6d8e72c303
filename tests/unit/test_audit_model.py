from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from yunrong.messaging.model import EventStatus, IllegalTransition, backoff, transition
from yunrong.supervision.model import GENESIS_HASH, AuditFields, StoredRecord, chain_hash, first_break


def _chain(n: int) -> list[StoredRecord]:
    records: list[StoredRecord] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        fields = AuditFields(
            seq=seq,
            at=datetime(2026, 1, 1, tzinfo=UTC),
            actor_user_id=None,
            actor_org_id=None,
            actor_label="system",
            action="a",
            object_type="t",
            object_id=str(seq),
            before_digest=None,
            after_digest=None,
            request_id="r",
            detail={"n": seq, "名": "值"},
        )
        h = chain_hash(prev, fields)
        records.append(StoredRecord(str(seq), prev, h, fields))
        prev = h
    return records


def test_an_intact_chain_has_no_break() -> None:
    assert first_break(_chain(10)) is None
    assert first_break([]) is None


@given(st.integers(min_value=2, max_value=20), st.data())
def test_any_single_change_is_found_at_its_record(n: int, data: st.DataObject) -> None:
    records = _chain(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    changed = replace(records[i].fields, action="changed")
    records[i] = replace(records[i], fields=changed)
    broken = first_break(records)
    assert broken is not None
    assert broken.seq == i + 1


@given(st.integers(min_value=3, max_value=20), st.data())
def test_deleting_or_swapping_is_found(n: int, data: st.DataObject) -> None:
    records = _chain(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 2))
    deleted = records[:i] + records[i + 1 :]
    assert first_break(deleted) is not None
    swapped = list(records)
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    assert first_break(swapped) is not None


def test_backoff_doubles_and_caps() -> None:
    assert [backoff(a).total_seconds() for a in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert backoff(40).total_seconds() == 3600


def test_outbox_transitions() -> None:
    assert transition(EventStatus.PENDING, EventStatus.DELIVERED) is EventStatus.DELIVERED
    assert transition(EventStatus.DEAD, EventStatus.PENDING) is EventStatus.PENDING
    for illegal in ((EventStatus.DELIVERED, EventStatus.PENDING), (EventStatus.DEAD, EventStatus.DELIVERED)):
        try:
            transition(*illegal)
        except IllegalTransition:
            continue
        raise AssertionError(f"{illegal} should be refused")
