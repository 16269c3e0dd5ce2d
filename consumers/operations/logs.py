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
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "<redacted>"
# Libraries that log request URLs or connection traces: quiet unless LOG_LEVEL=DEBUG.
CHATTY_LOGGERS = ("httpx", "httpcore", "hpack")

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
    """Wraps the log-record factory in place: every record is redacted when made."""

    def __init__(self, inner: Callable[..., logging.LogRecord]) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        return _redact_record(self.inner(*args, **kwargs))


def configure_logging(level: str) -> None:
    """The service's logging: `level` on the root logger, one stderr handler with FORMAT (the
    handlers already there, e.g. from `faststream run --log-config`, are kept and get the
    redacting formatter only if they have none), and redaction of every record everywhere."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"LOG_LEVEL must be a logging level name, not {level!r}")
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(factory))
    root = logging.getLogger()
    root.setLevel(numeric)
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        if handler.formatter is None:
            handler.setFormatter(RedactingFormatter(FORMAT))
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if numeric <= logging.DEBUG else "WARNING")
