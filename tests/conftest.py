"""Fixtures shared by the whole suite: the local Kafka broker and MongoDB-wire server.

The services come from devservices/services.sh (see devservices/README.md). The session fixture
`services_ready` starts them if they are not running (starting is idempotent), so both
`make test` and a plain `pytest` work. Tests that need them are marked
`@pytest.mark.integration` and ask for one of the fixtures below; unit tests ask for none and
never touch the services.

Addresses follow the same environment variables as services.sh: KAFKA_PORT (9092),
KAFKA_SASL_PORT (9094), MONGO_PORT (27017). With DEVSERVICES_EXTERNAL=1 the suite starts
nothing and uses whatever already listens there.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from tests.services import Document, KafkaSasl

ROOT = Path(__file__).resolve().parents[1]
SERVICES_SH = ROOT / "devservices" / "services.sh"
HOST = "127.0.0.1"

# --- the services (session) -----------------------------------------------------------------


@pytest.fixture(scope="session")
def services_ready() -> None:
    """Kafka and the MongoDB-wire server are running and answering."""
    if os.environ.get("DEVSERVICES_EXTERNAL") == "1":
        return
    result = subprocess.run(
        [str(SERVICES_SH), "start"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"devservices/services.sh start failed:\n{result.stderr}", pytrace=False)


@pytest.fixture(scope="session")
def kafka_bootstrap(services_ready: None) -> str:
    """Bootstrap address of the PLAINTEXT listener, e.g. '127.0.0.1:9092'."""
    return f"{HOST}:{os.environ.get('KAFKA_PORT', '9092')}"


@pytest.fixture(scope="session")
def kafka_sasl(services_ready: None) -> KafkaSasl:
    """The SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and its dev user."""
    return KafkaSasl(
        bootstrap_servers=f"{HOST}:{os.environ.get('KAFKA_SASL_PORT', '9094')}",
        username="alice",
        password="alice-secret",
    )


@pytest.fixture(scope="session")
def mongo_url(services_ready: None) -> str:
    """MongoDB URL of the local server, e.g. 'mongodb://127.0.0.1:27017'."""
    return f"mongodb://{HOST}:{os.environ.get('MONGO_PORT', '27017')}"


@pytest.fixture(scope="session")
async def mongo_client(mongo_url: str) -> AsyncIterator[AsyncMongoClient[Document]]:
    """One pymongo async client for the session (the event loop is session-scoped)."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True
    )
    yield client
    await client.close()


# --- per-test names -------------------------------------------------------------------------


def _slug(request: pytest.FixtureRequest, limit: int) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", request.node.name).strip("_")[:limit]


@pytest.fixture
def make_topic(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Factory of names unique to this test: make_topic("req") -> "test.<test>.req.<hex>"."""
    slug = _slug(request, 60)

    def make(purpose: str = "t") -> str:
        return f"test.{slug}.{purpose}.{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def topic(make_topic: Callable[[str], str]) -> str:
    """A topic name no other test uses (the broker auto-creates it on first use, 1 partition)."""
    return make_topic("t")


@pytest.fixture
async def mongo_db_name(mongo_client: AsyncMongoClient[Document]) -> AsyncIterator[str]:
    """A database name no other test uses; the database is dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    yield name
    await mongo_client.drop_database(name)


@pytest.fixture
def mongo_db(
    mongo_client: AsyncMongoClient[Document], mongo_db_name: str
) -> AsyncDatabase[Document]:
    """The per-test database (see mongo_db_name), on the session's async client."""
    return mongo_client[mongo_db_name]
