"""`video-service-admin` in process: each command against a fake backend (tasks as documents,
dead letters from the service's own encoder), through typer's CliRunner. The same commands run
against the real servers in tests/e2e/test_admin.py."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from pymongo.errors import ServerSelectionTimeoutError
from typer.testing import CliRunner

from consumers.admin import cli
from consumers.admin.backend import TopicMissing
from consumers.admin.redrive import REDRIVEN_FROM, Outgoing
from consumers.settings import Settings
from schemas.errors import ErrorCode
from tests.admin.fakes import NOW, FakeBackend, FakeRetentionStore, dead_letter, task_doc

SECRET = "admin-cli-secret-that-is-32-bytes-long"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(video_dir=str(tmp_path / "videos"), auth_mode="none")


@pytest.fixture
def backend(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBackend]:
    fake = FakeBackend(settings)
    monkeypatch.setattr(cli.Runtime, "settings", lambda: fake.settings)
    monkeypatch.setattr(cli.Runtime, "backend", lambda s: fake)
    yield fake


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, list(args), input=input, env={"COLUMNS": "250"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def words(text: str) -> str:
    return " ".join(text.split())


def tasks(backend: FakeBackend) -> dict[str, dict[str, Any]]:
    return {d["request_id"]: d for d in backend.tasks}


def populate(backend: FakeBackend) -> None:
    old, older = NOW - timedelta(hours=2), NOW - timedelta(hours=5)
    backend.tasks = [
        task_doc(
            request_id="run-1",
            status="running",
            updated_at=old,
            now=older,
            tenant_id="t-1",
            upstream_status="RUNNING",
            lease_owner="inst-a",
        ),
        task_doc(
            request_id="acc-2",
            status="accepted",
            now=NOW - timedelta(minutes=5),
            tenant_id="t-2",
            model="wanx2.1-t2v-turbo",
            provider="aliyun",
        ),
        task_doc(
            request_id="done-3",
            status="completed",
            active=False,
            updated_at=older,
            finished_at=older,
            now=older - timedelta(minutes=1),
        ),
        task_doc(
            request_id="fail-4",
            status="failed",
            active=False,
            now=older,
            error={"code": "timeout", "message": "too slow"},
        ),
        task_doc(
            request_id="old-5",
            status="submitted",
            now=older,
            user_id="u-5",
            cancel_requested_at=old,
        ),
    ]


# --- task show -------------------------------------------------------------------------------


def test_show_prints_the_record_and_its_event_history(backend: FakeBackend) -> None:
    populate(backend)
    doc = tasks(backend)["done-3"]
    doc["events"] = [
        {
            "kind": "status",
            "body": {"sequence": 1, "status": "accepted", "timestamp": "2026-11-30T07:00:00.000Z"},
        },
        {
            "kind": "status",
            "body": {
                "sequence": 2,
                "status": "submitted",
                "upstream_task_id": "up-9",
                "upstream_status": "PENDING",
                "timestamp": "2026-11-30T07:00:01.500Z",
            },
        },
        {
            "kind": "status",
            "body": {"sequence": 3, "status": "completed", "timestamp": "2026-11-30T07:01:00.000Z"},
        },
        {
            "kind": "completed",
            "body": {
                "sequence": 3,
                "status": "completed",
                "timestamp": "2026-11-30T07:01:00.000Z",
                "result": {"videos": [{"index": 0}]},
            },
        },
    ]
    doc["published"] = 3
    doc["result"] = {
        "videos": [
            {
                "index": 0,
                "local_path": "/v/zhipuai_1.mp4",
                "size_bytes": 2048,
                "sha256": "ab" * 32,
                "duration": 5.0,
                "width": 832,
                "height": 480,
                "object_url": "https://b/k",
            }
        ]
    }
    code, out, _ = run("task", "show", "done-3")
    assert code == 0
    text = words(out)
    assert "done-3 completed" in text and doc["_id"] in text
    for fragment in (
        "upstream task up-9 PENDING",
        "+1.5",
        "+60.0",
        "completed event: 1 video",
        "/v/zhipuai_1.mp4",
        "2.0 KiB",
        "832x480",
        "https://b/k",
        "not yet",
    ):
        assert fragment in text, fragment
    code, out, _ = run("task", "show", doc["_id"], "--json")
    shown = json.loads(out)
    assert code == 0 and shown["request_id"] == "done-3" and len(shown["events"]) == 4
    assert shown["created_at"].startswith("2026-11-30T06:59")


def test_show_marks_cancels_errors_and_planned_videos(backend: FakeBackend) -> None:
    populate(backend)
    tasks(backend)["old-5"]["videos"] = [
        {"index": 0, "url": "u", "filename": "zhipuai_x.mp4", "temp_name": ".t.0.part"}
    ]
    code, out, _ = run("task", "show", "old-5")
    assert code == 0
    assert "(cancel requested)" in out and "zhipuai_x.mp4 (planned)" in out
    code, out, _ = run("task", "show", "fail-4")
    assert "timeout: too slow" in words(out)


def test_show_of_an_unknown_task_exits_4(backend: FakeBackend) -> None:
    code, _, err = run("task", "show", "nope")
    assert code == 4 and "no task with id or request_id nope" in err


# --- task list -------------------------------------------------------------------------------


def test_list_filters_by_status_model_tenant_and_user(backend: FakeBackend) -> None:
    populate(backend)
    code, out, _ = run("task", "list", "--json")
    body = json.loads(out)
    assert code == 0 and body["total"] == 5
    assert body["tasks"][0]["request_id"] == "acc-2"  # newest first
    code, out, _ = run("task", "list", "-s", "completed", "-s", "failed", "--json")
    assert {t["request_id"] for t in json.loads(out)["tasks"]} == {"done-3", "fail-4"}
    code, out, _ = run("task", "list", "-m", "wanx2.1-t2v-turbo", "--tenant", "t-2", "--json")
    assert [t["request_id"] for t in json.loads(out)["tasks"]] == ["acc-2"]
    code, out, _ = run("task", "list", "--user", "u-5", "--limit", "1")
    assert code == 0 and "old-5" in out and "1 of 1 tasks matching" in out
    assert "submitted (cancelling)" in out
    code, out, _ = run("task", "list", "-s", "failed")
    assert "failed (timeout)" in out


def test_list_stuck_tasks_are_unfinished_and_unchanged_for_long_enough(
    backend: FakeBackend,
) -> None:
    populate(backend)
    code, out, _ = run("task", "list", "--stuck-for", "1h", "--json")
    rows = json.loads(out)["tasks"]
    # old-5 has no updated_at: its created_at (5 h ago) counts; run-1 changed 2 h ago.
    assert [r["request_id"] for r in rows] == ["old-5", "run-1"]
    assert rows[1]["unchanged_s"] == 7200.0
    code, out, _ = run("task", "list", "--stuck-for", "3h")
    assert code == 0 and "old-5" in out and "run-1" not in out
    assert "stuck for more than 3h" in out and "5h00m" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "lost"], "--status lost: a status, one of accepted"),
        (["--stuck-for", "1h", "--status", "completed"], "an unfinished status"),
        (["--stuck-for", "soon"], "a period like 30s"),
        (["--stuck-for", "-1h"], "must be positive"),
    ],
)
def test_list_refuses_bad_filters(backend: FakeBackend, args: list[str], message: str) -> None:
    code, _, err = run("task", "list", *args)
    assert code == 2 and message in words(err)


# --- task cancel -----------------------------------------------------------------------------


def finish_cancelled(backend: FakeBackend) -> None:
    def on_send(records: Sequence[Outgoing]) -> None:
        for record in records:
            tasks(backend)[json.loads(record.value)["request_id"]]["status"] = "cancelled"

    backend.on_send = on_send


def test_cancel_dry_run_sends_nothing(backend: FakeBackend) -> None:
    populate(backend)
    code, out, _ = run("task", "cancel", "--older-than", "1h", "--dry-run")
    assert code == 0 and backend.sent == []
    assert "2 unfinished tasks match" in out and "run-1" in out and "old-5" in out
    assert "dry run: 2 cancels would be sent to video.cancel" in words(out)
    code, out, _ = run("task", "cancel", "--older-than", "1h", "--dry-run", "--json")
    assert json.loads(out)["dry_run"] is True


def test_cancel_asks_first_and_sends_one_cancel_per_task(backend: FakeBackend) -> None:
    populate(backend)
    code, _, err = run("task", "cancel", "--stuck-for", "1h", input="n\n")
    assert code == 1 and backend.sent == [] and "aborted: nothing sent" in err
    finish_cancelled(backend)
    code, out, err = run("task", "cancel", "--stuck-for", "1h", "--reason", "stuck", input="y\n")
    assert code == 0, err
    assert "Send 2 cancels to video.cancel?" in err
    assert sorted((r.topic, r.key) for r in backend.sent) == [
        ("video.cancel", b"old-5"),
        ("video.cancel", b"run-1"),
    ]
    assert json.loads(backend.sent[0].value)["reason"] == "stuck"
    assert dict(backend.sent[0].headers) == {"content-type": b"application/json"}
    assert "sent 2 cancels" in out and "after 2 cancelled" in out


def test_cancel_reports_tasks_that_did_not_end(backend: FakeBackend) -> None:
    populate(backend)
    code, out, err = run("task", "cancel", "-m", "wanx2.1-t2v-turbo", "--yes", "--wait-s", "0.2")
    assert code == 1 and len(backend.sent) == 1
    assert "after 1 accepted" in out and "1 not finished after 0.2 s" in err
    code, out, _ = run("task", "cancel", "--tenant", "t-2", "--yes", "--wait-s", "0", "--json")
    assert code == 0 and json.loads(out)["sent"] == 1


def test_cancel_matches_nothing_finished(backend: FakeBackend) -> None:
    populate(backend)
    code, out, _ = run("task", "cancel", "--user", "nobody", "--yes")
    assert code == 0 and backend.sent == [] and "0 unfinished tasks match" in out
    code, out, _ = run("task", "cancel", "--status", "accepted", "--user", "x", "--json")
    assert json.loads(out) == {"tasks": [], "sent": 0}


def test_cancel_all_needs_all(backend: FakeBackend) -> None:
    populate(backend)
    finish_cancelled(backend)
    code, _, err = run("task", "cancel", "--yes")
    assert code == 2 and "--all" in err and backend.sent == []
    code, _, _ = run("task", "cancel", "--all", "--yes", "--limit", "2")
    assert code == 0 and len(backend.sent) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status", "completed", "--yes"], "an unfinished status"),
        (["--older-than", "x", "--yes"], "a period like"),
        (["--all", "--reason", "x" * 1001], "at most 1000 characters"),
    ],
)
def test_cancel_refuses_bad_options(backend: FakeBackend, args: list[str], message: str) -> None:
    code, _, err = run("task", "cancel", *args)
    assert code == 2 and message in words(err)


def admin_token(**claims: Any) -> str:
    body = {"sub": "ops", "exp": int(time.time()) + 300, "scope": "video:admin", **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


def test_cancel_under_jwt_needs_an_admin_token(backend: FakeBackend) -> None:
    populate(backend)
    finish_cancelled(backend)
    backend.settings = Settings(auth_mode="jwt", auth_jwt_secret=SECRET)
    code, _, err = run("task", "cancel", "--all", "--yes")
    assert code == 2 and "give a token with --token" in err and backend.sent == []
    code, _, err = run("task", "cancel", "--all", "--yes", "--token", admin_token(scope="x"))
    assert code == 2 and "scope does not hold video:admin" in err
    # A dry run needs no token.
    assert run("task", "cancel", "--all", "--dry-run")[0] == 0
    good = admin_token()
    code, _, _ = run("task", "cancel", "--all", "--yes", "--token", f"Bearer {good}")
    assert code == 0 and len(backend.sent) == 3
    assert ("authorization", f"Bearer {good}".encode()) in backend.sent[0].headers


# --- dlq redrive -----------------------------------------------------------------------------


def request(request_id: str, **extra: Any) -> bytes:
    body = {"request_id": request_id, "model": "cogvideox-flash", "parameters": {"prompt": "x"}}
    return json.dumps({**body, **extra}).encode()


def letters(backend: FakeBackend) -> None:
    backend.letters = [
        dead_letter(1, request("r-1"), headers={"x-trace": "t1"}, timestamp_ms=1000),
        dead_letter(2, request("r-2"), code=ErrorCode.UNKNOWN_MODEL, timestamp_ms=2000),
        dead_letter(
            3, b'{"request_id": "big", "pad": "' + b"a" * 300_000 + b'"}', timestamp_ms=3000
        ),
        dead_letter(4, request("r-4"), timestamp_ms=4000),
    ]
    backend.tasks = [task_doc(request_id="r-4", status="completed")]


def test_redrive_dry_run_shows_what_would_be_sent(backend: FakeBackend) -> None:
    letters(backend)
    code, out, _ = run("dlq", "redrive", "--dry-run")
    text = words(out)
    assert code == 1 and backend.sent == []  # one refused: exit 1
    assert "its value was truncated" in text and "request_id has a task now (completed)" in text
    assert "video.requests.dlq/0/101" in text and "video.requests[0]@1" in text
    assert (
        "4 dead letters selected: 2 would be sent (dry run) to video.requests, 1 skipped, "
        "1 refused" in text
    )


def test_redrive_sends_the_selected_records_after_confirmation(backend: FakeBackend) -> None:
    letters(backend)
    code, _, err = run("dlq", "redrive", "--code", "unauthorized", input="n\n")
    assert code == 1 and backend.sent == [] and "aborted" in err
    code, out, _ = run("dlq", "redrive", "--request-id", "r-*", "--code", "unauthorized", "--yes")
    assert code == 0
    (record,) = backend.sent
    assert (record.topic, record.value) == ("video.requests", request("r-1"))
    assert dict(record.headers) == {"x-trace": b"t1", REDRIVEN_FROM: b"video.requests.dlq/0/101"}
    assert "2 dead letters selected: 1 sent to video.requests, 1 skipped, 0 refused" in words(out)


def test_redrive_by_offset_and_limit_with_json(backend: FakeBackend) -> None:
    letters(backend)
    code, out, _ = run("dlq", "redrive", "--offset", "0:2", "--offset", "1", "--json", "--yes")
    body = json.loads(out)
    assert code == 0 and [r["request_id"] for r in body["records"]] == ["r-1", "r-2"]
    assert body["summary"] == {
        "selected": 2,
        "send": 2,
        "skip": 0,
        "refuse": 0,
        "sent": 2,
        "dry_run": False,
    }
    assert all(r["sent"] for r in body["records"])
    backend.sent.clear()
    code, out, _ = run(
        "dlq",
        "redrive",
        "--limit",
        "1",
        "--yes",
        "--code",
        "unauthorized",
        "--code",
        "unknown_model",
    )
    assert code == 1 and len(backend.sent) == 1  # and the truncated one refused
    assert "3 dead letters selected: 1 sent to video.requests, 1 skipped, 1 refused" in words(out)


def test_redrive_since(backend: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    letters(backend)
    monkeypatch.setattr(cli.time, "time", lambda: 4.5)  # 4500 ms; --since 1s: from 3500 ms
    _, out, _ = run("dlq", "redrive", "--since", "1s", "--dry-run", "--json")
    assert [r["request_id"] for r in json.loads(out)["records"]] == ["r-4"]


def test_redrive_under_jwt_adds_the_operator_token(backend: FakeBackend) -> None:
    letters(backend)
    backend.settings = Settings(auth_mode="jwt", auth_jwt_secret=SECRET)
    code, _, err = run("dlq", "redrive", "--yes")
    assert code == 2 and "--token" in err and backend.sent == []
    user_token = admin_token(sub="u-1", scope="")
    code, _, _ = run("dlq", "redrive", "--yes", "--offset", "1", "--token", user_token)
    assert code == 0
    assert ("authorization", f"Bearer {user_token}".encode()) in backend.sent[0].headers


def test_redrive_refuses_bad_options(backend: FakeBackend) -> None:
    assert run("dlq", "redrive", "--offset", "x")[0] == 2
    assert run("dlq", "redrive", "--since", "yesterday")[0] == 2


# --- errors ----------------------------------------------------------------------------------


def test_unreachable_servers_exit_3_and_a_missing_topic_4(backend: FakeBackend) -> None:
    backend.fail = ServerSelectionTimeoutError("no servers")
    code, _, err = run("task", "list")
    assert code == 3 and "cannot reach MongoDB or Kafka" in err and backend.closed == 1
    backend.fail = TopicMissing("topic video.requests.dlq does not exist (no dead letter yet?)")
    code, _, err = run("dlq", "redrive", "--dry-run")
    assert code == 4 and "does not exist" in err


# --- retention -------------------------------------------------------------------------------


def test_retention_run_is_off_without_settings(backend: FakeBackend) -> None:
    code, out, _ = run("retention", "run")
    assert code == 0 and "retention is off" in out
    code, out, _ = run("retention", "run", "--json")
    assert json.loads(out)["off"] is True


def test_retention_run_deletes_finished_tasks_and_old_videos(
    backend: FakeBackend, settings: Settings
) -> None:
    old = NOW - timedelta(days=10)
    store = FakeRetentionStore(
        [
            task_doc(request_id="gone", status="completed", active=False, finished_at=old),
            task_doc(request_id="kept", status="running", finished_at=old),
        ]
    )
    backend.retention_store = store
    videos = Path(settings.video_dir)
    videos.mkdir(parents=True)
    stale = videos / "aliyun_20261120_100000_0_0123abcd.mp4"
    stale.write_bytes(b"x" * 1000)
    os.utime(stale, (time.time() - 10 * 86400,) * 2)
    code, out, _ = run("retention", "run", "--task-days", "7", "--video-days", "7", "--dry-run")
    text = words(out)
    assert code == 0 and stale.exists() and len(store.tasks) == 2
    assert "1 would be deleted (dry run)" in text and "gone" in text and str(stale) in text
    code, out, _ = run("retention", "run", "--task-days", "7", "--video-days", "7", "--json")
    report = json.loads(out)
    assert report["tasks"]["deleted"] == 1 and report["videos"]["files"] == [str(stale)]
    assert not stale.exists() and [d["request_id"] for d in store.tasks] == ["kept"]
    code, out, _ = run("retention", "run", "--task-days", "7", "--video-days", "0")
    assert code == 0 and "0 deleted" in out and "videos" not in out
