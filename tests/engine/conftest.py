"""The in-process tier's world (see harness.py): one per test, engines started on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.engine.harness import FaultyStore, Kafka, World, sim_app


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    app = sim_app()
    world = World(tmp_path, app.state.sim, app, FaultyStore(), Kafka())
    yield world
    await world.close()
