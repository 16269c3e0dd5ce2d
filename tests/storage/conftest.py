from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from consumers.storage.mongo import MongoTaskStore


@pytest.fixture
async def mongo_store(services_ready: None) -> AsyncIterator[MongoTaskStore]:
    """A MongoTaskStore on a database of its own on the real server, dropped afterwards."""
    port = os.environ.get("MONGO_PORT", "27017")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{port}", tz_aware=True, serverSelectionTimeoutMS=5000
    )
    name = f"store_{uuid.uuid4().hex[:12]}"
    mongo = MongoTaskStore(client, name)
    await mongo.ensure_indexes()
    yield mongo
    await client.drop_database(name)
    await client.close()
