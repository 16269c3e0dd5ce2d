"""The client distribution installs without the service: its wheel, its metadata, and what its
dependencies pull in turn (read from the installed packages' metadata)."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import contract_sync

SERVER_ONLY = {"pymongo", "faststream", "video-service", "httpx", "motor", "pyjwt", "aiobotocore"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
         str(contract_sync.CLIENT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (built,) = out.glob("video_service_client-*.whl")
    return built


def _metadata(wheel: Path) -> tuple[list[str], list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = archive.read(meta).decode()
    return names, [
        line.split(":", 1)[1].strip()
        for line in text.splitlines()
        if line.startswith("Requires-Dist:")
    ]


def test_the_wheel_holds_the_client_alone_typed(wheel: Path) -> None:
    names, _ = _metadata(wheel)
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"video_client"}
    assert "video_client/py.typed" in names
    assert "video_client/models.json" in names
    assert "video_client/schemas/events.py" in names


def test_its_dependencies_pull_no_server_package(wheel: Path) -> None:
    _, requires = _metadata(wheel)
    direct = {_name(r) for r in requires if "extra ==" not in r}
    assert direct == {"pydantic", "aiokafka", "jsonschema"}
    cli = {_name(r) for r in requires if 'extra == "cli"' in r}
    assert cli == {"rich", "typer"}
    # Everything they need in turn, at the versions installed here (the locked ones).
    seen: set[str] = set()
    todo = sorted(direct | cli)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_name(text))
    assert not seen & SERVER_ONLY, seen & SERVER_ONLY
