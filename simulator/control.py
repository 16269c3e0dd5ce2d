"""The control API under `/_sim/`: faults, config, clock, counters and the tasks created.

Tests use it to prove what reached the "vendor": `/_sim/generations` counts successful creates
(each one a paid generation upstream), `/_sim/tasks` shows them with their bodies.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.context import Sim
from simulator.state import Task
from simulator.uploads import upload_from_request
from simulator.wire import NOT_JSON, iso_utc, json_body

TASK_FILTERS = (
    "vendor",
    "model",
    "request_id",
    "request_id_prefix",
    "account",
    "prompt",
    "prompt_contains",
    "status",
)


def routes(sim: Sim) -> list[Route]:
    api = ControlApi(sim)
    return [
        Route("/_sim/health", api.health),
        Route("/_sim/config", api.config, methods=["GET", "PATCH"]),
        Route("/_sim/faults", api.faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sim/faults/{rule_id:int}", api.delete_fault, methods=["DELETE"]),
        Route("/_sim/reset", api.reset, methods=["POST"]),
        Route("/_sim/clock", api.clock, methods=["GET", "POST"]),
        Route("/_sim/stats", api.stats),
        Route("/_sim/generations", api.generations),
        Route("/_sim/tasks", api.tasks),
        Route("/_sim/tasks/{task_id}", api.task),
        Route("/_sim/uploads", api.uploads, methods=["GET", "POST"]),
    ]


def problem(message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message}, status)


class ControlApi:
    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def config(self, request: Request) -> Response:
        if request.method == "PATCH":
            body = await json_body(request)
            if not isinstance(body, dict):
                return problem("PATCH /_sim/config takes a JSON object of config keys")
            try:
                self.sim.config = self.sim.config.updated(body)
            except (ValueError, TypeError) as exc:
                return problem(str(exc))
        return JSONResponse(self.sim.config.to_dict())

    async def faults(self, request: Request) -> Response:
        book = self.sim.faults
        if request.method == "DELETE":
            book.clear()
        elif request.method == "POST":
            body = await json_body(request)
            if body is NOT_JSON:
                return problem("the body must be a rule object or a list of them")
            items = body if isinstance(body, list) else [body]
            try:
                added = [book.add(item) for item in items]
            except (ValueError, TypeError) as exc:
                return problem(str(exc))
            return JSONResponse({"rules": [rule.to_dict() for rule in added]}, 201)
        return JSONResponse({"rules": [rule.to_dict() for rule in book.rules()]})

    async def delete_fault(self, request: Request) -> Response:
        if not self.sim.faults.remove(request.path_params["rule_id"]):
            return problem("no such rule", 404)
        return JSONResponse({"deleted": request.path_params["rule_id"]})

    async def reset(self, request: Request) -> Response:
        self.sim.reset()
        return JSONResponse({"ok": True})

    async def clock(self, request: Request) -> Response:
        if request.method == "POST":
            body = await json_body(request)
            advance = body.get("advance_s") if isinstance(body, dict) else None
            if not isinstance(advance, int | float) or advance < 0:
                return problem('POST /_sim/clock takes {"advance_s": seconds >= 0}')
            self.sim.clock.advance(advance)
        now = self.sim.clock.now()
        return JSONResponse(
            {"now": now, "now_iso": iso_utc(now), "offset_s": self.sim.clock.offset}
        )

    async def stats(self, request: Request) -> Response:
        now = self.sim.clock.now()
        snapshot = self.sim.stats.snapshot(now)
        tasks: dict[str, Counter[str]] = {}
        for task in self.sim.tasks.all():
            phase = task.phase(now, self.sim.config.task_ttl_s)
            tasks.setdefault(task.vendor, Counter())[phase.value] += 1
        snapshot["tasks"] = {
            vendor: {"total": sum(c.values()), "by_status": dict(c)} for vendor, c in tasks.items()
        }
        snapshot["generations"] = len(self.sim.tasks)
        snapshot["faults_applied"] = self.sim.faults.applied
        return JSONResponse(snapshot)

    def _select(self, request: Request) -> list[Task]:
        params = request.query_params
        now, ttl = self.sim.clock.now(), self.sim.config.task_ttl_s

        def keep(task: Task) -> bool:
            checks = {
                "vendor": lambda v: task.vendor == v,
                "model": lambda v: task.model == v,
                "request_id": lambda v: task.request_id == v,
                "request_id_prefix": lambda v: (task.request_id or "").startswith(v),
                "account": lambda v: task.account == v,
                "prompt": lambda v: task.prompt == v,
                "prompt_contains": lambda v: v in (task.prompt or ""),
                "status": lambda v: task.phase(now, ttl).value == v,
            }
            return all(checks[name](params[name]) for name in TASK_FILTERS if name in params)

        return [task for task in self.sim.tasks.all() if keep(task)]

    async def generations(self, request: Request) -> Response:
        selected = self._select(request)
        filters = {k: v for k, v in request.query_params.items() if k in TASK_FILTERS}
        body = {"count": len(selected), "task_ids": [t.task_id for t in selected]}
        return JSONResponse({**body, "filters": filters})

    async def tasks(self, request: Request) -> Response:
        return JSONResponse({"tasks": [self._view(task) for task in self._select(request)]})

    async def uploads(self, request: Request) -> Response:
        """`POST`: record a DashScope temporary file as uploaded (stands for getPolicy and the
        OSS form POST, §1.10); `GET`: the files recorded."""
        if request.method == "POST":
            body = await json_body(request)
            if not isinstance(body, dict):
                return problem("POST /_sim/uploads takes a JSON object")
            key, account = body.get("api_key"), body.get("account")
            if isinstance(key, str) and key:
                account = self.sim.account_of(key)
            if not isinstance(account, str) or not account:
                return problem("give api_key (the uploading key) or account")
            fields = {k: v for k, v in body.items() if k not in ("api_key", "account")}
            try:
                upload = upload_from_request(fields, account, self.sim.clock.now())
            except ValueError as exc:
                return problem(str(exc))
            self.sim.uploads.add(upload)
            return JSONResponse(upload.view(), 201)
        return JSONResponse({"uploads": [u.view() for u in self.sim.uploads.all()]})

    async def task(self, request: Request) -> Response:
        task = self.sim.tasks.find(request.path_params["task_id"])
        if task is None:
            return problem("no such task", 404)
        return JSONResponse(self._view(task))

    def _view(self, task: Task) -> dict[str, Any]:
        now = self.sim.clock.now()
        return {
            "task_id": task.task_id,
            "vendor": task.vendor,
            "model": task.model,
            "path": task.path,
            "body": task.body,
            "key_fingerprint": task.key_fp,
            "account": task.account,
            "request_id": task.request_id,
            "prompt": task.prompt,
            "status": task.phase(now, self.sim.config.task_ttl_s).value,
            "created_at": iso_utc(task.created),
            "scheduled_at": iso_utc(task.scheduled),
            "ends_at": iso_utc(task.ended),
            "canceled_at": iso_utc(task.canceled_at) if task.canceled_at else None,
            "fail_code": task.fail_code,
            "queries": task.queries,
            "query_key_fingerprints": sorted(task.query_key_fps),
        }
