"""Prometheus metrics of the service (FastStream's middleware adds the Kafka handler metrics).

Besides the counters, gauges and histograms below, three things are exported:

- `video_build_info{version}`: always 1, the installed version of `video-service`;
- `video_dir_free_bytes` and `video_dir_size_bytes`: the file system holding VIDEO_DIR (or, while
  it does not exist yet, its nearest existing parent), read at each scrape
  (`Metrics.watch_video_dir`);
- `video_upstream_request_duration_seconds{provider,operation,outcome}`: each HTTP exchange with
  a vendor, observed by the provider itself (`providers.http_provider.HttpProvider.on_call`, set
  by `Metrics.watch_providers`) so that `providers/` imports nothing of Prometheus.

The request topic's consumer lag is `consumers.operations.lag`. No `_created` series are exported
(`disable_created_metrics`, process-wide: FastStream's metrics lose theirs too): they double the
series count and nothing here reads them.

Series that alert rules compute `increase()` on are created at zero for every model, provider and
code they can take, because a counter series born with the value 1 shows no increase: the first
resubmission of a model would go unnoticed.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from providers.catalog import MODELS
from providers.http_provider import HttpProvider
from schemas.errors import ErrorCode

log = logging.getLogger("video.metrics")

_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600, 86400)
_SHORT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# One HTTP call to a vendor: milliseconds when all is well, up to the read timeout otherwise.
_CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
# Error codes of failed tasks that the alert rules watch per provider.
_WATCHED_ERRORS = (ErrorCode.UPSTREAM_UNAVAILABLE, ErrorCode.QUOTA_EXCEEDED)


def service_version() -> str:
    try:
        return importlib.metadata.version("video-service")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()  # before any sample is collected: it is read at collection
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.statuses = Counter(
            "video_task_status_total",
            "Task status changes, by the status reached.",
            ["provider", "model", "status"],
            registry=r,
        )
        self.errors = Counter(
            "video_task_errors_total",
            "Tasks that ended failed or cancelled, by contract error code.",
            ["provider", "model", "code"],
            registry=r,
        )
        self.rejected = Counter(
            "video_requests_rejected_total",
            "Requests sent to the dead-letter topic, by error code.",
            ["code"],
            registry=r,
        )
        self.duplicates = Counter(
            "video_requests_duplicate_total",
            "Requests whose request_id was already stored (current status re-published).",
            registry=r,
        )
        self.in_flight = Gauge(
            "video_tasks_in_flight", "Unfinished tasks held by this instance.", registry=r
        )
        self.task_seconds = Histogram(
            "video_task_duration_seconds",
            "From acceptance to the terminal status.",
            ["provider", "model", "status"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.generation_seconds = Histogram(
            "video_generation_duration_seconds",
            "From upstream submit to the upstream's final answer.",
            ["provider", "model"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.download_seconds = Histogram(
            "video_download_duration_seconds",
            "Downloading and checking a task's videos.",
            ["provider", "model"],
            buckets=_SHORT_BUCKETS,
            registry=r,
        )
        self.upstream_calls = Counter(
            "video_upstream_requests_total",
            "Calls to the upstream vendors, by operation and outcome.",
            ["provider", "operation", "outcome"],
            registry=r,
        )
        self.resubmissions = Counter(
            "video_upstream_resubmissions_total",
            "Submits repeated after a crash between the upstream's answer and recording its id.",
            ["provider", "model"],
            registry=r,
        )
        self.unknown_submits = Counter(
            "video_upstream_submit_outcome_unknown_total",
            "Submits whose outcome is unknown (timeout after sending); never retried.",
            ["provider", "model"],
            registry=r,
        )
        self.submit_lookups = Counter(
            "video_upstream_submit_lookups_total",
            "Lost submits looked up in the vendor's task list, by outcome (adopted, none).",
            ["provider", "outcome"],
            registry=r,
        )
        self.takeovers = Counter(
            "video_tasks_taken_over_total",
            "Tasks claimed after another instance's lease expired.",
            registry=r,
        )
        self.reply_copies_failed = Counter(
            "video_reply_copies_failed_total",
            "Event copies to a request's reply_topic that could not be delivered (skipped).",
            registry=r,
        )
        self.intake_paused = Gauge(
            "video_intake_paused",
            "1 while request consumption is paused because MAX_IN_FLIGHT is reached.",
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "video_upstream_request_duration_seconds",
            "Each HTTP call to a vendor, from sending it to its answer (the wait for a free "
            "connection and for the vendor's rate limits left out), by operation (submit, query, "
            "cancel, lookup) and outcome (2xx, 4xx, 5xx: the HTTP status class; not_sent: no "
            "connection; no_answer: sent, then a timeout or a dropped connection).",
            ["provider", "operation", "outcome"],
            buckets=_CALL_BUCKETS,
            registry=r,
        )
        self.build = Info("video_build", "The running version of video-service.", registry=r)
        self.build.info({"version": service_version()})
        self._video_dir: _DirSpace | None = None
        self._start_at_zero()

    def _start_at_zero(self) -> None:
        for spec in MODELS.values():
            self.resubmissions.labels(spec.provider, spec.name)
            self.unknown_submits.labels(spec.provider, spec.name)
            for code in _WATCHED_ERRORS:
                self.errors.labels(spec.provider, spec.name, code.value)
        for provider in sorted({spec.provider for spec in MODELS.values()}):
            for outcome in ("adopted", "none"):
                self.submit_lookups.labels(provider, outcome)
        for code in ErrorCode:
            self.rejected.labels(code.value)

    def upstream_call(self, provider: str, operation: str, seconds: float, outcome: str) -> None:
        """`HttpProvider.on_call`: one vendor call's duration."""
        self.upstream_seconds.labels(provider, operation, outcome).observe(seconds)

    def watch_providers(self, providers: Iterable[object]) -> None:
        """Observe the duration of every vendor call these providers make."""
        for provider in providers:
            if isinstance(provider, HttpProvider):
                provider.on_call = self.upstream_call

    def watch_video_dir(self, path: str | os.PathLike[str]) -> None:
        """Export the free space of `path`'s file system, read at each scrape."""
        if self._video_dir is None:
            self._video_dir = _DirSpace(Path(path))
            self.registry.register(self._video_dir)
        else:
            self._video_dir.path = Path(path)


class _DirSpace:
    """`video_dir_free_bytes` and `video_dir_size_bytes`, read when scraped."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        usage = _disk_usage(self.path)
        yield from self._families(usage)

    def _families(self, usage: tuple[int, int] | None = None) -> Iterator[GaugeMetricFamily]:
        free = GaugeMetricFamily(
            "video_dir_free_bytes",
            "Bytes free for the service on the file system of VIDEO_DIR (as df's Avail).",
        )
        size = GaugeMetricFamily(
            "video_dir_size_bytes", "Size in bytes of the file system of VIDEO_DIR."
        )
        if usage is not None:
            free.add_metric([], usage[0])
            size.add_metric([], usage[1])
        yield free
        yield size


def _disk_usage(path: Path) -> tuple[int, int] | None:
    """(free, size) of the file system `path` is (or will be created) on; None: unreadable."""
    for candidate in (path, *path.absolute().parents):
        try:
            usage = shutil.disk_usage(candidate)
            return usage.free, usage.total
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("free space of %s unreadable: %r", candidate, exc)
            return None
    return None
