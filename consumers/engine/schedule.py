"""When to try again: retry backoff (a pure function)."""

from __future__ import annotations

import random


def retry_delay(attempt: int, base_s: float, max_s: float, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than the vendor's `Retry-After`."""
    backoff = random.uniform(0.5, 1.0) * min(max_s, base_s * 2 ** max(0, attempt - 1))
    return max(backoff, retry_after or 0.0)
