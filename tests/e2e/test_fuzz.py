"""The fuzz tier in the suite: a few thousand hostile records, interleaved with valid requests
on the same partitions, through the service as a real process on the real Kafka and MongoDB
(tests/fuzz.py has the generator and the checks). Reproduce a failure with the seed it prints:
`FUZZ_SEED=<seed> pytest tests/e2e/test_fuzz.py`; more records: `python -m benchmarks.fuzz`."""

from __future__ import annotations

import os
import random

import pytest

from tests.e2e.conftest import KAFKA, Deployment, Simulator
from tests.fuzz import Tokens, generate, generate_cancels, run

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
