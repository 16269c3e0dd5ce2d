"""`make demo`'s script end to end (on the services already running for the suite, which it
leaves running), and docker-compose.yml's demo profile read carefully (no Docker here)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.harness import ROOT

pytestmark = pytest.mark.integration


async def test_the_demo_makes_one_video_per_vendor(services_ready: None, tmp_path: Path) -> None:
    # `make demo` installs the client for its `video-service` command; here it runs from client/.
    cli = tmp_path / "video-service"
    cli.write_text(
        f'#!/bin/sh\nPYTHONPATH={ROOT / "client"} exec {sys.executable} -m video_client "$@"\n'
    )
    cli.chmod(0o755)
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        "bash", str(ROOT / "demo" / "demo.sh"), cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", "DEMO_CLI": str(cli)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 110)
    text = out.decode()
    assert process.returncode == 0, text[-3000:]
    videos = re.findall(r"(/\S+/data/demo-videos/(aliyun|zhipuai)_\S+\.mp4)", text)
    assert {vendor for _, vendor in videos} == {"aliyun", "zhipuai"}
    assert all(Path(path).stat().st_size > 0 for path, _ in videos)
    assert "stopping what the demo started" in text
    assert time.monotonic() - started < 100


def test_the_compose_demo_profile_points_a_service_at_the_simulator() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    demo = {name for name, s in services.items() if "demo" in s.get("profiles", [])}
    assert demo == {"simulator", "service-demo", "demo"}
    assert "profiles" not in services["service"]  # `docker compose up` is unchanged
    env = services["service-demo"]["environment"]
    assert env["ALIYUN_BASE_URL"] == env["ZHIPUAI_BASE_URL"] == "http://simulator:8900"
    assert env["DOWNLOAD_ALLOWED_HOSTS"] == "simulator"
    assert env["TOPIC_REQUESTS"] != "video.requests"  # apart from `service`'s topics
    client = services["demo"]["environment"]
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "TOPIC_REQUESTS", "TOPIC_STATUS", "TOPIC_COMPLETED"):
        assert client[name] == env[name]
    assert services["demo"]["command"][-1] == "--requests-only"
    assert services["simulator"]["build"]["dockerfile"] == "demo/Dockerfile"
    dockerfile = (ROOT / "demo" / "Dockerfile").read_text()
    assert '--port", "8900"' in dockerfile and "0.0.0.0" in dockerfile
    assert "./client" in dockerfile
    assert {"demo-videos"} <= set(compose["volumes"])
