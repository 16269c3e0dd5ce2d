"""Turning a raw request message into a task to store, or a rejection that names the problem.

Nothing a producer can put in a message makes this raise: bytes that are not UTF-8, JSON that
is not an object, nested too deeply for the parser, numbers of thousands of digits, NaN,
lone surrogates, values of any type in any field all become a `Rejected` with its code.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from consumers.settings import Settings
from consumers.subscribers.auth import Authenticator, AuthError, HeaderValue
from providers.base import ModelParameters, ModelSpec
from providers.registry import InvalidParameters, UnknownModel, get_model, validate_parameters
from schemas.errors import ErrorCode, ErrorInfo
from schemas.events import REQUEST_ID_CHARS, RequestEvent

_REQUEST_ID = re.compile(REQUEST_ID_CHARS)
# Kafka's own rule for topic names (and "." and ".." are refused).
_KAFKA_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
MESSAGE_MAX_CHARS = 1000  # an error message quotes input at most this long


@dataclass(frozen=True, slots=True)
class Accepted:
    request: RequestEvent
    spec: ModelSpec
    parameters: ModelParameters


@dataclass(frozen=True, slots=True)
class Rejected:
    error: ErrorInfo
    request_id: str | None  # set when the message names a well-formed one
    # What passed validation, for the `failed` status: request_id aside, only fields of a valid
    # envelope (user and tenant from the verified token when authentication is on), the model
    # once known, the provider once checked.
    echo: Mapping[str, Any] = field(default_factory=dict)

    @property
    def publishes_status(self) -> bool:
        """A `failed` status goes out too (unless the request_id already has a task): never
        for an unauthorized record, which anyone could send in someone else's name."""
        return self.request_id is not None and self.error.code != ErrorCode.UNAUTHORIZED


class Unreadable(ValueError):
    """The message value is not a JSON document this service reads."""


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise Unreadable(f"the number {bounded(text, 40)} is out of range")
    return number


def _no_constant(name: str) -> Any:
    raise Unreadable(f"{name} is not a JSON number")


def parse_json(value: bytes) -> Any:
    """The message value as JSON (UTF-8, standard numbers only). Raises Unreadable."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"the message value is not valid UTF-8 JSON: {exc}") from None
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise Unreadable(
            "the message value is not valid UTF-8 JSON: it is nested too deeply to read"
        ) from None
    except Unreadable as exc:
        raise Unreadable(f"the message value is not valid UTF-8 JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise Unreadable(f"the message value is not valid UTF-8 JSON: {exc}") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise Unreadable(f"the message value holds a number too long to read: {exc}") from None


def bounded(text: str, limit: int = MESSAGE_MAX_CHARS) -> str:
    """`text` cut to `limit` characters, as valid Unicode (it may quote hostile input)."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.encode("utf-8", errors="replace").decode("utf-8")


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, each naming the field: "timeout_s: Input should be ... 60"."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "request"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            message = "is required"
        parts.append(f"{bounded(where, 100)}: {message}")
    return bounded("; ".join(parts))


def reply_topic_problem(topic: str, settings: Settings) -> str | None:
    """Why `topic` may not receive copies (None: it may)."""
    if not _KAFKA_TOPIC.fullmatch(topic) or topic in (".", ".."):
        return "is not a Kafka topic name (1 to 249 of A-Z, a-z, 0-9, '.', '_', '-')"
    if topic.startswith("__"):
        return "names one of Kafka's internal topics"
    own = {
        settings.topic_requests,
        settings.topic_cancel,
        settings.topic_status,
        settings.topic_completed,
        settings.topic_dlq,
    }
    if topic in own:
        return "is one of this service's own topics"
    pattern = settings.reply_topic_regex
    if pattern is None or not pattern.fullmatch(topic):
        allowed = f"must match {pattern.pattern}" if pattern else "are not allowed here"
        return f"is not allowed; reply topics {allowed}"
    return None


def validate_request(
    value: bytes, headers: Mapping[str, HeaderValue], settings: Settings, auth: Authenticator
) -> Accepted | Rejected:
    echo: dict[str, Any] = {}
    request_id: str | None = None

    def reject(code: ErrorCode, message: str) -> Rejected:
        return Rejected(ErrorInfo(code=code, message=bounded(message)), request_id, dict(echo))

    try:
        raw = parse_json(value)
    except Unreadable as exc:
        return reject(ErrorCode.INVALID_REQUEST, str(exc))
    if not isinstance(raw, dict):
        kind = type(raw).__name__
        return reject(
            ErrorCode.INVALID_REQUEST, f"the message value must be a JSON object, not {kind}"
        )
    rid = raw.get("request_id")
    if isinstance(rid, str) and _REQUEST_ID.fullmatch(rid):
        request_id = rid

    try:
        identity = auth.identify(headers)
    except AuthError as exc:
        return reject(exc.code, exc.message)

    try:
        request = RequestEvent.model_validate(raw)
    except ValidationError as exc:
        return reject(ErrorCode.INVALID_REQUEST, describe_validation_error(exc))

    if identity is not None:
        echo.update(
            user_id=identity.user_id, tenant_id=identity.tenant_id, metadata=request.metadata
        )
        mismatch = identity.mismatch(request.user_id, request.tenant_id)
        if mismatch:
            return reject(ErrorCode.FORBIDDEN, mismatch)
        request = request.model_copy(
            update={"user_id": identity.user_id, "tenant_id": identity.tenant_id}
        )
    else:
        echo.update(user_id=request.user_id, tenant_id=request.tenant_id, metadata=request.metadata)

    try:
        spec = get_model(request.model)
    except UnknownModel as exc:
        return reject(ErrorCode.UNKNOWN_MODEL, str(exc))
    echo["model"] = spec.name
    if request.provider is not None and request.provider != spec.provider:
        return reject(
            ErrorCode.INVALID_REQUEST,
            f"provider: {request.model} is served by '{spec.provider}', not '{request.provider}'",
        )
    echo["provider"] = spec.provider
    if identity is not None and not identity.may_use(spec.name):
        return reject(ErrorCode.FORBIDDEN, f"model: the token does not allow {spec.name}")
    if request.reply_topic is not None:
        problem = reply_topic_problem(request.reply_topic, settings)
        if problem:
            return reject(ErrorCode.FORBIDDEN, f"reply_topic: '{request.reply_topic}' {problem}")

    try:
        parameters = validate_parameters(spec.name, request.parameters)
    except InvalidParameters as exc:
        return reject(ErrorCode.INVALID_PARAMETERS, str(exc))
    return Accepted(request, spec, parameters)
