"""Logging: the format, the level, and redaction of secrets from every log line.

What is never logged, whatever the level and whichever library logs it: the query string and
fragment of a URL (signed result URLs carry `OSSAccessKeyId`, `Signature`, `Expires`), the user
and password part of a URL (`mongodb://user:secret@host`), `Bearer` tokens, JWTs, DashScope keys
(`sk-…`), BigModel keys (`<32 hex>.<secret>`), the values of `Authorization`-like headers
(`authorization`, `proxy-authorization`, `x-api-key`, `api-key`, `cookie`, `set-cookie`) and
of signature- or token-like `name=value` pairs (`Signature=`, `OSSAccessKeyId=`,
`X-Amz-Signature=`, `access_token=`, `password=`, …). Each is replaced by `<redacted>`.

How: `configure_logging` installs a log-record factory that redacts each record as it is made
(its message with the arguments merged in, its traceback and stack text). Every handler therefore
sees only redacted text: ours on the root logger, FastStream's own (its loggers do not propagate
to the root, so a filter on the root handler would miss them), and any a test or an operator
adds. The root handler's formatter redacts its output once more, for records made before the
factory was installed. Besides, httpx logs every request at INFO with its full URL, and httpcore
traces every connection at DEBUG: both are kept at WARNING unless `LOG_LEVEL=DEBUG` (then they
log, redacted).

Formats (`LOG_FORMAT`): `text` (the default, FORMAT below) or `json`: one JSON object per line,
with `time` (UTC, ISO 8601), `level`, `logger` and `message`, `exception` / `stack` when there
is one, FastStream's `topic`, `group_id` and `message_id` on its access lines, and `request_id`,
`task_id`, `provider`, `model`, `upstream_task_id` and `trace_id` (the task's W3C trace, see
`consumers.operations.tracing`) on every line logged while a task is concerned, with `span_id`
when a span of ours is at work. Those come from a context variable set once per step
(`task_context(task)` around each actor step in `consumers.engine.actor`; `bind_task(...)` adds
or changes fields in the current context), copied onto each record as it is made, so no log call
names them. Every line is JSON in
that mode, FastStream's own included (its loggers do not propagate: their handlers get the JSON
formatter too, and the access logger a JSON handler before FastStream makes its own), and so are
Python's warnings (routed to logging). Each field is redacted before it is encoded.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Protocol

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")
REDACTED = "<redacted>"
# Libraries that log request URLs or connection traces: quiet unless LOG_LEVEL=DEBUG.
CHATTY_LOGGERS = ("httpx", "httpcore", "hpack")
# The fields a task puts on every line logged in its context.
TASK_FIELDS = (
    "request_id",
    "task_id",
    "provider",
    "model",
    "upstream_task_id",
    "trace_id",
    "span_id",
)
# Fields FastStream's access logger sets on its records (its ExtendedFilter).
ACCESS_FIELDS = ("topic", "group_id", "message_id")
# FastStream's access logger for Kafka: made when the broker starts, writing to stdout.
FASTSTREAM_ACCESS = "faststream.access.kafka"

_HEADERS = r"authorization|proxy-authorization|x-api-key|api-key|cookie|set-cookie"
_PAIRS = (
    r"signature|ossaccesskeyid|x-oss-signature|x-oss-credential|x-oss-security-token"
    r"|security-token|securitytoken|x-amz-signature|x-amz-credential|x-amz-security-token"
    r"|accesskeyid|access_?key|secret(?:_?key)?|access_token|refresh_token|id_token|token"
    r"|api_?key|password|passwd|sig"
)
_RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # scheme://user:password@host -> scheme://<redacted>@host
    (re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s@'\"<>]+@", re.I), rf"\1{REDACTED}@"),
    # URL query string and fragment (a URL runs until white space or a quote).
    (
        re.compile(r"\b((?:https?|wss?|ftp)://[^\s?#'\"<>]*)[?#][^\s'\"<>]*", re.I),
        rf"\1?{REDACTED}",
    ),
    # Header values: "Authorization: Bearer x", "'authorization': 'x'", "(b'Cookie', b'x')".
    (
        re.compile(
            rf"""(\b(?:{_HEADERS})\b(?:['"]?\s*[:=]\s*(?:b?['"])?|['"]\s*,\s*b?['"]))[^'"\r\n]+""",
            re.I,
        ),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.I), rf"\1 {REDACTED}"),
    # name=value pairs outside URLs too (a query string quoted without its URL, a form body).
    (re.compile(rf"\b((?:{_PAIRS})=)[^&\s'\"<>,;]+", re.I), rf"\1{REDACTED}"),
    # JSON-ish "token": "value" and "api_key": "value".
    (
        re.compile(rf"""(["'](?:{_PAIRS})["']\s*:\s*["'])[^"']*""", re.I),
        rf"\1{REDACTED}",
    ),
    # Bare keys and tokens: JWTs, DashScope sk-…, BigModel <id>.<secret>.
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"\bsk-[A-Za-z0-9][A-Za-z0-9_-]{2,}"), f"sk-{REDACTED}"),
    (re.compile(r"\b[0-9a-f]{32}\.[A-Za-z0-9]{8,}\b"), REDACTED),
)


def redact(text: str) -> str:
    """`text` with every secret the module docstring lists replaced by `<redacted>`."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class RedactingFormatter(logging.Formatter):
    """A formatter whose whole output (message, traceback, stack) is redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; every string in it redacted."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        context: Mapping[str, str] = getattr(record, "video_task", None) or {}
        for name in (*TASK_FIELDS, *ACCESS_FIELDS):
            value = getattr(record, name, None) or context.get(name)  # `extra=` comes first
            if value not in (None, ""):
                line[name] = redact(str(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        # ASCII only: a lone surrogate or an odd byte in a message cannot break the line.
        return json.dumps(line, ensure_ascii=True, default=str)


# --- the task context ---------------------------------------------------------------------


class TaskLike(Protocol):
    """What `task_context` reads of a task (consumers.storage.task.Task)."""

    @property
    def id(self) -> str: ...
    @property
    def request_id(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def upstream_task_id(self) -> str | None: ...
    @property
    def trace_context(self) -> Mapping[str, str] | None: ...


_TASK: ContextVar[Mapping[str, str] | None] = ContextVar("video_task_log_context", default=None)


def task_fields(task: TaskLike) -> dict[str, str]:
    fields = {
        "request_id": task.request_id,
        "task_id": task.id,
        "provider": task.provider,
        "model": task.model,
        "upstream_task_id": task.upstream_task_id,
        # `00-<trace id>-<span id>-<flags>`, checked at intake
        "trace_id": (task.trace_context or {}).get("traceparent", "")[3:35],
    }
    return {name: value for name, value in fields.items() if value}


@contextmanager
def task_context(task: TaskLike | None = None, **fields: str | None) -> Iterator[None]:
    """Every line logged inside (in this asyncio task, and the tasks it starts) carries the
    task's ids: `with task_context(task): ...`. Keyword fields add to or override them
    (`task_context(task_id=..., request_id=...)` when only ids are at hand)."""
    install_record_factory()
    token = _TASK.set(_merged(task_fields(task) if task is not None else {}, fields))
    try:
        yield
    finally:
        _TASK.reset(token)


def bind_task(**fields: str | None) -> None:
    """Adds or changes fields of the current task context, until it ends (e.g. the
    `upstream_task_id` a submit has just obtained). Outside one, starts one for the rest of
    the current asyncio task."""
    install_record_factory()
    _TASK.set(_merged(_TASK.get() or {}, fields))


def current_task_fields() -> Mapping[str, str]:
    return _TASK.get() or {}


def _merged(base: Mapping[str, str], fields: Mapping[str, str | None]) -> dict[str, str]:
    merged = dict(base)
    for name, value in fields.items():
        if name not in TASK_FIELDS:
            raise ValueError(f"unknown task log field {name!r}; known: {', '.join(TASK_FIELDS)}")
        if value:
            merged[name] = str(value)
        else:
            merged.pop(name, None)
    return merged


def _redact_record(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it when the record is emitted
        return record
    record.msg, record.args = redact(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(_TRACEBACKS.formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


_TRACEBACKS = logging.Formatter()


class _RedactingFactory:
    """Wraps the log-record factory in place: every record is redacted when made, and gets
    the fields of the task context it is made in."""

    def __init__(self, inner: Callable[..., logging.LogRecord]) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = _redact_record(self.inner(*args, **kwargs))
        # One attribute of our own: a field set by name would make `extra=` naming it fail.
        if (fields := _TASK.get()) is not None:
            record.video_task = fields
        return record


def install_record_factory() -> None:
    """Records made from now on are redacted and carry their task context (idempotent)."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(factory))


def configure_logging(level: str, fmt: str = "text") -> None:
    """The service's logging: `level` on the root logger, one stderr handler (the handlers
    already there, e.g. from `faststream run --log-config`, are kept), and redaction of every
    record everywhere.

    `fmt` "text": handlers without a formatter get FORMAT, redacted. "json": every handler of
    every logger there is gets the JSON formatter (FastStream's included), FastStream's access
    logger gets a JSON handler on stdout before FastStream would make its own, and Python's
    warnings go through logging."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"LOG_LEVEL must be a logging level name, not {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    install_record_factory()
    root = logging.getLogger()
    root.setLevel(numeric)
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    if fmt == "json":
        _all_json()
    else:
        for handler in root.handlers:
            if handler.formatter is None:
                handler.setFormatter(RedactingFormatter(FORMAT))
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if numeric <= logging.DEBUG else "WARNING")


def _all_json() -> None:
    formatter = JsonFormatter()
    access = logging.getLogger(FASTSTREAM_ACCESS)
    # FastStream adds its own (text) handler only when the logger has no stdout stream handler.
    if not any(
        isinstance(h, logging.StreamHandler) and h.stream is sys.stdout for h in access.handlers
    ):
        access.addHandler(logging.StreamHandler(sys.stdout))
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            handler.setFormatter(formatter)
    logging.captureWarnings(True)
