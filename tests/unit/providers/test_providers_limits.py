"""Rate limiter and running slots: order and accounting, not wall time."""

from __future__ import annotations

import asyncio

import pytest

from providers import RateLimiter, RunningSlots


async def test_the_rate_limiter_serves_in_call_order_and_spaces_calls() -> None:
    limiter = RateLimiter(rate_per_s=200)  # 5 ms apart
    order: list[int] = []
    stamps: list[float] = []
    loop = asyncio.get_running_loop()

    async def call(i: int) -> None:
        await limiter.acquire()
        order.append(i)
        stamps.append(loop.time())

    await asyncio.gather(*(call(i) for i in range(20)))
    assert order == list(range(20))
    # 20 calls at 200/s cannot all pass in less than 19 intervals
    assert stamps[-1] - stamps[0] >= 19 * 0.005 * 0.9


async def test_the_first_call_does_not_wait_and_burst_lets_several_through() -> None:
    limiter = RateLimiter(rate_per_s=0.001, burst=3)  # one call per 1000 s after the burst
    for _ in range(3):
        await asyncio.wait_for(limiter.acquire(), timeout=1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(limiter.acquire(), timeout=0.05)


async def test_a_rate_of_zero_means_no_limit() -> None:
    limiter = RateLimiter(rate_per_s=0)
    await asyncio.wait_for(asyncio.gather(*(limiter.acquire() for _ in range(1000))), timeout=1)


async def test_a_cancelled_waiter_gives_its_turn_back() -> None:
    limiter = RateLimiter(rate_per_s=0.001)  # the second call would wait 1000 s
    await limiter.acquire()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(limiter.acquire(), timeout=0.01)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(limiter.acquire(), timeout=0.01)
    # had the cancelled waiters kept their slots, the next call would wait 3000 s
    assert 999 < limiter.wait_time() <= 1000


def test_running_slots_count_per_model() -> None:
    slots = RunningSlots(2)
    assert slots.try_acquire("a") and slots.try_acquire("a")
    assert not slots.try_acquire("a")
    assert slots.try_acquire("b")  # another model has its own slots
    slots.release("a")
    assert slots.in_use("a") == 1
    assert slots.try_acquire("a")


def test_force_acquire_may_go_over_the_limit() -> None:
    slots = RunningSlots(1)
    slots.force_acquire("a")
    slots.force_acquire("a")  # taken over after a crash: it runs upstream anyway
    assert slots.in_use("a") == 2
    assert not slots.try_acquire("a")
    slots.release("a")
    assert not slots.try_acquire("a")  # still at the limit
    slots.release("a")
    assert slots.try_acquire("a")


def test_limits_per_model_and_zero_means_none() -> None:
    slots = RunningSlots({"a": 1})
    assert slots.try_acquire("a") and not slots.try_acquire("a")
    assert all(slots.try_acquire("b") for _ in range(100))  # no limit configured for b
    unlimited = RunningSlots(0)
    assert all(unlimited.try_acquire("a") for _ in range(100))


def test_releasing_more_than_acquired_does_not_go_negative() -> None:
    slots = RunningSlots(1)
    slots.release("a")
    assert slots.in_use("a") == 0
    assert slots.try_acquire("a") and not slots.try_acquire("a")


async def test_waiters_get_slots_in_turn_and_try_acquire_does_not_jump_the_queue() -> None:
    slots = RunningSlots(1)
    assert slots.try_acquire("a")
    served: list[int] = []

    async def wait(i: int) -> None:
        await slots.acquire("a")
        served.append(i)

    waiters = [asyncio.create_task(wait(i)) for i in range(3)]
    await asyncio.sleep(0)
    assert not slots.try_acquire("a")  # others are queued
    for expected in range(3):
        slots.release("a")
        await asyncio.sleep(0)
        assert served == list(range(expected + 1))
    await asyncio.gather(*waiters)
    assert slots.in_use("a") == 1


async def test_a_cancelled_waiter_does_not_keep_a_slot() -> None:
    slots = RunningSlots(1)
    slots.force_acquire("a")
    gone = asyncio.create_task(slots.acquire("a"))
    later = asyncio.create_task(slots.acquire("a"))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    slots.release("a")
    await asyncio.wait_for(later, timeout=1)
    assert slots.in_use("a") == 1
