"""Request counters per vendor, route and answer, for tests and benchmarks."""

from __future__ import annotations

from collections import Counter
from typing import Any

RESET = "reset"  # the answer label of a dropped connection


class Stats:
    def __init__(self, now: float) -> None:
        self.since = now
        self._answers: Counter[tuple[str, str, str]] = Counter()

    def clear(self, now: float) -> None:
        self.since = now
        self._answers.clear()

    def record(self, vendor: str, route: str, answer: int | str) -> None:
        self._answers[(vendor, route, str(answer))] += 1

    def count(self, vendor: str, route: str, answer: int | str | None = None) -> int:
        return sum(
            n
            for (v, r, a), n in self._answers.items()
            if v == vendor and r == route and (answer is None or a == str(answer))
        )

    def snapshot(self, now: float) -> dict[str, Any]:
        """{"requests": {vendor: {route: {"total": n, "by_status": {"200": n, ...}}}}, ...}."""
        requests: dict[str, dict[str, dict[str, Any]]] = {}
        for (vendor, route, answer), n in sorted(self._answers.items()):
            entry = requests.setdefault(vendor, {}).setdefault(route, {"total": 0, "by_status": {}})
            entry["total"] += n
            entry["by_status"][answer] = n
        return {"requests": requests, "elapsed_s": round(now - self.since, 3)}
