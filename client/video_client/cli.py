"""`video-service`: the video service from a terminal.

    video-service models [MODEL]
    video-service submit MODEL -p prompt="a kitten on the grass" -p size=832*480 --wait
    video-service watch ID [ID ...]
    video-service status ID
    video-service cancel ID
    video-service tail [--status failed] [--model M] [--request-id 'order-*']

Kafka and the topics come from the service's own variables (KAFKA_BOOTSTRAP_SERVERS,
KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, TOPIC_*); a token from --token or VIDEO_CLIENT_TOKEN.
Exit status: 0 done (or still running, for status), 1 the task failed or was cancelled or
refused, 2 the command line or a parameter is wrong (nothing was sent), 3 Kafka or the service
cannot be reached, 4 no such task.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn, TypeVar

try:
    import typer
    from rich.console import Console, Group, RenderableType
    from rich.live import Live
    from rich.markup import escape
    from rich.spinner import Spinner
    from rich.table import Table
    from rich.text import Text
except ImportError as missing:  # the client is installed without its [cli] extra
    raise SystemExit(
        f"video-service needs the CLI extra ({missing.name} is missing): "
        "pip install 'video-service-client[cli]'"
    ) from None

from video_client.client import TaskHandle, VideoClient
from video_client.errors import (
    InvalidParameters,
    InvalidRequest,
    RequestRejected,
    TaskFailed,
    TopicNotFound,
    UnknownModel,
    VideoClientError,
)
from video_client.models import MODELS, ModelInfo, get_model
from video_client.schemas import CompletedEvent, StatusEvent, TaskStatus

T = TypeVar("T")

app = typer.Typer(
    name="video-service",
    help="Send video requests to the video service and follow them (Kafka in, Kafka out).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

STYLE = {
    TaskStatus.ACCEPTED: "cyan",
    TaskStatus.SUBMITTED: "blue",
    TaskStatus.RUNNING: "yellow",
    TaskStatus.DOWNLOADING: "magenta",
    TaskStatus.COMPLETED: "bold green",
    TaskStatus.FAILED: "bold red",
    TaskStatus.CANCELLED: "bold red",
}
EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND = 1, 2, 3, 4


class Options:
    """The options every command shares (set by the callback)."""

    token: str | None = None
    reply_topic: str | None = None
    bootstrap_servers: str | None = None

    @classmethod
    def client(cls) -> VideoClient:
        env = None
        if cls.bootstrap_servers:
            import os

            env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": cls.bootstrap_servers}
        kwargs: dict[str, Any] = {}
        if cls.token:
            kwargs["token"] = cls.token
        if cls.reply_topic:
            kwargs["reply_topic"] = cls.reply_topic
        return VideoClient.from_env(env, **kwargs)


@app.callback()
def main_options(
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka brokers (localhost:9092)"),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="VIDEO_CLIENT_TOKEN", help="JWT sent as `authorization: Bearer`"),
    ] = None,
    reply_topic: Annotated[
        str | None,
        typer.Option(envvar="VIDEO_CLIENT_REPLY_TOPIC", help="Follow tasks on this topic"),
    ] = None,
) -> None:
    Options.bootstrap_servers = bootstrap_servers
    Options.token = token
    Options.reply_topic = reply_topic


# --- models ------------------------------------------------------------------------------------


@app.command()
def models(
    model: Annotated[str | None, typer.Argument(help="Show this model's parameters")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The JSON Schema(s) instead")] = False,
) -> None:
    """The models the service runs and their parameters."""
    if model is not None:
        spec = _or_exit(lambda: get_model(model))
        if as_json:
            console.print_json(data=dict(spec.json_schema))
            return
        console.print(_parameters_table(spec))
        for note in (*spec.notes, *_service_only(spec)):
            console.print(f"  {escape(note)}")
        return
    if as_json:
        console.print_json(data={name: dict(m.json_schema) for name, m in MODELS.items()})
        return
    table = Table(title="Models", title_justify="left", show_lines=False)
    table.add_column("model", style="bold", no_wrap=True)
    table.add_column("provider")
    table.add_column("kind")
    table.add_column("typical")
    table.add_column("parameters (required in bold)")
    for spec in MODELS.values():
        names = Text(", ").join(
            Text(p.name, style="bold" if p.required == "yes" else "") for p in spec.parameters
        )
        table.add_row(
            spec.name, spec.provider, spec.kind, _duration(spec.typical_duration_s), names
        )
    console.print(table)
    console.print("[dim]video-service models MODEL: a model's parameters and allowed values[/]")


def _parameters_table(spec: ModelInfo) -> Table:
    table = Table(title=f"{spec.name} ({spec.provider}: {spec.kind})", title_justify="left")
    for column in ("parameter", "type", "allowed", "default", "required"):
        table.add_column(column, overflow="fold")
    for p in spec.parameters:
        table.add_row(p.name, p.type, p.allowed, p.default or "", p.required)
    return table


def _service_only(spec: ModelInfo) -> list[str]:
    return [f"checked by the service only: {check}" for check in spec.service_checks]


# --- submit, watch, status, cancel -----------------------------------------------------------


@app.command()
def submit(
    model: Annotated[str, typer.Argument(help="A model (see `video-service models`)")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="A parameter as key=value (value read as JSON when it is JSON)"
        ),
    ] = None,
    parameters: Annotated[
        str | None, typer.Option(help="All parameters as one JSON object (-p values win)")
    ] = None,
    request_id: Annotated[str | None, typer.Option(help="Idempotency key (default: new)")] = None,
    metadata: Annotated[str | None, typer.Option(help="JSON object echoed in events")] = None,
    timeout_s: Annotated[int | None, typer.Option(help="Task deadline, 60 to 86400 s")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the task until it ends")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print events as JSON lines")] = False,
) -> None:
    """Check a request, send it, and (with --wait) follow it to its video."""
    values = _parse_parameters(param or [], parameters)
    meta = _json_object(metadata, "--metadata") if metadata else None
    spec = _or_exit(lambda: get_model(model))

    async def run(client: VideoClient) -> int:
        handle = await client.submit(
            spec.name, values, request_id=request_id, metadata=meta, timeout_s=timeout_s
        )
        if not wait:
            if as_json:
                print(json.dumps({"request_id": handle.request_id}))
            else:
                console.print(f"sent [bold]{handle.request_id}[/] ({spec.name})")
                console.print(f"[dim]follow it: video-service watch {handle.request_id}[/]")
            return 0
        if not as_json:
            console.print(f"sent [bold]{handle.request_id}[/] ({spec.name})")
        return await follow([handle], as_json=as_json)

    raise typer.Exit(_run(run))


@app.command()
def watch(
    request_ids: Annotated[list[str], typer.Argument(help="One or more request ids")],
    since: Annotated[str, typer.Option(help="Look this far back: 30m, 25h, 2d")] = "25h",
    as_json: Annotated[bool, typer.Option("--json", help="Print events as JSON lines")] = False,
) -> None:
    """Follow tasks live, from their first event to their end."""
    lookback = _period(since)

    async def run(client: VideoClient) -> int:
        handles = [await client.attach(rid, since=lookback) for rid in request_ids]
        return await follow(handles, as_json=as_json)

    raise typer.Exit(_run(run))


@app.command()
def status(
    request_id: Annotated[str, typer.Argument(help="A request id")],
    since: Annotated[str, typer.Option(help="Look this far back: 30m, 25h, 2d")] = "25h",
    as_json: Annotated[bool, typer.Option("--json", help="Print the events as JSON")] = False,
) -> None:
    """A task's events so far and, once completed, its videos."""
    lookback = _period(since)

    async def run(client: VideoClient) -> int:
        handle = await client.attach(request_id, since=lookback)
        await handle.loaded()
        if not handle.statuses:
            errors.print(f"no events of {request_id} in the last {since}")
            return EXIT_NOT_FOUND
        if as_json:
            completed = handle.completed
            print(
                json.dumps(
                    {
                        "statuses": [e.model_dump(mode="json") for e in handle.statuses],
                        "completed": completed.model_dump(mode="json") if completed else None,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            view = TaskView(handle)
            view.sync()
            console.print(view.render(live=False))
            console.print(view.summary())
        latest = handle.statuses[-1]
        return EXIT_FAILED if latest.status in (TaskStatus.FAILED, TaskStatus.CANCELLED) else 0

    raise typer.Exit(_run(run))


@app.command()
def cancel(
    request_id: Annotated[str, typer.Argument(help="A request id")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in the cancelled event)")] = None,
    wait_s: Annotated[float, typer.Option(help="Wait this long for `cancelled`; 0: don't")] = 15,
) -> None:
    """Cancel a task."""

    async def run(client: VideoClient) -> int:
        handle = await client.attach(request_id, since=timedelta(hours=25)) if wait_s else None
        if handle is not None:
            await handle.loaded()
            latest = handle.latest
            if latest is not None and latest.status.terminal:
                console.print(f"{request_id} has already ended: {_status_text(latest)}")
                return 0 if latest.status == TaskStatus.CANCELLED else EXIT_FAILED
        await client.cancel(request_id, reason)
        console.print(f"cancel sent for [bold]{request_id}[/]")
        if handle is None:
            return 0
        try:
            async with asyncio.timeout(wait_s):
                async for event in handle.events():
                    if event.status.terminal:
                        console.print(_status_text(event))
                        return 0 if event.status == TaskStatus.CANCELLED else EXIT_FAILED
        except TimeoutError:
            pass
        errors.print(
            f"no `cancelled` within {wait_s:g} s: the task may be unknown, or this token may not "
            "cancel it (the service logs refused cancels)"
        )
        return EXIT_FAILED

    raise typer.Exit(_run(run))


# --- tail ----------------------------------------------------------------------------------------


@app.command()
def tail(
    status: Annotated[
        list[str] | None, typer.Option("--status", "-s", help="Only these statuses")
    ] = None,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Only these")] = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider")] = None,
    request_id: Annotated[str | None, typer.Option(help="Glob on request ids: 'order-*'")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user_id")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant_id")] = None,
    since: Annotated[
        str | None, typer.Option(help="Start this far back: 10m (default: now)")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Stop after this many events")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print events as JSON lines")] = False,
) -> None:
    """Every task's status events, live, filtered."""
    unknown = sorted(set(status or ()) - {s.value for s in TaskStatus})
    if unknown:
        _usage(f"--status {', '.join(unknown)}: one of {', '.join(s.value for s in TaskStatus)}")
    lookback = _period(since) if since else None

    def wanted(e: StatusEvent) -> bool:
        return (
            (not status or e.status.value in status)
            and (not model or e.model in model)
            and (provider is None or e.provider == provider)
            and (request_id is None or fnmatch.fnmatchcase(e.request_id, request_id))
            and (user is None or e.user_id == user)
            and (tenant is None or e.tenant_id == tenant)
        )

    async def run(client: VideoClient) -> int:
        shown = 0
        if not as_json:
            errors.print("[dim]following status events; Ctrl-C to stop[/]")
        async for event in client.stream(since=lookback):
            if not wanted(event):
                continue
            if as_json:
                print(event.model_dump_json(), flush=True)
            else:
                console.print(_tail_line(event), soft_wrap=True)
            shown += 1
            if limit is not None and shown >= limit:
                break
        return 0

    raise typer.Exit(_run(run, events_only=True))


def _tail_line(e: StatusEvent) -> Text:
    line = Text()
    line.append(e.timestamp[11:23] + " ", style="dim")
    line.append(f"{e.request_id} ", style="bold")
    line.append(f"#{e.sequence} ")
    line.append(f"{e.status.value:<11}", style=STYLE[e.status])
    line.append(f" {e.model or '-'}")
    if e.upstream_status:
        line.append(f" {e.upstream_status}", style="dim")
    if e.error is not None:
        line.append(f" {e.error.code}: {e.error.message}", style="red")
    return line


# --- following tasks -----------------------------------------------------------------------


class TaskView:
    """What one task looks like on the screen: its timeline and, at the end, its videos."""

    def __init__(self, handle: TaskHandle) -> None:
        self.handle = handle
        self.events: list[StatusEvent] = []
        self.completed: CompletedEvent | None = None
        self.failure: TaskFailed | None = None
        self.spinner = Spinner("dots", style="yellow")
        self.loop_started = time.monotonic()
        self.first_seen: float | None = None

    def sync(self) -> None:
        self.events = self.handle.statuses
        self.completed = self.handle.completed

    @property
    def model(self) -> str:
        first = self.events[0] if self.events else None
        return self.handle.model or (first.model if first else None) or "?"

    @property
    def ended(self) -> bool:
        return (
            self.failure is not None
            or self.completed is not None
            or (bool(self.events) and self.events[-1].status.terminal)
        )

    def elapsed(self) -> float:
        """Since the task was accepted (its first event's time), else since we started."""
        if self.events:
            start = _parse(self.events[0].timestamp)
            end = _parse(self.events[-1].timestamp) if self.ended else datetime.now(UTC)
            return max(0.0, (end - start).total_seconds())
        return time.monotonic() - self.loop_started

    def render(self, live: bool = True) -> RenderableType:
        head = Table.grid(padding=(0, 1))
        head.add_column(width=2)
        head.add_column()
        latest = self.events[-1] if self.events else None
        state = Text()
        state.append(f"{self.handle.request_id}", style="bold")
        state.append(f"  {self.model}  ")
        if latest is None:
            state.append("waiting for the service…", style="dim")
        else:
            state.append(latest.status.value, style=STYLE[latest.status])
            if latest.upstream_status:
                state.append(f" (upstream {latest.upstream_status})", style="dim")
        state.append(f"  {_clock(self.elapsed())}")
        mark: RenderableType
        if self.ended:
            good = self.failure is None and latest is not None and latest.status == "completed"
            mark = Text("✔", style="green") if good else Text("✘", style="red")
        else:
            mark = self.spinner if live else Text("…")
        head.add_row(mark, state)
        timeline = Table.grid(padding=(0, 2))
        timeline.add_column(width=4)
        timeline.add_column(width=12)
        timeline.add_column(justify="right", width=8)
        timeline.add_column()
        start = _parse(self.events[0].timestamp) if self.events else None
        for event in self.events:
            at = (_parse(event.timestamp) - start).total_seconds() if start else 0.0
            detail = []
            if event.status == TaskStatus.SUBMITTED and event.upstream_task_id:
                detail.append(f"upstream task {event.upstream_task_id}")
            if event.upstream_status:
                detail.append(event.upstream_status)
            if event.error is not None:
                detail.append(f"{event.error.code}: {event.error.message}")
            timeline.add_row(
                Text(f"#{event.sequence}", style="dim"),
                Text(event.status.value, style=STYLE[event.status]),
                Text(f"+{at:.1f}s", style="dim"),
                Text("  ".join(detail), style="red" if event.error else "dim"),
            )
        if self.failure is not None and not self.events:
            timeline.add_row("", Text("refused", style="bold red"), "", Text(str(self.failure)))
        return Group(head, timeline)

    def summary(self) -> RenderableType:
        if self.failure is not None:
            return Text(f"✘ {self.handle.request_id}: {self.failure.code}: "
                        f"{self.failure.error.message}", style="bold red")  # fmt: skip
        if self.completed is None:
            latest = self.events[-1] if self.events else None
            if latest is not None and latest.status == TaskStatus.COMPLETED:
                return Text(f"✔ {self.handle.request_id} completed (no completed event found)")
            return Text(f"… {self.handle.request_id} has not ended", style="dim")
        result, timings = self.completed.result, self.completed.timings
        table = Table(
            title=f"✔ {self.handle.request_id} completed in {timings.total_s:.1f} s "
            f"(generation {timings.generation_s:.1f} s, download {timings.download_s:.1f} s)",
            title_justify="left",
            title_style="bold green",
        )
        for column in ("video", "file", "size", "duration", "resolution"):
            table.add_column(column, overflow="fold")
        for video in result.videos:
            where = video.local_path
            if video.object_url:  # uploaded to object storage: fetchable from other hosts
                expiry = video.object_url_expires_at
                where += f"\n{video.object_url}" + (f"\n(until {expiry})" if expiry else "")
            table.add_row(
                str(video.index),
                where,
                _size(video.size_bytes),
                f"{video.duration:.1f} s" if video.duration is not None else "?",
                f"{video.width}x{video.height}" if video.width and video.height else "?",
            )
        return table

    async def follow(self, on_event: Callable[[StatusEvent], None] | None = None) -> None:
        try:
            async for event in self.handle.events():
                self.events.append(event)
                if on_event is not None:
                    on_event(event)
            if self.events and self.events[-1].status == TaskStatus.COMPLETED:
                self.completed = await self.handle.result(timeout=30)
            else:
                await self.handle.result(timeout=0.5)
        except TaskFailed as failure:
            self.failure = failure
        except TimeoutError:
            pass


async def follow(handles: Sequence[TaskHandle], *, as_json: bool = False) -> int:
    """Show tasks until they end: a live display on a terminal, a line per event elsewhere."""
    views = [TaskView(h) for h in handles]
    if as_json:

        def show(e: StatusEvent) -> None:
            print(e.model_dump_json(), flush=True)

        await asyncio.gather(*(v.follow(show) for v in views))
        for view in views:
            if view.completed is not None:
                print(view.completed.model_dump_json(), flush=True)
    elif console.is_terminal:
        with Live(
            get_renderable=lambda: Group(*(v.render() for v in views)),
            console=console,
            refresh_per_second=10,
        ):
            await asyncio.gather(*(v.follow() for v in views))
    else:

        def printer(view: TaskView) -> Callable[[StatusEvent], None]:
            def show(e: StatusEvent) -> None:
                console.print(Text(f"[{_clock(view.elapsed())}] ") + _tail_line(e), soft_wrap=True)

            return show

        await asyncio.gather(*(v.follow(printer(v)) for v in views))
    if not as_json:
        for view in views:
            console.print(view.summary())
    failed = any(v.failure is not None or v.completed is None for v in views)
    return EXIT_FAILED if failed else 0


# --- helpers ---------------------------------------------------------------------------------


def _run(body: Callable[[VideoClient], Awaitable[int]], *, events_only: bool = False) -> int:
    """Run a command's coroutine with a started client, turning errors into messages."""

    async def main() -> int:
        client = Options.client()
        if events_only:
            return await body(client)
        async with client:
            return await body(client)

    try:
        return asyncio.run(main())
    except InvalidParameters as exc:
        errors.print("[bold red]not sent, invalid parameters:[/]")
        for problem in exc.problems:
            errors.print(f"  {escape(problem)}")
        return EXIT_USAGE
    except (UnknownModel, InvalidRequest) as exc:
        errors.print(f"[bold red]not sent:[/] {escape(str(exc))}")
        return EXIT_USAGE
    except RequestRejected as exc:
        errors.print(f"[bold red]refused:[/] {exc.code}: {escape(exc.error.message)}")
        return EXIT_FAILED
    except TopicNotFound as exc:
        errors.print(f"[bold red]{escape(str(exc))}[/]")
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        errors.print("[dim]stopped[/]")
        return 130
    except VideoClientError as exc:
        errors.print(f"[bold red]{escape(str(exc))}[/]")
        return EXIT_FAILED
    except Exception as exc:
        if type(exc).__module__.startswith("aiokafka") or isinstance(exc, OSError):
            errors.print(f"[bold red]cannot reach Kafka:[/] {escape(repr(exc))}")
            return EXIT_UNREACHABLE
        raise


def _parse_parameters(pairs: Sequence[str], whole: str | None) -> dict[str, Any]:
    values = _json_object(whole, "--parameters") if whole else {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            _usage(f"-p {pair}: write key=value, e.g. -p prompt='a kitten' -p duration=5")
        values[key.strip()] = _value(text)
    return values


def _value(text: str) -> Any:
    """JSON when it is JSON (5, true, ["a"], "quoted"), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        _usage(f"{option}: not JSON ({exc})")
    if not isinstance(value, dict):
        _usage(f"{option}: must be a JSON object")
    return value


def _period(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return timedelta(seconds=float(text[:-1]) * units[text[-1]])
    except (KeyError, ValueError, IndexError):
        _usage(f"{text!r}: a period like 30s, 10m, 25h or 2d")


def _usage(message: str) -> NoReturn:
    errors.print(f"[bold red]{escape(message)}[/]")
    raise typer.Exit(EXIT_USAGE)


def _or_exit(call: Callable[[], T]) -> T:
    try:
        return call()
    except (UnknownModel, InvalidParameters) as exc:
        _usage(str(exc))


def _status_text(e: StatusEvent) -> Text:
    text = Text(e.status.value, style=STYLE[e.status])
    if e.error is not None:
        code = "" if e.error.code == e.status.value else f"{e.error.code}: "
        text.append(f" ({code}{e.error.message})")
    return text


def _parse(timestamp: str) -> datetime:
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def _duration(seconds: float) -> str:
    return f"~{seconds / 60:g} min" if seconds >= 60 else f"~{seconds:g} s"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"


def main() -> None:
    """The `video-service` console script."""
    app()


if __name__ == "__main__":
    main()

__all__ = ["app", "follow", "main"]
