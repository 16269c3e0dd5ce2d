"""The fuzz tier at scale: hostile records and valid requests through the real service.

    python -m benchmarks.fuzz [--records 20000] [--seed N] [--auth none|jwt]
                              [--valid-ratio 0.15] [--big-ratio 0.01]

Starts the simulator and one service instance (like benchmarks.pipeline) on the running Kafka
and MongoDB-wire server (`make services`), sends the records of tests/fuzz.py interleaved on the
same partitions, with hostile cancels beside them, and prints figures: records and bytes, the
time to every outcome, records per second, dead letters by code, the service's CPU and peak
RSS. It exits 1, printing the seed, if any check fails (a valid request not completed, a
hostile record without exactly one dead letter, a task left active, the service gone).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from typing import Any

from pymongo import AsyncMongoClient

from benchmarks.pipeline import KAFKA, MONGO, Bench
from tests.fuzz import Tokens, generate, generate_cancels, run

SECRET = "fuzz-secret-that-is-at-least-32-bytes"


async def main(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    env = {
        "ALIYUN_API_KEY": "sk-bench",
        "ALIYUN_SUBMITS_PER_S": "0",
        "ALIYUN_RUNNING_PER_MODEL": "0",
        "ALIYUN_QUERIES_PER_S": "0",
        "POLL_FIRST_S": "0.2",
        "POLL_INTERVAL_MIN_S": "0.2",
        "POLL_INTERVAL_MAX_S": "0.5",
    }
    if args.auth == "jwt":
        env.update(AUTH_MODE="jwt", AUTH_JWT_SECRET=SECRET)
    bench = Bench({"timing": {"queued_s": 0.05, "running_s": 0.1}}, env)
    bench.service_env["ALIYUN_BASE_URL"] = f"http://127.0.0.1:{bench.sim_port}"
    tokens = Tokens(SECRET) if args.auth == "jwt" else None
    records = generate(
        seed,
        args.records,
        bench.topics,
        valid_ratio=args.valid_ratio,
        big_ratio=args.big_ratio,
        tokens=tokens,
    )
    cancels = generate_cancels(seed, args.records // 20, bench.topics, tokens)

    async def stored_tasks() -> list[dict[str, Any]]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO)
        try:
            return await client[bench.database]["tasks"].find({}).to_list(None)
        finally:
            await client.close()

    async with bench:
        report = await run(
            seed=seed,
            bootstrap=KAFKA,
            topics=bench.topics,
            records=records,
            cancels=cancels,
            service=bench.services[0],
            stored_tasks=stored_tasks,
            timeout_s=args.timeout,
        )
        cpu, _, peak = bench.usage()
    print(f"fuzz ({args.auth} auth)")
    print(report.figures())
    print(f"service: {cpu:.1f} s CPU, peak RSS {peak / 2**20:.0f} MiB")
    if report.problems:
        print(f"FAILED: python -m benchmarks.fuzz --records {args.records} --seed {seed}")
        return 1
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--auth", choices=["none", "jwt"], default="none")
    parser.add_argument("--valid-ratio", type=float, default=0.15)
    parser.add_argument("--big-ratio", type=float, default=0.01)
    parser.add_argument("--timeout", type=float, default=600.0)
    sys.exit(asyncio.run(main(parser.parse_args())))
