"""Pure rules of outbox delivery: statuses, legal moves, and the retry backoff."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum


class EventStatus(StrEnum):
    PENDING = "pending"  # waiting for (re)delivery at next_attempt_at
    DELIVERED = "delivered"
    DEAD = "dead"  # gave up after the last attempt; an operator can requeue it


TRANSITIONS: dict[EventStatus, frozenset[EventStatus]] = {
    EventStatus.PENDING: frozenset({EventStatus.PENDING, EventStatus.DELIVERED, EventStatus.DEAD}),
    EventStatus.DELIVERED: frozenset(),
    EventStatus.DEAD: frozenset({EventStatus.PENDING}),
}


class IllegalTransition(ValueError):
    pass


def transition(current: EventStatus, target: EventStatus) -> EventStatus:
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"an event cannot move from {current} to {target}")
    return target


BASE_DELAY_SECONDS = 2
MAX_DELAY_SECONDS = 3600


def backoff(attempts: int) -> timedelta:
    """Exponential backoff after ``attempts`` failed tries: 2 s, 4 s, 8 s … capped at one hour."""
    if attempts < 1:
        raise ValueError("backoff is for attempts >= 1")
    seconds = min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** (attempts - 1))
    return timedelta(seconds=seconds)
