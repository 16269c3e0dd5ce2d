"""No signed URL, key or token in any log line, at any level, across whole task lives.

The simulator's result URLs carry `Expires=…&OSSAccessKeyId=simulator&Signature=…` as
DashScope's do; its vendors are called with `Bearer sk-one` and `Bearer id.secret`. Tasks of both
vendors complete, one download fails on an expired link and one on a body that is not an MP4, all
with logging at DEBUG; then every record is formatted with a plain formatter (stricter than the
service's own, which redacts again) and searched.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from consumers.operations.logs import FORMAT, configure_logging
from tests.engine.harness import World, request

LEAKS = re.compile(
    r"(Signature|OSSAccessKeyId|Expires)=(?!<redacted>)"
    r"|https?://[^\s'\"?]*\?(?!<redacted>)"
    r"|sk-one|sk-two|id\.secret|Bearer (?!<redacted>)|=simulator",
    re.I,
)


@pytest.fixture
def debug_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging.getLogRecordFactory())
    chatty = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "hpack")}
    configure_logging("DEBUG")
    caplog.set_level(logging.DEBUG)
    yield caplog
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    logging.setLogRecordFactory(saved[2])
    for name, level in chatty.items():
        logging.getLogger(name).setLevel(level)


async def test_no_secret_in_any_log_line(
    world: World, debug_logging: pytest.LogCaptureFixture
) -> None:
    engine = world.start_engine()
    await engine.start()
    done = [request("wanx2.1-t2v-turbo"), request("cogvideox-flash")]
    await world.send(*done)
    for body in done:
        assert await world.finished(body["request_id"]) == "completed"
    for action in ("expired_url", "not_mp4"):
        world.sim.faults.add({"action": action, "times": 1})
        body = request("wanx2.1-t2v-turbo")
        await world.send(body)
        assert await world.finished(body["request_id"]) == "failed"

    plain = logging.Formatter(FORMAT)
    lines = [plain.format(record) for record in debug_logging.records]
    # The test means something only if the signed URLs were logged at all (httpx, at INFO).
    assert any("/results/" in line and "?<redacted>" in line for line in lines), lines
    leaks = [line for line in lines if LEAKS.search(line)]
    assert leaks == []
