"""Pure rules of the hash-chained audit log.

Each record's hash is SHA-256 over the previous record's hash and a canonical JSON form of the
record's own fields, so changing, deleting or reordering any record breaks every later link.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept, datetimes as UTC ISO-8601."""

    def default(obj: Any) -> str:
        if isinstance(obj, datetime):
            return obj.astimezone(UTC).isoformat(timespec="microseconds")
        return str(obj)

    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default)


def digest(value: Any) -> str | None:
    """A digest of a before/after state; ``None`` stays ``None`` (nothing existed)."""
    if value is None:
        return None
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditFields:
    seq: int
    at: datetime
    actor_user_id: str | None
    actor_org_id: str | None
    actor_label: str
    action: str
    object_type: str
    object_id: str | None
    before_digest: str | None
    after_digest: str | None
    request_id: str
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor_user_id": self.actor_user_id,
            "actor_org_id": self.actor_org_id,
            "actor_label": self.actor_label,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "before_digest": self.before_digest,
            "after_digest": self.after_digest,
            "request_id": self.request_id,
            "detail": self.detail,
        }


def chain_hash(prev_hash: str, fields: AuditFields) -> str:
    payload = prev_hash + "\n" + canonical_json(fields.as_dict())
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int
    record_id: str
    reason: str

    def __str__(self) -> str:
        return f"audit record #{self.seq} ({self.record_id}): {self.reason}"


@dataclass(frozen=True, slots=True)
class StoredRecord:
    record_id: str
    prev_hash: str
    hash: str
    fields: AuditFields


def first_break(records: list[StoredRecord]) -> ChainBreak | None:
    """Walk records in sequence order and return the first broken link, or ``None``."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    for rec in records:
        seq = rec.fields.seq
        if seq != expected_seq:
            reason = (
                f"sequence jumps from #{expected_seq - 1} to #{seq} (records deleted)"
                if seq > expected_seq
                else f"sequence goes back to #{seq} after #{expected_seq - 1} (records reordered)"
            )
            return ChainBreak(seq, rec.record_id, reason)
        if rec.prev_hash != expected_prev:
            return ChainBreak(seq, rec.record_id, "previous-hash link does not match the record before it")
        if chain_hash(rec.prev_hash, rec.fields) != rec.hash:
            return ChainBreak(seq, rec.record_id, "contents changed after it was written (hash mismatch)")
        expected_prev = rec.hash
        expected_seq += 1
    return None
