"""Names of video files under VIDEO_DIR, and the sweep of temporary files left by a crash."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Awaitable, Callable, Collection
from contextlib import suppress
from datetime import datetime
from pathlib import Path

log = logging.getLogger("video.files")

# `.{task_id}.{index}.part`: the temporary name of a download (see consumers.engine.poll).
_PART = re.compile(r"^\.(?P<task_id>[0-9a-f-]{36})\.\d+\.part$")


def video_filename(provider: str, task_id: str, index: int, moment: datetime) -> str:
    """The contract's file name: {provider}_{YYYYmmdd_HHMMSS}_{index}_{8 hex}.mp4."""
    digest = hashlib.sha256(f"{task_id}:{index}".encode()).hexdigest()[:8]
    return f"{provider}_{moment:%Y%m%d_%H%M%S}_{index}_{digest}.mp4"


def part_files(video_dir: Path) -> dict[str, list[Path]]:
    """Temporary download files by the id of the task they belong to."""
    found: dict[str, list[Path]] = {}
    with suppress(FileNotFoundError):
        for entry in os.scandir(video_dir):
            match = _PART.match(entry.name)
            if match:
                found.setdefault(match["task_id"], []).append(Path(entry.path))
    return found


async def sweep_parts(
    video_dir: Path, still_downloading: Callable[[Collection[str]], Awaitable[set[str]]]
) -> int:
    """Remove the temporary files of tasks that no live instance is downloading (a SIGKILL
    leaves them behind). `still_downloading` names, of the given task ids, those to keep."""
    parts = part_files(video_dir)
    if not parts:
        return 0
    keep = await still_downloading(parts.keys())
    removed = 0
    for task_id, paths in parts.items():
        if task_id in keep:
            continue
        for path in paths:
            with suppress(OSError):
                path.unlink()
                removed += 1
    if removed:
        log.info("removed %d temporary files left by earlier runs", removed)
    return removed
