"""`video-service-admin`: operator commands, shipped with the service.

    video-service-admin task show ID|REQUEST_ID [--json]
    video-service-admin task list [--status S] [--model M] [--tenant T] [--user U]
                                  [--stuck-for 30m] [--limit 50] [--json]
    video-service-admin task cancel [--status S] [--model M] [--tenant T] [--user U]
                                    [--older-than 2h] [--stuck-for 30m] [--all] [--reason R]
                                    [--limit N] [--dry-run] [--yes] [--token JWT] [--wait-s 15]
    video-service-admin dlq redrive [--since 1d] [--code C] [--request-id GLOB]
                                    [--offset P:O] [--limit N] [--dry-run] [--yes] [--token JWT]
    video-service-admin retention run [--dry-run] [--task-days D] [--video-days D] [--json]

They read the service's own settings (environment and `.env`): MONGODB_URL, MONGODB_DB, Kafka
(KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_CAFILE), TOPIC_*,
AUTH_MODE and its key, VIDEO_DIR and the retention settings. Cancels go through the cancel topic
and re-driven requests through the request topic, so the running service handles them on its
normal path. Exit status: 0 done, 1 something was refused, aborted or is not finished, 2 the
command line is wrong (nothing was sent), 3 MongoDB or Kafka cannot be reached, 4 not found.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from aiokafka.errors import KafkaError
from pymongo.errors import PyMongoError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from consumers.admin import queries
from consumers.admin.backend import Backend, LiveBackend, TopicMissing
from consumers.admin.queries import TaskQuery, parse_period
from consumers.admin.redrive import (
    Action,
    Outgoing,
    Plan,
    Selection,
    parse_offset,
    plan,
)
from consumers.admin.tokens import Bearer, TokenProblem, bearer
from consumers.operations.retention import RetentionReport
from consumers.settings import Settings
from schemas.events import CancelEvent
from schemas.status import TaskStatus

T = TypeVar("T")

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND = 1, 2, 3, 4
DEFAULT_REASON = "cancelled by an operator"

app = typer.Typer(
    name="video-service-admin",
    help="Operator commands of the video service: tasks, dead letters, retention.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
task_app = typer.Typer(help="Look at tasks, list stuck ones, cancel in bulk.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters: re-drive them after a fix.", no_args_is_help=True)
retention_app = typer.Typer(help="Delete finished tasks and old videos.", no_args_is_help=True)
app.add_typer(task_app, name="task")
app.add_typer(dlq_app, name="dlq")
app.add_typer(retention_app, name="retention")

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

STYLE = {
    "accepted": "cyan",
    "submitted": "blue",
    "running": "yellow",
    "downloading": "magenta",
    "completed": "bold green",
    "failed": "bold red",
    "cancelled": "bold red",
}

TokenOption = Annotated[
    str | None,
    typer.Option(
        envvar="VIDEO_ADMIN_TOKEN",
        help="JWT sent as `authorization: Bearer` (needed under AUTH_MODE=jwt)",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON instead of tables")]


class Runtime:
    """Where commands get their settings and backend (the in-process tests replace both)."""

    settings: Callable[[], Settings] = Settings
    backend: Callable[[Settings], Backend] = LiveBackend


# --- task show ---------------------------------------------------------------------------------


@task_app.command("show")
def task_show(
    ident: Annotated[str, typer.Argument(metavar="ID|REQUEST_ID", help="Task id or request_id")],
    as_json: JsonOption = False,
) -> None:
    """One task's whole record and its event history."""

    async def body(backend: Backend) -> int:
        doc = await backend.find_task(ident)
        if doc is None:
            errors.print(f"no task with id or request_id {escape(ident)}")
            return EXIT_NOT_FOUND
        if as_json:
            print(queries.to_json(doc))
            return 0
        now = await backend.now()
        console.print(_record(doc, now))
        console.print(_timeline(doc))
        videos = _videos(doc)
        if videos is not None:
            console.print(videos)
        return 0

    raise typer.Exit(_run(body))


def _record(doc: dict[str, Any], now: datetime) -> Table:
    status = str(doc.get("status"))
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    head = Text(str(doc.get("request_id")), style="bold")
    head.append("  ")
    head.append(status, style=STYLE.get(status, ""))
    if doc.get("cancel_requested_at") and not TaskStatus(status).terminal:
        head.append("  (cancel requested)", style="red")
    table.add_row("request", head)
    error = doc.get("error")
    rows: list[tuple[str, Any]] = [
        ("task id", doc.get("_id")),
        ("model", f"{doc.get('model')} ({doc.get('provider')})"),
        ("user / tenant", f"{doc.get('user_id') or '-'} / {doc.get('tenant_id') or '-'}"),
        ("created", _when(doc.get("created_at"), now)),
        ("last change", _when(doc.get("updated_at"), now)),
        ("finished", _when(doc.get("finished_at"), now)),
        ("deadline", _when(doc.get("deadline_at"), now)),
        (
            "active",
            f"{doc.get('active')} ({doc.get('published', 0)} of "
            f"{len(doc.get('events') or ())} events published)",
        ),
        ("lease", f"{doc.get('lease_owner') or '-'} until {_when(doc.get('lease_until'), now)}"),
        ("upstream", f"{doc.get('upstream_task_id') or '-'} {doc.get('upstream_status') or ''}"),
        ("key", doc.get("key_id")),
        (
            "submits",
            f"{doc.get('submit_attempts', 0)} attempt(s), submitted "
            f"{_when(doc.get('submitted_at'), now)}",
        ),
        ("next action", _when(doc.get("next_action_at"), now)),
        ("cancel", _cancel_text(doc, now)),
        ("error", f"{error.get('code')}: {error.get('message')}" if error else None),
        ("prompt", doc.get("prompt")),
        ("parameters", json.dumps(doc.get("params") or {}, ensure_ascii=False)),
        ("metadata", doc.get("metadata_json")),
        ("reply topic", doc.get("reply_topic")),
    ]
    for name, value in rows:
        if value not in (None, "", "-"):
            table.add_row(name, escape(str(value)))
    return table


def _cancel_text(doc: dict[str, Any], now: datetime) -> str | None:
    if not doc.get("cancel_requested_at"):
        return None
    return f"requested {_when(doc['cancel_requested_at'], now)}: {doc.get('cancel_reason') or ''}"


def _timeline(doc: dict[str, Any]) -> Table:
    table = Table(title="events", title_justify="left", show_edge=False, pad_edge=False)
    for column in ("#", "status", "at", "+s", "detail", "on Kafka"):
        table.add_column(column, overflow="fold")
    events = doc.get("events") or []
    published = int(doc.get("published") or 0)
    start = _parse(events[0]["body"].get("timestamp")) if events else None
    for position, entry in enumerate(events):
        event = entry.get("body") or {}
        kind = entry.get("kind")
        at = _parse(event.get("timestamp"))
        offset = f"+{(at - start).total_seconds():.1f}" if at and start else ""
        status = str(event.get("status"))
        detail = []
        if kind == "completed":
            videos = (event.get("result") or {}).get("videos") or []
            detail.append(f"completed event: {len(videos)} video(s)")
        else:
            if event.get("upstream_task_id") and status == "submitted":
                detail.append(f"upstream task {event['upstream_task_id']}")
            if event.get("upstream_status"):
                detail.append(str(event["upstream_status"]))
            error = event.get("error")
            if error:
                detail.append(f"{error.get('code')}: {error.get('message')}")
        table.add_row(
            str(event.get("sequence", "")),
            Text(status if kind != "completed" else "(completed)", style=STYLE.get(status, "")),
            str(event.get("timestamp", ""))[:23],
            offset,
            escape("  ".join(detail)),
            "yes" if position < published else "not yet",
        )
    return table


def _videos(doc: dict[str, Any]) -> Table | None:
    result = doc.get("result") or {}
    videos = result.get("videos") or []
    planned = doc.get("videos") or []
    if not videos and not planned:
        return None
    table = Table(title="videos", title_justify="left", show_edge=False, pad_edge=False)
    for column in ("#", "file", "size", "sha256", "duration", "resolution"):
        table.add_column(column, overflow="fold")
    if videos:
        for v in videos:
            size = v.get("size_bytes")
            where = str(v.get("local_path"))
            if v.get("object_url"):
                where += f"\n{v['object_url']}"
            table.add_row(
                str(v.get("index")),
                escape(where),
                _size(size) if isinstance(size, int) else "?",
                str(v.get("sha256") or "")[:16],
                f"{v['duration']:.1f} s" if v.get("duration") is not None else "?",
                f"{v.get('width')}x{v.get('height')}" if v.get("width") else "?",
            )
    else:
        for p in planned:
            table.add_row(
                str(p.get("index")), escape(f"{p.get('filename')} (planned)"), "", "", "", ""
            )
    return table


# --- task list ---------------------------------------------------------------------------------


@task_app.command("list")
def task_list(
    status: Annotated[
        list[str] | None, typer.Option("--status", "-s", help="Only these statuses")
    ] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Only these")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant_id")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user_id")] = None,
    stuck_for: Annotated[
        str | None,
        typer.Option(help="Unfinished, with no status change for this long: 30m, 2h, 1d"),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Tasks by status, model, tenant, user; or stuck ones (oldest change first)."""
    statuses = tuple(status or ())
    _or_usage(lambda: queries.check_statuses(statuses, unfinished_only=stuck_for is not None))
    stuck = _or_usage(lambda: parse_period(stuck_for)) if stuck_for else None

    async def body(backend: Backend) -> int:
        now = await backend.now()
        query = TaskQuery(
            statuses=statuses,
            models=tuple(model or ()),
            tenant=tenant,
            user=user,
            unchanged_before=now - stuck if stuck is not None else None,
        )
        sort = [("updated_at", 1), ("created_at", 1)] if stuck else [("created_at", -1)]
        docs = await backend.find_tasks(query.to_mongo(), sort=sort, limit=limit)
        total = await backend.count_tasks(query.to_mongo())
        rows = [queries.summary(d, now) for d in docs]
        if stuck is not None:  # servers sort missing updated_at apart: oldest change first here
            rows.sort(key=lambda r: -(r["unchanged_s"] or 0))
        if as_json:
            print(json.dumps({"total": total, "tasks": rows}, ensure_ascii=False))
            return 0
        what = f"stuck for more than {stuck_for}" if stuck_for else "matching"
        console.print(_task_table(rows, f"{len(rows)} of {total} tasks {what}"))
        return 0

    raise typer.Exit(_run(body))


def _task_table(rows: Sequence[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in (
        "request_id",
        "status",
        "model",
        "tenant",
        "user",
        "created",
        "unchanged",
        "upstream",
        "lease owner",
    ):
        table.add_column(column, overflow="fold")
    for r in rows:
        status = str(r["status"])
        if r["cancel_requested"] and status not in queries.TERMINAL_VALUES:
            status += " (cancelling)"
        elif r["error_code"] and r["error_code"] != r["status"]:
            status += f" ({r['error_code']})"
        table.add_row(
            escape(str(r["request_id"])),
            Text(status, style=STYLE.get(str(r["status"]), "")),
            str(r["model"]),
            escape(str(r["tenant_id"] or "-")),
            escape(str(r["user_id"] or "-")),
            str(r["created_at"] or "")[:19],
            _age(r["unchanged_s"]),
            str(r["upstream_status"] or "-"),
            str(r["lease_owner"] or "-"),
        )
    return table


# --- task cancel -------------------------------------------------------------------------------


@task_app.command("cancel")
def task_cancel(
    status: Annotated[
        list[str] | None, typer.Option("--status", "-s", help="Only these (unfinished) statuses")
    ] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Only these")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant_id")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user_id")] = None,
    older_than: Annotated[
        str | None, typer.Option(help="Created longer ago than this: 30m, 2h, 1d")
    ] = None,
    stuck_for: Annotated[
        str | None, typer.Option(help="No status change for this long: 30m, 2h, 1d")
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every unfinished task (when no filter is given)")
    ] = False,
    reason: Annotated[str, typer.Option(help="Kept in each cancelled event")] = DEFAULT_REASON,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many tasks")] = None,
    dry_run: Annotated[bool, typer.Option(help="Show the tasks, send nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    token: TokenOption = None,
    wait_s: Annotated[
        float, typer.Option(min=0, help="Wait this long for the tasks to end; 0: don't")
    ] = 15.0,
    as_json: JsonOption = False,
) -> None:
    """Cancel unfinished tasks by filter: a cancel event for each on the cancel topic, carried
    out by the running service (under AUTH_MODE=jwt with a token of scope video:admin)."""
    statuses = tuple(status or ())
    _or_usage(lambda: queries.check_statuses(statuses, unfinished_only=True))
    older = _or_usage(lambda: parse_period(older_than)) if older_than else None
    stuck = _or_usage(lambda: parse_period(stuck_for)) if stuck_for else None
    _or_usage(lambda: CancelEvent(request_id="x", reason=reason))
    filtered = bool(statuses or model or tenant is not None or user is not None or older or stuck)
    if not filtered and not every:
        _usage(
            "no filter: give --status, --model, --tenant, --user, --older-than, --stuck-for "
            "or, to cancel every unfinished task, --all"
        )
    settings = Runtime.settings()
    token_ok = None if dry_run else _or_usage(lambda: bearer(settings, token, admin=True))

    async def find(backend: Backend) -> list[dict[str, Any]]:
        now = await backend.now()
        query = TaskQuery(
            statuses=statuses,
            models=tuple(model or ()),
            tenant=tenant,
            user=user,
            created_before=now - older if older is not None else None,
            unchanged_before=now - stuck if stuck is not None else None,
            unfinished_only=True,
        )
        docs = await backend.find_tasks(query.to_mongo(), sort=[("created_at", 1)], limit=limit)
        return [queries.summary(d, now) for d in docs]

    rows = _value(find, settings)
    if not as_json:
        console.print(_task_table(rows, f"{len(rows)} unfinished tasks match"))
    if not rows:
        if as_json:
            print(json.dumps({"tasks": [], "sent": 0}))
        raise typer.Exit(0)
    topic = settings.topic_cancel
    if dry_run:
        if as_json:
            print(json.dumps({"tasks": rows, "sent": 0, "dry_run": True}, ensure_ascii=False))
        else:
            console.print(f"dry run: {len(rows)} cancels would be sent to {topic}; nothing sent")
        raise typer.Exit(0)
    if not yes and not typer.confirm(f"Send {len(rows)} cancels to {topic}?", err=True):
        errors.print("aborted: nothing sent")
        raise typer.Exit(EXIT_FAILED)
    request_ids = [str(r["request_id"]) for r in rows]
    records = [_cancel_record(topic, rid, reason, token_ok) for rid in request_ids]

    async def send(backend: Backend) -> dict[str, str]:
        await backend.send(records)
        if not as_json:
            console.print(f"sent {len(records)} cancels to {topic}")
        return await _wait_for_ends(backend, request_ids, wait_s) if wait_s else {}

    final = _value(send, settings)
    unfinished = [rid for rid in request_ids if final.get(rid) not in queries.TERMINAL_VALUES]
    if as_json:
        print(json.dumps({"tasks": rows, "sent": len(records), "final": final}))
    elif wait_s:
        counts: dict[str, int] = {}
        for rid in request_ids:
            counts[final.get(rid, "unknown")] = counts.get(final.get(rid, "unknown"), 0) + 1
        console.print("after " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        if unfinished:
            errors.print(
                f"{len(unfinished)} not finished after {wait_s:g} s: is the service running, "
                "and did it accept the token? (it logs refused cancels)"
            )
    raise typer.Exit(EXIT_FAILED if wait_s and unfinished else 0)


def _cancel_record(topic: str, request_id: str, reason: str, token: Bearer | None) -> Outgoing:
    value = CancelEvent(request_id=request_id, reason=reason).model_dump_json().encode()
    headers: list[tuple[str, bytes | None]] = [("content-type", b"application/json")]
    if token is not None:
        headers.append(("authorization", token.header))
    return Outgoing(topic, request_id.encode(), value, headers)


async def _wait_for_ends(
    backend: Backend, request_ids: Sequence[str], wait_s: float
) -> dict[str, str]:
    deadline = time.monotonic() + wait_s
    while True:
        found = await backend.statuses(request_ids)
        done = all(found.get(rid) in queries.TERMINAL_VALUES for rid in request_ids)
        if done or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(0.5)


# --- dlq redrive -------------------------------------------------------------------------------


@dlq_app.command("redrive")
def dlq_redrive(
    since: Annotated[
        str | None, typer.Option(help="Dead letters of this last period only: 2h, 1d")
    ] = None,
    code: Annotated[
        list[str] | None, typer.Option("--code", "-c", help="Only these error codes")
    ] = None,
    request_id: Annotated[
        str | None, typer.Option(help="Only request_ids matching this glob: 'order-*'")
    ] = None,
    offset: Annotated[
        list[str] | None,
        typer.Option(
            help="Only the original record at PARTITION:OFFSET (or OFFSET) of the request "
            "topic, as the service logs it"
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many sent")] = None,
    dry_run: Annotated[bool, typer.Option(help="Show what would be sent, send nothing")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    token: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send selected dead letters' original records to the request topic again, after a fix.
    Truncated values are refused; request_ids that have a task now are skipped."""
    lookback = _or_usage(lambda: parse_period(since)) if since else None
    offsets = frozenset(_or_usage(lambda: [parse_offset(o) for o in offset or ()]))
    settings = Runtime.settings()
    # A dry run needs no token (it sends nothing); one given is checked all the same.
    token_ok = (
        None if dry_run and not token else _or_usage(lambda: bearer(settings, token, admin=False))
    )
    since_ms = int((time.time() - lookback.total_seconds()) * 1000) if lookback else None
    selection = Selection(
        since_ms=since_ms, codes=frozenset(code or ()), request_id=request_id, offsets=offsets
    )

    async def select(backend: Backend) -> list[Plan]:
        letters = [d for d in await backend.dead_letters(since_ms) if selection.matches(d)]
        ids = {rid for d in letters if (rid := d.request_id) is not None}
        existing = await backend.statuses(ids) if ids else {}
        plans: list[Plan] = []
        sending = 0
        for letter in letters:
            step = plan(
                letter, request_topic=settings.topic_requests, bearer=token_ok, existing=existing
            )
            if step.action is Action.SEND:
                if limit is not None and sending >= limit:
                    continue
                sending += 1
            plans.append(step)
        return plans

    plans = _value(select, settings)
    to_send = [p for p in plans if p.action is Action.SEND]
    if not as_json:
        console.print(_plan_table(plans, settings.topic_requests))
    sent = False
    if to_send and not dry_run:
        question = f"Send {len(to_send)} records to {settings.topic_requests}?"
        if not yes and not typer.confirm(question, err=True):
            errors.print("aborted: nothing sent")
            raise typer.Exit(EXIT_FAILED)
        records = [p.outgoing for p in to_send if p.outgoing is not None]

        async def send(backend: Backend) -> None:
            await backend.send(records)

        _value(send, settings)
        sent = True
    counts = {a: sum(p.action is a for p in plans) for a in Action}
    if as_json:
        body = {
            "records": [p.as_dict(sent=sent and p.action is Action.SEND) for p in plans],
            "summary": {
                "selected": len(plans),
                **{str(a): n for a, n in counts.items()},
                "sent": len(to_send) if sent else 0,
                "dry_run": dry_run,
            },
        }
        print(json.dumps(body, ensure_ascii=False))
    else:
        verb = "sent" if sent else ("would be sent (dry run)" if dry_run else "sent")
        console.print(
            f"{len(plans)} dead letters selected: {counts[Action.SEND]} {verb} to "
            f"{settings.topic_requests}, {counts[Action.SKIP]} skipped, "
            f"{counts[Action.REFUSE]} refused"
        )
    raise typer.Exit(EXIT_FAILED if counts[Action.REFUSE] else 0)


def _plan_table(plans: Sequence[Plan], topic: str) -> Table:
    table = Table(title="dead letters", title_justify="left", show_edge=False, pad_edge=False)
    for column in ("dead letter", "original", "request_id", "code", "action", "why"):
        table.add_column(column, overflow="fold")
    style = {Action.SEND: "green", Action.SKIP: "yellow", Action.REFUSE: "bold red"}
    for p in plans:
        table.add_row(
            p.letter.where,
            p.letter.original_where or "-",
            escape(p.letter.request_id or "-"),
            p.letter.code or "-",
            Text(str(p.action), style=style[p.action]),
            escape(p.reason or (f"to {topic}" if p.action is Action.SEND else "")),
        )
    return table


# --- retention ---------------------------------------------------------------------------------


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option(help="Show what would be deleted")] = False,
    task_days: Annotated[
        float | None, typer.Option(min=0, help="Instead of TASK_RETENTION_DAYS (0: off)")
    ] = None,
    video_days: Annotated[
        float | None, typer.Option(min=0, help="Instead of VIDEO_RETENTION_DAYS (0: off)")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Delete finished tasks older than TASK_RETENTION_DAYS and videos in VIDEO_DIR older than
    VIDEO_RETENTION_DAYS, now (the service does it every RETENTION_INTERVAL_S). Run it where
    VIDEO_DIR is."""
    settings = Runtime.settings()
    changes: dict[str, Any] = {}
    if task_days is not None:
        changes["task_retention_days"] = task_days
    if video_days is not None:
        changes["video_retention_days"] = video_days
    settings = settings.model_copy(update=changes)
    if not settings.task_retention_days and not settings.video_retention_days:
        message = (
            "retention is off: set TASK_RETENTION_DAYS or VIDEO_RETENTION_DAYS, or give "
            "--task-days or --video-days"
        )
        if as_json:
            print(json.dumps({"off": True, "message": message}))
        else:
            console.print(message)
        raise typer.Exit(0)

    async def body(backend: Backend) -> RetentionReport:
        return await backend.retention(settings).run_once(dry_run=dry_run)

    report = _value(body, settings)
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
        raise typer.Exit(0)
    verb = "would be deleted (dry run)" if dry_run else "deleted"
    if report.task_cutoff is not None:
        console.print(
            f"tasks finished before {report.task_cutoff:%Y-%m-%d %H:%M:%S %Z}: "
            f"{report.tasks} {verb}"
        )
        for rid in report.request_ids:
            console.print(f"  {escape(rid)}")
        if report.tasks > len(report.request_ids):
            console.print(f"  … and {report.tasks - len(report.request_ids)} more")
    if report.video_cutoff is not None:
        console.print(
            f"videos older than {report.video_cutoff:%Y-%m-%d %H:%M:%S %Z}: "
            f"{len(report.videos)} ({_size(report.video_bytes)}) {verb}"
        )
        for path in report.videos:
            console.print(f"  {escape(str(path))}")
        if report.videos_kept_active:
            console.print(f"  {report.videos_kept_active} kept: tasks still active name them")
    raise typer.Exit(0)


# --- helpers -----------------------------------------------------------------------------------


def _run(body: Callable[[Backend], Awaitable[int]]) -> int:
    return _value(body, Runtime.settings())


def _value(body: Callable[[Backend], Awaitable[T]], settings: Settings) -> T:
    """Run one async step with a backend of its own, turning infrastructure errors into a
    message and exit status 3."""

    async def main() -> T:
        backend = Runtime.backend(settings)
        try:
            return await body(backend)
        finally:
            await backend.close()

    try:
        return asyncio.run(main())
    except TopicMissing as exc:
        errors.print(f"[bold red]{escape(str(exc))}[/]")
        raise typer.Exit(EXIT_NOT_FOUND) from None
    except (PyMongoError, KafkaError, OSError, TimeoutError) as exc:
        errors.print(f"[bold red]cannot reach MongoDB or Kafka:[/] {escape(repr(exc)[:500])}")
        raise typer.Exit(EXIT_UNREACHABLE) from None


def _or_usage(call: Callable[[], T]) -> T:
    try:
        return call()
    except TokenProblem as exc:
        _usage(str(exc))
    except ValueError as exc:  # pydantic's ValidationError included
        _usage(str(exc).splitlines()[0] if "validation error" not in str(exc) else _first(exc))


def _first(exc: ValueError) -> str:
    lines = str(exc).splitlines()
    return " ".join(line.strip() for line in lines[1:3])


def _usage(message: str) -> NoReturn:
    errors.print(f"[bold red]{escape(message)}[/]")
    raise typer.Exit(EXIT_USAGE)


def _parse(timestamp: Any) -> datetime | None:
    if not isinstance(timestamp, str):
        return None
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def _when(value: Any, now: datetime) -> str | None:
    if not isinstance(value, datetime):
        return None
    delta = (now - value).total_seconds()
    relative = f"{_age(delta)} ago" if delta >= 0 else f"in {_age(-delta)}"
    return f"{value:%Y-%m-%d %H:%M:%S} ({relative})"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    span = timedelta(seconds=int(max(seconds, 0)))
    days, rest = span.days, span.seconds
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def main() -> None:
    """The `video-service-admin` console script."""
    app()


__all__ = ["Runtime", "app", "main"]
