"""Public object ids: a type prefix and 26 Crockford base32 characters (48-bit milliseconds + 80 random bits).

Ids sort by creation time (to the millisecond), so `ORDER BY id DESC` is newest first and cursors are ids.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str) -> str:
    """Return a new id such as `pay_01jd3k…`; `prefix` is the object type (`pay`, `evt`, `mer`, `we`, …)."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"
