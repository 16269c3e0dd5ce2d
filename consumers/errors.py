"""The service's own exceptions, and which foreign ones mean "the infrastructure failed".

    Exception
    ├── TaskMoved        the task changed without this actor (cancel, takeover, deadline):
    │                    reload it and carry on from what is stored
    ├── ShuttingDown     the instance is stopping: no new upstream work may start
    ├── LeaseLost        this instance cannot be sure it still holds its leases (its renewals
    │                    failed or its event loop stalled): no side effect may start
    ├── ProviderError    (providers.base) a vendor call failed, classified into a contract code
    └── DownloadError    (consumers.media.download) a video could not be fetched or checked

`INFRA_ERRORS` are the errors of MongoDB, Kafka and the local disk. They say nothing about the
task or the record at hand: the work is retried after a pause, never failed or dead-lettered.
"""

from __future__ import annotations

from aiokafka.errors import KafkaError
from pymongo.errors import PyMongoError


class TaskMoved(Exception):
    """The task changed without this actor: reload it."""


class ShuttingDown(Exception):
    """The instance is stopping; no new submit may start."""


class LeaseLost(Exception):
    """This instance's leases may have expired; no side effect may start until renewed."""


INFRA_ERRORS: tuple[type[BaseException], ...] = (PyMongoError, KafkaError, OSError, TimeoutError)
INFRA_RETRY_S = 2.0
