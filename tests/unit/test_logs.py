"""Redaction of secrets from log lines (consumers.operations.logs)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from consumers.operations.logs import FORMAT, RedactingFormatter, configure_logging, redact

SECRETS = ("s3cret-signature", "LTAIkeyid", "sk-0123456789abcdef")


@pytest.fixture
def logging_state() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back afterwards."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging.getLogRecordFactory())
    chatty = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "hpack")}
    formatters = {h: h.formatter for h in root.handlers}
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for handler, formatter in formatters.items():
        handler.setFormatter(formatter)
    logging.setLogRecordFactory(saved[2])
    for name, level in chatty.items():
        logging.getLogger(name).setLevel(level)


UNCHANGED = None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "HTTP Request: GET https://b.oss-cn-beijing.aliyuncs.com/v.mp4?Expires=1"
            "&OSSAccessKeyId=LTAIkeyid&Signature=s3cret-signature "
            '"HTTP/1.1 200 OK"',
            "HTTP Request: GET https://b.oss-cn-beijing.aliyuncs.com/v.mp4?<redacted> "
            '"HTTP/1.1 200 OK"',
        ),
        ("see http://h/p#access_token=abc", "see http://h/p?<redacted>"),
        ("Authorization: Bearer sk-0123456789abcdef", "Authorization: <redacted>"),
        ("{'authorization': 'Bearer x.y.z'}", "{'authorization': '<redacted>'}"),
        (
            "[(b'Authorization', b'Bearer abc'), (b'Host', b'h')]",
            "[(b'Authorization', b'<redacted>'), (b'Host', b'h')]",
        ),
        (
            "headers {'x-api-key': 'k1', 'cookie': 'sid=1'}",
            "headers {'x-api-key': '<redacted>', 'cookie': '<redacted>'}",
        ),
        ("token Bearer abc.def rest", "token Bearer <redacted> rest"),
        ("mongodb://alice:pw@db:27017/x", "mongodb://<redacted>@db:27017/x"),
        ("key sk-0123456789abcdef0123456789abcdef used", "key sk-<redacted> used"),
        ("zhipu 0123456789abcdef0123456789abcdef.abcdefghijklmnop", "zhipu <redacted>"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "jwt <redacted>"),
        (
            "form Signature=s3cret-signature&OSSAccessKeyId=LTAIkeyid&a=1",
            "form Signature=<redacted>&OSSAccessKeyId=<redacted>&a=1",
        ),
        (
            '{"access_token": "abc", "password": "pw"}',
            '{"access_token": "<redacted>", "password": "<redacted>"}',
        ),
        # Ordinary lines are left alone.
        ("task r-1: downloading from https://h.example/v.mp4", UNCHANGED),
        ("cookie, x-api-key and authorization headers are not copied", UNCHANGED),
        ("request_id=order-42 key=order-42 sk-1", UNCHANGED),
    ],
)
def test_redact(text: str, expected: str | None) -> None:
    assert redact(text) == (text if expected is UNCHANGED else expected)


def test_every_handler_sees_redacted_records(logging_state: None) -> None:
    """A non-propagating library logger with its own handler (as FastStream's are), a traceback
    and a stack: all redacted, because records are redacted when they are made."""
    configure_logging("DEBUG")
    stream = io.StringIO()
    own = logging.StreamHandler(stream)
    own.setFormatter(logging.Formatter("%(message)s"))  # a plain formatter: no help from ours
    library = logging.getLogger("test.library")
    library.propagate = False
    library.addHandler(own)
    try:
        url = "https://h/v.mp4?OSSAccessKeyId=LTAIkeyid&Signature=s3cret-signature"
        library.warning("fetching %s with %s", url, "Bearer sk-0123456789abcdef")
        try:
            raise RuntimeError(f"Client error for url '{url}'")
        except RuntimeError:
            library.exception("failed", stack_info=True)
    finally:
        library.removeHandler(own)
        library.propagate = True
    text = stream.getvalue()
    assert "https://h/v.mp4?<redacted>" in text and "Traceback" in text
    for secret in SECRETS:
        assert secret not in text


def test_the_root_handler_gets_the_format_and_the_redacting_formatter(
    logging_state: None,
) -> None:
    root = logging.getLogger()
    root.handlers[:] = []
    configure_logging("info")
    assert root.level == logging.INFO
    (handler,) = root.handlers
    assert isinstance(handler.formatter, RedactingFormatter)
    assert handler.formatter._fmt == FORMAT
    # A record made before the factory was installed is still redacted on its way out.
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "Signature=%s", ("abc",), None)
    record.args = ("abc",)
    assert handler.formatter.format(record).endswith("x: Signature=<redacted>")
    configure_logging("INFO")  # idempotent: one handler, one factory wrapper
    assert len(root.handlers) == 1


def test_httpx_request_log_is_off_unless_debug(logging_state: None) -> None:
    configure_logging("INFO")
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert not logging.getLogger("httpcore").isEnabledFor(logging.INFO)
    assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)
    configure_logging("DEBUG")
    assert logging.getLogger("httpx").isEnabledFor(logging.DEBUG)


def test_unknown_level_is_refused(logging_state: None) -> None:
    with pytest.raises(ValueError, match="LOG_LEVEL"):
        configure_logging("LOUD")
