"""Turning a raw request message into a task to store, or a rejection that names the problem."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from consumers.settings import Settings
from consumers.subscribers.auth import Authenticator, AuthError
from providers.base import ModelParameters, ModelSpec
from providers.registry import InvalidParameters, UnknownModel, get_model, validate_parameters
from schemas.errors import ErrorCode, ErrorInfo
from schemas.events import REQUEST_ID_PATTERN, RequestEvent

_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class Accepted:
    request: RequestEvent
    spec: ModelSpec
    parameters: ModelParameters


@dataclass(frozen=True, slots=True)
class Rejected:
    error: ErrorInfo
    request_id: str | None  # set when one could be read: a `failed` status is published too
    raw: Mapping[str, Any]


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, each naming the field: "timeout_s: Input should be ... 60"."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "request"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            message = "is required"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def validate_request(
    value: bytes, headers: Mapping[str, str], settings: Settings, auth: Authenticator
) -> Accepted | Rejected:
    def reject(code: ErrorCode, message: str, raw: Mapping[str, Any] = {}) -> Rejected:
        rid = raw.get("request_id")
        readable = rid if isinstance(rid, str) and _REQUEST_ID.match(rid) else None
        return Rejected(ErrorInfo(code=code, message=message), readable, raw)

    try:
        raw = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return reject(
            ErrorCode.INVALID_REQUEST, f"the message value is not valid UTF-8 JSON: {exc}"
        )
    if not isinstance(raw, dict):
        kind = type(raw).__name__
        return reject(
            ErrorCode.INVALID_REQUEST, f"the message value must be a JSON object, not {kind}"
        )

    try:
        identity = auth.identify(headers)
    except AuthError as exc:
        return reject(exc.code, exc.message, raw)

    try:
        request = RequestEvent.model_validate(raw)
    except ValidationError as exc:
        return reject(ErrorCode.INVALID_REQUEST, describe_validation_error(exc), raw)

    if identity is not None:
        mismatch = identity.mismatch(request.user_id, request.tenant_id)
        if mismatch:
            return reject(ErrorCode.FORBIDDEN, mismatch, raw)
        request = request.model_copy(
            update={"user_id": identity.user_id, "tenant_id": identity.tenant_id}
        )

    try:
        spec = get_model(request.model)
    except UnknownModel as exc:
        return reject(ErrorCode.UNKNOWN_MODEL, str(exc), raw)
    if request.provider is not None and request.provider != spec.provider:
        return reject(
            ErrorCode.INVALID_REQUEST,
            f"provider: {request.model} is served by '{spec.provider}', not '{request.provider}'",
            raw,
        )
    if identity is not None and not identity.may_use(spec.name):
        return reject(ErrorCode.FORBIDDEN, f"model: the token does not allow {spec.name}", raw)
    if request.reply_topic is not None:
        pattern = settings.reply_topic_regex
        if pattern is None or not pattern.fullmatch(request.reply_topic):
            allowed = f"must match {pattern.pattern}" if pattern else "are not allowed here"
            return reject(
                ErrorCode.FORBIDDEN,
                f"reply_topic: '{request.reply_topic}' is not allowed; reply topics {allowed}",
                raw,
            )

    try:
        parameters = validate_parameters(spec.name, request.parameters)
    except InvalidParameters as exc:
        return reject(ErrorCode.INVALID_PARAMETERS, str(exc), raw)
    return Accepted(request, spec, parameters)
