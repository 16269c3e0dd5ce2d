"""Types for the service fixtures in tests/conftest.py (importable by tests, unlike conftest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Document = dict[str, Any]


@dataclass(frozen=True)
class KafkaSasl:
    """The broker's SASL_PLAINTEXT listener and a user known to PLAIN and both SCRAM mechanisms."""

    bootstrap_servers: str
    username: str
    password: str

    def client_kwargs(self, mechanism: str = "SCRAM-SHA-256", **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for an aiokafka client (AIOKafkaProducer/Consumer/AdminClient)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
        }
        kwargs.update(overrides)
        return kwargs
