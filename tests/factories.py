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


def version_0_1_document(**fields: Any) -> dict[str, Any]:
    """A task document exactly as version 0.1 wrote it (a plain dict; no ticket, no cancel
    fields), for the rolling-deploy tests."""
    now = datetime.now(UTC)
    task_id = str(uuid.uuid4())
    request_id = f"old-{uuid.uuid4().hex[:8]}"
    document: dict[str, Any] = {
        "_id": task_id,
        "request_id": request_id,
        "provider": "zhipuai",
        "model": "cogvideox-flash",
        "params": {"prompt": f"an old cat [{request_id}]"},
        "prompt": f"an old cat [{request_id}]",
        "resolution": None,
        "user_id": "u-1",
        "tenant_id": None,
        "metadata_json": '{"a.b": 1}',
        "reply_topic": None,
        "timeout_s": 600,
        "deadline_at": now + timedelta(seconds=600),
        "created_at": now,
        "sequence": 1,
        "published": 1,
        "active": True,
        "lease_owner": "old-instance",
        "lease_until": now - timedelta(seconds=1),
        "status": "accepted",
        "events": [{"kind": "status", "body": {"sequence": 1, "status": "accepted"}}],
    }
    document.update(fields)
    return document
