"""Time-ordered UUIDs (version 7, RFC 9562) and short human references."""

from __future__ import annotations

import secrets
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0

# Crockford base32 without I, L, O, U: easy to read out on a telephone.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def uuid7() -> uuid.UUID:
    """A UUIDv7: 48-bit Unix milliseconds, then a 12-bit counter and 62 random bits.

    Within one process the counter keeps ids strictly increasing even inside one millisecond.
    """
    global _last_ms, _counter
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
            now_ms = _last_ms
        else:
            _last_ms = now_ms
            _counter = secrets.randbits(8)
        counter = _counter
    rand = secrets.randbits(62)
    value = (now_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand
    return uuid.UUID(int=value)


def human_ref(prefix: str, length: int = 8) -> str:
    """A short reference people can quote, e.g. ``ORG-7K2M9QXA``. Each random byte picks one of
    the 32 letters by its low five bits (256 is a multiple of 32, so the choice is unbiased)."""
    body = "".join(_ALPHABET[b & 31] for b in secrets.token_bytes(length))
    return f"{prefix}-{body}"
