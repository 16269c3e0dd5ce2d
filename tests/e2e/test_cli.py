"""The `video-service` command (python -m video_client) against the service as a real process,
as a person would run it in a script: exit codes and what it prints."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import KAFKA, Deployment, Simulator
from tests.harness import ROOT

pytestmark = pytest.mark.integration


async def cli(deployment: Deployment, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "PYTHONPATH": str(ROOT / "client"),
        "COLUMNS": "200",
        **deployment.topics.env(),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "video_client", *args, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_submit_wait_prints_the_timeline_and_the_video(
    deployment: Deployment, sim: Simulator
) -> None:
    await deployment.start_instance()
    request_id = f"cli-{uuid.uuid4().hex[:8]}"
    code, out, err = await cli(
        deployment, "submit", "wanx2.1-t2v-turbo", "-p", "prompt=a kitten on the grass",
        "-p", "size=832*480", "-p", "duration=5", "--request-id", request_id, "--wait",
    )  # fmt: skip
    assert code == 0, (out, err)
    for status in ("accepted", "submitted", "completed"):
        assert status in out
    video = next(deployment.video_dir.glob("aliyun_*.mp4"))
    assert str(video) in out
    assert "832x480" in out and "5.0 s" in out and "KiB" in out

    code, out, _ = await cli(deployment, "status", request_id)
    assert code == 0 and str(video) in out and "completed" in out
    code, out, _ = await cli(deployment, "status", request_id, "--json")
    body = json.loads(out)
    assert [e["status"] for e in body["statuses"]][-1] == "completed"
    assert body["completed"]["result"]["videos"][0]["local_path"] == str(video)

    code, out, _ = await cli(deployment, "tail", "--since", "10m", "--status", "completed",
                             "--limit", "1", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["request_id"] == request_id


async def test_an_invalid_parameter_is_reported_and_nothing_is_sent(
    deployment: Deployment, sim: Simulator
) -> None:
    await deployment.collector.start()
    await deployment.start_instance()
    code, _, err = await cli(
        deployment, "submit", "cogvideox-2", "-p", "prompt=x", "-p", "fps=24", "--wait"
    )
    assert code == 2
    assert "parameters.fps: 24 is not allowed for cogvideox-2; allowed: 30, 60" in " ".join(
        err.split()
    )
    code, _, err = await cli(deployment, "submit", "sora", "-p", "prompt=x")
    assert code == 2 and "unknown model 'sora'" in err
    await asyncio.sleep(1)
    assert deployment.collector.all == [] and await sim.generations() == 0


async def test_cancel_and_watch(deployment: Deployment, sim: Simulator) -> None:
    await sim.configure(timing={"queued_s": 30.0, "running_s": 30.0})
    await deployment.start_instance()
    code, out, _ = await cli(deployment, "submit", "viduq1-text", "-p", "prompt=x", "--json")
    assert code == 0
    request_id = json.loads(out)["request_id"]
    watcher = asyncio.create_task(cli(deployment, "watch", request_id))
    await asyncio.sleep(3)
    code, out, err = await cli(deployment, "cancel", request_id, "--reason", "test")
    assert code == 0 and "cancelled" in out, (out, err)
    code, out, _ = await watcher
    assert code == 1  # the task did not complete
    assert "accepted" in out and "cancelled" in out
    code, out, _ = await cli(deployment, "cancel", request_id)
    assert code == 0 and "already ended" in out


async def test_models_lists_every_model(deployment: Deployment) -> None:
    code, out, _ = await cli(deployment, "models")
    assert code == 0 and "wanx2.1-kf2v-plus" in out and "vidu2-reference" in out
    code, out, _ = await cli(deployment, "models", "cogvideox-2", "--json")
    assert json.loads(out)["properties"]["fps"]


def test_the_console_script_is_declared() -> None:
    text = (ROOT / "client" / "pyproject.toml").read_text()
    assert 'video-service = "video_client.cli:main"' in text
    assert Path(ROOT / "client" / "video_client" / "__main__.py").exists()
