from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from yunrong.kit.clock import FrozenClock, business_date, ensure_utc
from yunrong.kit.ids import human_ref, uuid7
from yunrong.kit.pagination import PageRequest


def test_uuid7_is_version_7_and_strictly_increasing() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert all(u.version == 7 for u in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_uuid7_carries_the_time() -> None:
    before = int(datetime.now(UTC).timestamp() * 1000)
    stamp = uuid7().int >> 80
    assert abs(stamp - before) < 5000


def test_human_ref_is_readable() -> None:
    ref = human_ref("ORG")
    assert ref.startswith("ORG-")
    assert len(ref) == 12
    assert not set(ref[4:]) & set("ILOU")


def test_business_date_is_in_the_platform_zone() -> None:
    # 17:30 UTC on 31 Dec is already 1 Jan in Shanghai.
    instant = datetime(2026, 12, 31, 17, 30, tzinfo=UTC)
    assert business_date(instant) == date(2027, 1, 1)
    assert business_date(instant, "UTC") == date(2026, 12, 31)
    with pytest.raises(ValueError, match="timezone-aware"):
        business_date(datetime(2026, 1, 1))


def test_frozen_clock_moves_only_when_told() -> None:
    clock = FrozenClock(datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8))))
    assert clock.now() == datetime(2026, 1, 1, 0, tzinfo=UTC)
    clock.advance(timedelta(days=1))
    assert clock.now() == datetime(2026, 1, 2, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        FrozenClock(datetime(2026, 1, 1))


def test_ensure_utc_reads_naive_values_as_utc() -> None:
    assert ensure_utc(datetime(2026, 1, 1)).tzinfo is UTC


def test_page_request_bounds() -> None:
    with pytest.raises(ValueError, match="limit"):
        PageRequest(limit=0)
    with pytest.raises(ValueError, match="limit"):
        PageRequest(limit=1000)
