"""Kafka connection settings and topic creation."""

from __future__ import annotations

import dataclasses
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from consumers.settings import Settings

log = logging.getLogger("video.kafka")

_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


async def undecoded(message: Any) -> None:
    """A decoder that leaves bodies alone: the handlers parse them, so that bad JSON becomes a
    clear rejection instead of an error inside FastStream."""
    return None


def read_headers(
    raw: Iterable[tuple[str, bytes | None]] | None,
) -> tuple[dict[str, str | None], dict[str, bytes]]:
    """A record's headers, never raising: values that are UTF-8 text (a null value stays None),
    and values that are not, as bytes. A name given twice keeps its last value."""
    text: dict[str, str | None] = {}
    binary: dict[str, bytes] = {}
    for name, value in raw or ():
        text.pop(name, None)
        binary.pop(name, None)
        if value is None:
            text[name] = None
            continue
        try:
            text[name] = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            binary[name] = bytes(value)
    return text, binary


def _text_headers_only(record: ConsumerRecord[Any, Any]) -> ConsumerRecord[Any, Any]:
    """A copy whose headers FastStream's own parser can decode (it calls `.decode()` on each
    value, which raises on None and on bytes that are not UTF-8)."""
    text, _ = read_headers(record.headers)
    headers = [(k, v.encode()) for k, v in text.items() if v is not None]
    return dataclasses.replace(record, headers=headers)


async def lenient_batch(
    records: tuple[ConsumerRecord[Any, Any], ...],
    original: Callable[[tuple[ConsumerRecord[Any, Any], ...]], Awaitable[Any]],
) -> Any:
    """The batch parser for our subscribers: FastStream's, given copies with decodable headers,
    so that no header value can make it raise (and drop the batch unacknowledged). The message
    keeps the original records: the handlers read their raw headers with `read_headers`."""
    message = await original(tuple(_text_headers_only(r) for r in records))
    message.raw_message = tuple(records)
    return message


async def lenient_single(
    record: ConsumerRecord[Any, Any],
    original: Callable[[ConsumerRecord[Any, Any]], Awaitable[Any]],
) -> Any:
    """`lenient_batch` for a subscriber of single records."""
    message = await original(_text_headers_only(record))
    message.raw_message = record
    return message


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=settings.kafka_ssl_cafile)


def security(settings: Settings) -> BaseSecurity | None:
    """FastStream's security object for KAFKA_SECURITY_PROTOCOL and the SASL settings."""
    protocol = settings.kafka_security_protocol.upper()
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=_ssl_context(settings))
    if protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
        raise ValueError(
            "KAFKA_SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, "
            f"not {protocol!r}"
        )
    mechanism = (settings.kafka_sasl_mechanism or "").upper()
    if mechanism not in _SASL:
        raise ValueError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(_SASL)} for {protocol}")
    if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
        raise ValueError(f"{protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
    ssl_context = _ssl_context(settings) if protocol == "SASL_SSL" else None
    sasl: BaseSecurity = _SASL[mechanism](
        settings.kafka_sasl_username,
        settings.kafka_sasl_password.get_secret_value(),
        ssl_context=ssl_context,
    )
    return sasl


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """The same connection settings, for aiokafka clients used directly (topic admin)."""
    protocol = settings.kafka_security_protocol.upper()
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": protocol,
    }
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if protocol.startswith("SASL"):
        options.update(
            sasl_mechanism=(settings.kafka_sasl_mechanism or "").upper(),
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=(
                settings.kafka_sasl_password.get_secret_value()
                if settings.kafka_sasl_password
                else None
            ),
        )
    return options


def new_topics(names: list[str], partitions: int, brokers: int) -> list[NewTopic]:
    """Three copies where the cluster has three brokers, fewer on a small one; with copies to
    spare, acks=all waits for all but one (`min.insync.replicas`), so one broker may be down."""
    replication = min(3, brokers)
    configs = {"min.insync.replicas": str(replication - 1)} if replication > 1 else {}
    return [NewTopic(name, partitions, replication, topic_configs=configs) for name in names]


async def ensure_topics(settings: Settings) -> None:
    """Create the service's topics when missing; a broker that forbids it only gets a warning."""
    names = [
        settings.topic_requests,
        settings.topic_cancel,
        settings.topic_status,
        settings.topic_completed,
        settings.topic_dlq,
    ]
    admin = AIOKafkaAdminClient(**aiokafka_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if not missing:
            return
        brokers = len((await admin.describe_cluster()).get("brokers", [])) or 1
        topics = new_topics(missing, settings.topic_partitions, brokers)
        try:
            response = await admin.create_topics(topics)
        except TopicAlreadyExistsError:
            return
        for name, code, *rest in getattr(response, "topic_errors", []):
            if code not in (0, TopicAlreadyExistsError.errno):
                log.warning("could not create topic %s (error %s %s)", name, code, rest)
        log.info("created topics %s", ", ".join(missing))
    except Exception as exc:
        log.warning("could not create topics %s: %r", names, exc)
    finally:
        await admin.close()
