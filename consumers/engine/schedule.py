"""When to act next: the adaptive poll schedule and retry backoff (pure functions)."""

from __future__ import annotations

import random

# A first poll a little before the typical duration catches fast generations early.
FIRST_POLL_FRACTION = 0.8
GROWTH = 1.5


def poll_delay(
    polls_done: int, typical_s: float, first_s: float | None, min_s: float, max_s: float
) -> float:
    """Seconds until the next status query of an upstream task.

    The first query goes near the model's typical duration; later ones start at `min_s` and grow
    by half each time up to `max_s`. A ±10% jitter keeps thousands of tasks from polling in step.
    """
    if polls_done == 0:
        base = first_s if first_s is not None else typical_s * FIRST_POLL_FRACTION
    else:
        base = min(max_s, min_s * GROWTH ** (polls_done - 1))
    return base * random.uniform(0.9, 1.1)


def retry_delay(attempt: int, base_s: float, max_s: float, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, never sooner than the vendor's `Retry-After`."""
    backoff = random.uniform(0.5, 1.0) * min(max_s, base_s * 2 ** max(0, attempt - 1))
    return max(backoff, retry_after or 0.0)
