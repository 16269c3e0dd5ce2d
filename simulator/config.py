"""The simulator's knobs, as one value object built from a dict (a JSON file or the control API).

Unknown keys are errors: a typo in a test's config must not silently leave a default in place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

DAY_S = 86_400.0


@dataclass(frozen=True)
class Timing:
    """How long a task stays queued, then running (seconds of the simulator's clock)."""

    queued_s: float = 0.2
    running_s: float = 1.0


@dataclass(frozen=True)
class SimConfig:
    timing: Timing = Timing()
    # Per-model overrides, e.g. {"wanx2.1-t2v-plus": Timing(1, 5)}.
    model_timing: dict[str, Timing] = field(default_factory=dict)
    # None: any well-formed key is accepted (`sk-...` / `<id>.<secret>`); a list: only those.
    dashscope_keys: tuple[str, ...] | None = None
    bigmodel_keys: tuple[str, ...] | None = None
    # Well-formed keys that are still refused, so a 401 can be provoked.
    rejected_keys: tuple[str, ...] = ("sk-invalid", "invalid.invalid")
    # Vendor accounts: name -> its keys. Limits, task visibility, BigModel's request_id
    # uniqueness and DashScope's oss:// files are per account (§1.6, §1.9, §1.10, §2.7). A key
    # listed nowhere is an account of its own.
    accounts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Hosts whose image URLs are served from the simulator's media/ as if fetched (besides its
    # own host's /media/{name}); images on any other host cannot be downloaded.
    image_hosts: tuple[str, ...] = ("example.com",)
    # Tasks not yet ended per (vendor, account, model); None = unlimited. "reject" answers 429
    # like DashScope's Throttling.RateQuota / BigModel 1302; "queue" keeps extra tasks PENDING.
    running_limit: int | None = None
    running_limit_mode: Literal["reject", "queue"] = "reject"
    # Creates per second per (vendor, account, model) and queries (and task lists) per second
    # per (vendor, account).
    submit_qps: float | None = None
    query_qps: float | None = None
    # DashScope parameter-value errors (size, resolution, duration, seed): a 400 at create, or an
    # accepted task that ends FAILED with output.code InvalidParameter. The docs allow both.
    invalid_params_as: Literal["error", "failed_task"] = "error"
    task_ttl_s: float = DAY_S  # after this a DashScope query says UNKNOWN (BigModel: 1210)
    url_ttl_s: float = DAY_S  # result URLs answer 403 this long after the task ended
    chunk_bytes: int = 64 * 1024

    def timing_for(self, model: str) -> Timing:
        return self.model_timing.get(model, self.timing)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimConfig:
        return cls().updated(data)

    def updated(self, data: dict[str, Any]) -> SimConfig:
        """A copy with the given keys replaced; raises ValueError on unknown keys or bad values."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; allowed: {sorted(names)}")
        changes: dict[str, Any] = {}
        for name, value in data.items():
            changes[name] = _convert(name, value)
        new = dataclasses.replace(self, **changes)
        new._check()
        return new

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def _check(self) -> None:
        if self.running_limit_mode not in ("reject", "queue"):
            raise ValueError("running_limit_mode must be 'reject' or 'queue'")
        if self.invalid_params_as not in ("error", "failed_task"):
            raise ValueError("invalid_params_as must be 'error' or 'failed_task'")
        if self.running_limit is not None and self.running_limit < 1:
            raise ValueError("running_limit must be >= 1 or null")
        if self.chunk_bytes < 1:
            raise ValueError("chunk_bytes must be >= 1")


def _timing(value: Any) -> Timing:
    if isinstance(value, Timing):
        return value
    if not isinstance(value, dict) or set(value) - {"queued_s", "running_s"}:
        raise ValueError(f"a timing is {{'queued_s': s, 'running_s': s}}, got {value!r}")
    timing = Timing(**{k: float(v) for k, v in value.items()})
    if timing.queued_s < 0 or timing.running_s < 0:
        raise ValueError("timings must be >= 0")
    return timing


def _convert(name: str, value: Any) -> Any:
    if name == "timing":
        return _timing(value)
    if name == "model_timing":
        return {str(model): _timing(t) for model, t in dict(value).items()}
    if name == "image_hosts":
        return tuple(str(host).lower() for host in value)
    if name in ("dashscope_keys", "bigmodel_keys"):
        return None if value is None else tuple(str(k) for k in value)
    if name == "rejected_keys":
        return tuple(str(k) for k in value)
    if name == "accounts":
        if not isinstance(value, dict):
            raise ValueError("accounts is {name: [key, ...]}")
        return {str(account): tuple(str(k) for k in keys) for account, keys in value.items()}
    if name in ("submit_qps", "query_qps"):
        return None if value is None else float(value)
    if name == "running_limit":
        return None if value is None else int(value)
    if name in ("task_ttl_s", "url_ttl_s"):
        return float(value)
    if name == "chunk_bytes":
        return int(value)
    return value
