"""Where the service is: Kafka's address and security, and the topic names.

`from_env()` reads the same variables as the service (README "Configuration"), so a producer
configured like the service finds it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Topics:
    """The contract's topic names (`TOPIC_*`)."""

    requests: str = "video.requests"
    cancel: str = "video.cancel"
    status: str = "video.status"
    completed: str = "video.completed"
    dlq: str = "video.requests.dlq"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Topics:
        env = os.environ if env is None else env
        default = cls()
        return cls(
            requests=env.get("TOPIC_REQUESTS") or default.requests,
            cancel=env.get("TOPIC_CANCEL") or default.cancel,
            status=env.get("TOPIC_STATUS") or default.status,
            completed=env.get("TOPIC_COMPLETED") or default.completed,
            dlq=env.get("TOPIC_DLQ") or default.dlq,
        )


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    """How to reach Kafka (`KAFKA_*`). `options` are passed to aiokafka's clients as they are
    (e.g. `ssl_context`, `sasl_oauth_token_provider`, `request_timeout_ms`)."""

    bootstrap_servers: str = "localhost:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    client_id: str = "video-client"
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaConfig:
        env = os.environ if env is None else env
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or "localhost:9092",
            security_protocol=env.get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT",
            sasl_mechanism=env.get("KAFKA_SASL_MECHANISM") or None,
            sasl_username=env.get("KAFKA_SASL_USERNAME") or None,
            sasl_password=env.get("KAFKA_SASL_PASSWORD") or None,
            ssl_cafile=env.get("KAFKA_SSL_CAFILE") or None,
        )

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            "client_id": self.client_id,
        }
        if self.sasl_mechanism:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        if self.ssl_cafile and "ssl_context" not in self.options:
            from aiokafka.helpers import create_ssl_context

            kwargs["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        kwargs.update(self.options)
        return kwargs
