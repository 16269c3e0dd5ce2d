"""The fuzz tier in the suite: a few thousand hostile records, interleaved with valid requests
on the same partitions, through the service as a real process on the real Kafka and MongoDB
(tests/fuzz.py has the generator and the checks). Reproduce a failure with the seed it prints:
`FUZZ_SEED=<seed> pytest tests/e2e/test_fuzz.py`; more records: `python -m benchmarks.fuzz`."""

from __future__ import annotations

import asyncio
import os
import random
import sys

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.e2e.conftest import KAFKA, Deployment, Simulator
from tests.fuzz import (
    FuzzRecord,
    Generator,
    Outcomes,
    Tokens,
    generate,
    generate_cancels,
    run,
    send_records,
)

pytestmark = pytest.mark.integration

SECRET = "fuzz-secret-that-is-at-least-32-bytes"
FAST = {"queued_s": 0.05, "running_s": 0.1}


def seed() -> int:
    return int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**31))


@pytest.mark.parametrize(
    ("auth_mode", "count"), [("none", 2500), ("jwt", 1500)], ids=["no-auth", "jwt"]
)
async def test_hostile_records_never_hold_up_valid_ones(
    deployment: Deployment, sim: Simulator, auth_mode: str, count: int
) -> None:
    await sim.configure(timing=FAST)
    env = {"AUTH_MODE": auth_mode, "AUTH_JWT_SECRET": SECRET} if auth_mode == "jwt" else {}
    instance = await deployment.start_instance(**env)
    fuzz_seed = seed()
    tokens = Tokens(SECRET) if auth_mode == "jwt" else None
    topics = deployment.topics
    records = generate(fuzz_seed, count, topics, tokens=tokens)
    cancels = generate_cancels(fuzz_seed, count // 20, topics, tokens)
    report = await run(
        seed=fuzz_seed,
        bootstrap=KAFKA,
        topics=topics,
        records=records,
        cancels=cancels,
        service=instance,
        stored_tasks=deployment.tasks,
        timeout_s=90,  # a cap: it takes 10 to 30 s
    )
    print(report.figures())
    assert not report.problems, (
        f"FUZZ_SEED={fuzz_seed} reproduces this.\n{report.figures()}\n{instance.log_tail(30)}"
    )
    assert report.dead_letters == report.hostile


# aiokafka writes header names with `.encode("utf-8")` in its pure-Python record builder: a
# name whose `encode` gives other bytes makes the record any client but the Java one can send.
BAD_HEADER_NAME = """
import asyncio, sys
from aiokafka import AIOKafkaProducer

class RawName(str):
    def encode(self, *args, **kwargs):
        return b"\\xff\\xfe-name"

async def main(bootstrap, topic, partition):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        value = b'{"request_id": "unreadable-1", "model": "cogvideox-flash", "parameters": {}}'
        sent = await producer.send_and_wait(
            topic, value, partition=int(partition), headers=[(RawName("x"), b"1")]
        )
        print(sent.offset)
    finally:
        await producer.stop()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_a_header_name_that_is_not_utf8_is_one_dead_letter(
    deployment: Deployment, sim: Simulator
) -> None:
    """aiokafka cannot read such a record: without the guard its partition never moves again."""
    await sim.configure(timing=FAST)
    topics = deployment.topics
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topics.requests, 3, 1), NewTopic(topics.cancel, 3, 1)])
    finally:
        await admin.close()
    generator = Generator(7, topics)
    first = [generator.valid() for _ in range(3)]
    for n, record in enumerate(first):
        record.partition = n % 2
    await send_records(KAFKA, topics.requests, first)
    bad_offset = await send_bad_header_name(topics.requests)
    await send_bad_header_name(topics.cancel)
    after_cancel = FuzzRecord("cancel", b"{not json")
    await send_records(KAFKA, topics.cancel, [after_cancel])
    after = [generator.valid(), generator.hostile(), generator.valid()]
    for record in after:
        record.partition = 0
    await send_records(KAFKA, topics.requests, after)

    instance = await deployment.start_instance()  # one fetch holds them all
    outcomes = Outcomes(KAFKA, topics)
    await outcomes.start()
    try:
        valid = {r.request_id for r in [*first, *after] if r.valid}
        for _ in range(300):
            if valid <= set(outcomes.completed) and len(outcomes.dead_letters) >= 2:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        assert valid <= set(outcomes.completed), instance.log_tail(30)
        hostile = after[1]
        assert dict(outcomes.dead_letters) == {(0, bad_offset): 1, (0, hostile.offset): 1}
        assert instance.process is not None and instance.process.poll() is None
    finally:
        await outcomes.stop()
    skipped = f"cancel {topics.cancel}[0]@0 skipped"
    moved_on = f"cancel {topics.cancel}[0]@{after_cancel.offset} ignored"  # the record after it
    for _ in range(300):
        log = instance.log_path.read_text(errors="replace")
        if skipped in log and moved_on in log:
            break
        await asyncio.sleep(0.1)
    assert "cannot be read" in log and skipped in log and moved_on in log, instance.log_tail(30)
    assert log.count("looking for it") == 2  # once per topic: no loop


async def send_bad_header_name(topic: str) -> int:
    """Send a record with a header name that is not UTF-8 to partition 0; its offset."""
    script = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        BAD_HEADER_NAME,
        KAFKA,
        topic,
        "0",
        env={**os.environ, "AIOKAFKA_NO_EXTENSIONS": "1"},
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(script.communicate(), 60)
    assert script.returncode == 0
    return int(stdout.decode().strip())
