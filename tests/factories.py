"""Small builders of test data shared by the in-process tier and the store suite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from consumers.storage.task import OutboxEntry, Task


def make_task(
    *,
    owner: str | None = "me",
    now: datetime | None = None,
    lease_s: float = 30,
    **fields: Any,
) -> Task:
    """An accepted task of `cogvideox-flash`, held by `owner`, with its `accepted` event."""
    moment = now or datetime.now(UTC)
    task_id = fields.pop("id", None) or str(uuid.uuid4())
    request_id = fields.pop("request_id", None) or f"req-{uuid.uuid4().hex[:8]}"
    base: dict[str, Any] = {
        "_id": task_id,
        "request_id": request_id,
        "provider": "zhipuai",
        "model": "cogvideox-flash",
        "params": {"prompt": f"a cat [{request_id}]"},
        "prompt": f"a cat [{request_id}]",
        "timeout_s": 600,
        "created_at": moment,
        "deadline_at": moment + timedelta(seconds=600),
        "status": "accepted",
        "sequence": 1,
        "lease_owner": owner,
        "lease_until": moment + timedelta(seconds=lease_s),
        "events": [OutboxEntry(kind="status", body={"sequence": 1, "status": "accepted"})],
    }
    base.update(fields)
    return Task.model_validate(base)
