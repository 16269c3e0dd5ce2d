"""Configuration from the environment (and a `.env` file), as the contract names it."""

from __future__ import annotations

import os
import re
import socket
import uuid
from functools import cached_property

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Kafka
    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_group_id: str = "video-service"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    topic_requests: str = "video.requests"
    topic_cancel: str = "video.cancel"
    topic_status: str = "video.status"
    topic_completed: str = "video.completed"
    topic_dlq: str = "video.requests.dlq"
    topic_partitions: int = Field(default=6, ge=1)

    # MongoDB
    mongodb_url: SecretStr = SecretStr("mongodb://localhost:27017")  # may hold a password
    mongodb_db: str = "video_service"

    # The vendors' keys, URLs and limits belong to their packages: see providers/settings.py.

    # Videos
    video_dir: str = "data/videos"
    max_video_bytes: int = Field(default=2_147_483_648, gt=0)
    download_allowed_hosts: str | None = None  # unset: the providers' result hosts
    max_concurrent_downloads: int = Field(default=32, ge=1)

    # Tasks
    task_timeout_s: int = Field(default=3600, ge=60, le=86400)
    max_in_flight: int = Field(default=10_000, ge=1)
    lease_ttl_s: float = Field(default=30.0, gt=0)
    # Unique per process even where replicas share a host name and all run as pid 1.
    instance_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    )
    # A task found with a submit sent but never recorded is sent again only after this long
    # (its first instance may still be recording it): longer than a submit call can take.
    submit_record_grace_s: float = Field(default=40.0, ge=0)
    # A submit whose answer was ambiguous (5xx, timeout) is looked up this long after it left:
    # the vendor may still be creating the task (see consumers/engine/resolve.py).
    submit_resolve_after_s: float = Field(default=60.0, ge=0)
    cancel_memory_s: float = Field(default=3600.0, ge=0)
    # A tenant's tasks wait for a vendor running slot while it holds this many (0: no cap).
    tenant_max_running: int = Field(default=0, ge=0)
    # Polls (consumers/engine/polling.py): a running task is queried at most every
    # POLL_INTERVAL_MIN_S (the first time POLL_FIRST_S after its submit, by default the same),
    # as the vendor's query budget allows, most overdue first, and at least every
    # POLL_INTERVAL_MAX_S when the budget allows it.
    poll_first_s: float | None = Field(default=None, ge=0)
    poll_interval_min_s: float = Field(default=1.0, gt=0)
    poll_interval_max_s: float = Field(default=60.0, gt=0)
    # Transient upstream errors: attempts before `upstream_unavailable`, and backoff bounds.
    upstream_max_attempts: int = Field(default=8, ge=1)
    retry_base_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0)

    # Service
    metrics_port: int = Field(default=9400, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    auth_mode: str = "none"
    auth_jwt_secret: SecretStr | None = None
    auth_jwt_public_key: str | None = None
    auth_jwt_audience: str | None = None
    auth_jwt_issuer: str | None = None
    reply_topic_pattern: str | None = None
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one JSON object per line (consumers/operations/logs.py)

    @field_validator("auth_mode")
    @classmethod
    def _known_auth_mode(cls, value: str) -> str:
        if value.lower() not in ("none", "jwt"):
            raise ValueError(f"AUTH_MODE must be 'none' or 'jwt', not {value!r}")
        return value.lower()

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        if value.lower() not in ("text", "json"):
            raise ValueError(f"LOG_FORMAT must be 'text' or 'json', not {value!r}")
        return value.lower()

    @field_validator("reply_topic_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value:
            re.compile(value)
        return value or None

    @cached_property
    def reply_topic_regex(self) -> re.Pattern[str] | None:
        return re.compile(self.reply_topic_pattern) if self.reply_topic_pattern else None

    def allowed_download_hosts(self, provider_defaults: tuple[str, ...]) -> tuple[str, ...]:
        if self.download_allowed_hosts is None:
            return provider_defaults
        return tuple(h.strip().lower() for h in self.download_allowed_hosts.split(",") if h.strip())

    # Retention (consumers/operations/retention.py): finished tasks older than
    # TASK_RETENTION_DAYS are deleted (a request_id is de-duplicated only while its task is
    # kept), videos in VIDEO_DIR older than VIDEO_RETENTION_DAYS removed; unset or 0: kept.
    task_retention_days: float | None = Field(default=None, ge=0)
    video_retention_days: float | None = Field(default=None, ge=0)
    retention_interval_s: float = Field(default=3600.0, gt=0)
    # Below this many free bytes in VIDEO_DIR, downloads wait for space (consumers/media/space.py;
    # 0: they never wait).
    video_dir_min_free_bytes: int = Field(default=1_073_741_824, ge=0)
