"""The request topic's consumer lag, exported by the service itself.

`video_consumer_lag_messages{topic,partition}`: for each partition of the request topic assigned
to this instance, the records not yet committed by the service's consumer group (the partition's
end offset less the group's committed offset; less its first offset when the group has committed
nothing there yet). Sampled every SAMPLE_S seconds in the background, served from the last
sample, so a scrape never waits for Kafka. A partition another instance holds is that instance's
to report; after a rebalance each partition is reported by its new owner only. When a sample
fails (Kafka unreachable, a rebalance under way), no series is exported until one succeeds:
a gap on the dashboard, never a stale figure.

With manual commits after each stored batch, the lag is what Kafka holds that this instance has
not yet made into tasks: it grows while intake is paused (`video_intake_paused`), while MongoDB
is out, or when the instances cannot keep up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

log = logging.getLogger("video.lag")

SAMPLE_S = 5.0
NAME = "video_consumer_lag_messages"
HELP = (
    "Records of the request topic not yet committed by the service's consumer group, per "
    "partition assigned to this instance (end offset less committed offset)."
)


class ConsumerLag:
    """Samples the lag of `subscriber`'s partitions of `topic`; a collector of `registry`
    from `start` to `stop`.

    `subscriber` is FastStream's subscriber: its `consumer` (aiokafka's, None while stopped)
    gives the assignment and the offsets."""

    def __init__(
        self,
        subscriber: Any,
        topic: str,
        registry: CollectorRegistry,
        *,
        interval_s: float = SAMPLE_S,
    ) -> None:
        self._subscriber = subscriber
        self._topic = topic
        self._interval_s = interval_s
        self._lags: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._registry = registry

    @property
    def lags(self) -> dict[int, int]:
        """The last sample: lag by partition."""
        return dict(self._lags)

    def start(self) -> None:
        """Register with the registry and sample in the background until `stop`."""
        if self._task is None:
            self._registry.register(self)
            self._task = asyncio.create_task(self._run(), name="consumer lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
            self._registry.unregister(self)
        self._lags = {}

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                # Not asyncio.wait_for: in Python 3.11 it can swallow the cancel of `stop()` when
                # the sample ends at the same moment, and the loop then never stops.
                async with asyncio.timeout(self._interval_s * 2):
                    self._lags = await self.sample()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._lags = {}
                failures += 1
                if failures == 3:  # not each time: an outage is logged by the parts it stops
                    log.warning("consumer lag of %s cannot be read: %r", self._topic, exc)
            await asyncio.sleep(self._interval_s)

    async def sample(self) -> dict[int, int]:
        """Lag by partition now, for the partitions of the topic assigned to this consumer."""
        consumer = self._subscriber.consumer
        if consumer is None:
            return {}
        partitions = sorted(
            (tp for tp in consumer.assignment() if tp.topic == self._topic),
            key=lambda tp: tp.partition,
        )
        if not partitions:
            return {}
        ends = await consumer.end_offsets(partitions)
        committed: dict[TopicPartition, int | None] = {
            tp: await consumer.committed(tp) for tp in partitions
        }
        never = [tp for tp, offset in committed.items() if offset is None]
        firsts = await consumer.beginning_offsets(never) if never else {}
        lags = {}
        for tp in partitions:
            done = committed[tp]
            start = firsts.get(tp, 0) if done is None else done
            lags[tp.partition] = max(0, int(ends[tp]) - int(start))
        return lags

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(NAME, HELP, labels=["topic", "partition"])]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(NAME, HELP, labels=["topic", "partition"])
        for partition, lag in sorted(self._lags.items()):
            family.add_metric([self._topic, str(partition)], lag)
        yield family
