"""Prometheus metrics of the service (FastStream's middleware adds the Kafka handler metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600, 86400)
_SHORT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
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
