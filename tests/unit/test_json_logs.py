"""LOG_FORMAT=json and the task log context (consumers/operations/logs.py). A whole service run
in JSON is read line by line in tests/e2e/test_observability.py."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import warnings
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from faststream._internal.logger.logging import logger as faststream_logger

from consumers.operations.logs import (
    FASTSTREAM_ACCESS,
    JsonFormatter,
    RedactingFormatter,
    bind_task,
    configure_logging,
    current_task_fields,
    task_context,
)
from consumers.settings import Settings

SECRETS = ("s3cret-signature", "LTAIkeyid", "sk-0123456789abcdef", "eyJhbGciOiJIUzI1NiJ9")
TASK = SimpleNamespace(
    id="task-1",
    request_id="order-42",
    provider="aliyun",
    model="wanx2.1-t2v-turbo",
    upstream_task_id=None,
    trace_context={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
)


@pytest.fixture
def logging_state() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back afterwards."""
    root = logging.getLogger()
    loggers = [root] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    handlers = {lg: list(lg.handlers) for lg in loggers}
    formatters = {h: h.formatter for lg in loggers for h in lg.handlers}
    saved = (root.level, logging.getLogRecordFactory())
    chatty = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "hpack")}
    access = logging.getLogger(FASTSTREAM_ACCESS)
    access_handlers = list(access.handlers)
    yield
    logging.captureWarnings(False)
    access.handlers[:] = access_handlers
    for logger, kept in handlers.items():
        logger.handlers[:] = kept
    for handler, formatter in formatters.items():
        handler.setFormatter(formatter)
    root.setLevel(saved[0])
    logging.setLogRecordFactory(saved[1])
    for name, level in chatty.items():
        logging.getLogger(name).setLevel(level)


def capture(logger: logging.Logger | None = None) -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    (logger or logging.getLogger()).addHandler(handler)
    return stream


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_redacted_json_line_with_the_task_ids(logging_state: None) -> None:
    configure_logging("DEBUG", "json")
    stream = capture()
    log = logging.getLogger("video.engine")
    url = "https://b.oss-cn-beijing.aliyuncs.com/v.mp4?OSSAccessKeyId=LTAIkeyid&Signature=s3cret-signature"
    log.info("outside any task")
    with task_context(TASK):
        log.info("fetching %s\nwith Bearer %s", url, "sk-0123456789abcdef")
        bind_task(upstream_task_id="up-7")
        try:
            raise RuntimeError(f"token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln for {url}")
        except RuntimeError:
            log.exception("failed \udcff odd")
    log.warning("after the task")
    outside, fetching, failed, after = lines(stream)
    assert set(outside) == {"time", "level", "logger", "message"}
    assert outside["level"] == "INFO" and outside["logger"] == "video.engine"
    assert outside["time"].endswith("+00:00")
    ids = {"request_id": "order-42", "task_id": "task-1", "provider": "aliyun"}
    assert ids.items() <= fetching.items() and fetching["model"] == "wanx2.1-t2v-turbo"
    assert "upstream_task_id" not in fetching
    assert fetching["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"  # the request's trace
    assert "span_id" not in fetching  # no span of ours at work
    assert "\n" in fetching["message"]  # kept inside the one line, escaped
    assert "?<redacted>" in fetching["message"]
    assert failed["upstream_task_id"] == "up-7" and failed["level"] == "ERROR"
    assert "Traceback" in failed["exception"] and "RuntimeError" in failed["exception"]
    assert "request_id" not in after
    text = stream.getvalue()
    assert text.isascii()
    for secret in SECRETS:
        assert secret not in text


def test_extra_fields_win_over_the_context_and_do_not_clash(logging_state: None) -> None:
    configure_logging("INFO", "json")
    stream = capture()
    with task_context(TASK):
        # A field set by name on records would make this `extra=` raise KeyError.
        logging.getLogger("video.x").info("other", extra={"task_id": "task-2"})
    (line,) = lines(stream)
    assert line["task_id"] == "task-2" and line["request_id"] == "order-42"


async def test_the_context_belongs_to_its_asyncio_task(logging_state: None) -> None:
    seen: dict[str, dict[str, str]] = {}

    async def actor(name: str) -> None:
        with task_context(SimpleNamespace(**{**vars(TASK), "id": name})):
            await asyncio.sleep(0.01)
            seen[name] = dict(current_task_fields())

    await asyncio.gather(actor("a"), actor("b"))
    assert seen["a"]["task_id"] == "a" and seen["b"]["task_id"] == "b"
    assert current_task_fields() == {}
    with task_context(task_id="t-9", request_id="r-9", upstream_task_id=None):
        assert current_task_fields() == {"task_id": "t-9", "request_id": "r-9"}
    with pytest.raises(ValueError, match="unknown task log field"):
        bind_task(user="x")


def test_faststream_and_warnings_are_json_too(logging_state: None) -> None:
    """FastStream's loggers do not propagate: their handlers get the JSON formatter, and its
    access logger a stdout handler before FastStream would make its own text one."""
    main = faststream_logger  # made when FastStream is imported, with its own stderr handler
    configure_logging("INFO", "json")
    assert main.handlers and all(isinstance(h.formatter, JsonFormatter) for h in main.handlers)
    access = logging.getLogger(FASTSTREAM_ACCESS)

    def on_stdout() -> list[logging.Handler]:
        return [
            h
            for h in access.handlers
            if isinstance(h, logging.StreamHandler) and h.stream is sys.stdout
        ]

    assert len(on_stdout()) == 1
    assert all(isinstance(h.formatter, JsonFormatter) for h in access.handlers)
    configure_logging("INFO", "json")  # idempotent: still one
    assert len(on_stdout()) == 1

    stream = capture(access)
    access.info("Received", extra={"topic": "video.requests", "message_id": "abc", "group_id": ""})
    (line,) = lines(stream)
    assert line["topic"] == "video.requests" and line["message_id"] == "abc"
    assert "group_id" not in line  # empty: left out

    warned = capture(logging.getLogger("py.warnings"))
    warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)
    (line,) = lines(warned)
    assert "deprecated thing" in line["message"]


def test_text_stays_the_default(logging_state: None) -> None:
    root = logging.getLogger()
    root.handlers[:] = []
    configure_logging("INFO")
    (handler,) = root.handlers
    assert isinstance(handler.formatter, RedactingFormatter)
    assert Settings(_env_file=None).log_format == "text"


def test_an_unknown_format_is_refused(logging_state: None) -> None:
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        configure_logging("INFO", "yaml")
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        Settings(_env_file=None, log_format="xml")
    assert Settings(_env_file=None, log_format="JSON").log_format == "json"
