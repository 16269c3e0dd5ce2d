"""Zhipu BigModel routes: create a video task and query its result (§2.1-§2.7).

A client `request_id` "must be unique" (§2.3): a create that repeats one of the same account
whose task is still kept is refused with 400 `1231` "You already have a request: <id>" (Z-ERR
lists the code and message; the HTTP status and the scope, per account, are inferred). Tasks
belong to the account of the key that created them; other accounts' keys cannot query them.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator import media_check
from simulator.bigmodel_rules import Accepted, check_create
from simulator.connection import DroppedConnection
from simulator.context import Sim
from simulator.errors import Rejected, bigmodel_error, bm_message
from simulator.faults import ANSWERS, FaultRule
from simulator.results import result_urls
from simulator.state import Output, Phase, Task, fingerprint
from simulator.wire import NOT_JSON, bearer, counted, json_body

VENDOR = "bigmodel"
KEY_FORM = re.compile(r"^[^.\s]+\.[^.\s]+$")  # <id>.<secret>
# Fault action -> (HTTP status, code); a rule's own `code` wins (e.g. 1305 for overload).
FAULT_ERRORS = {
    "403": (403, "1220"),
    "429": (429, "1302"),
    "500": (500, "500"),
    "503": (503, "1305"),
    "504": (504, "500"),
    "arrearage": (429, "1113"),
    "moderation": (400, "1301"),
}
PROCESSING = (Phase.PENDING, Phase.RUNNING)


def routes(sim: Sim) -> list[Route]:
    api = BigModelApi(sim)
    return [
        Route(
            "/api/paas/v4/videos/generations",
            counted(sim.stats, VENDOR, "submit", api.create),
            methods=["POST"],
        ),
        Route("/api/paas/v4/async-result/{id}", counted(sim.stats, VENDOR, "query", api.query)),
    ]


def platform_id() -> str:
    """A 19-digit id like BigModel's task and request ids."""
    return str(10**18 + secrets.randbelow(9 * 10**18))


def fault_response(rule: FaultRule) -> Response:
    if rule.action == "reset":
        return DroppedConnection()
    status, code = FAULT_ERRORS[rule.action]
    code = rule.code or code
    return bigmodel_error(status, code, rule.message or bm_message(code), rule.headers())


def throttled() -> Response:
    return bigmodel_error(429, "1302", bm_message("1302"))


class BigModelApi:
    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    def _key(self, request: Request) -> str | Response:
        key = bearer(request)
        if key is None:
            message = "Authentication parameter not received in Header, unable to authenticate."
            return bigmodel_error(401, "1001", message)
        config = self.sim.config
        allowed = config.bigmodel_keys
        known = KEY_FORM.match(key) is not None if allowed is None else key in allowed
        if not known or key in config.rejected_keys:
            message = (
                "Authorization Token is invalid, please ensure that the Authorization Token is "
                "correctly provided."
            )
            return bigmodel_error(401, "1002", message)
        return key

    async def create(self, request: Request) -> Response:
        key = self._key(request)
        if isinstance(key, Response):
            return key
        body = await json_body(request)
        if body is NOT_JSON:
            return bigmodel_error(400, "1210", "The request body is not valid JSON.")
        try:
            accepted = check_create(body)
            self._check_images(request, accepted, body.get("image_url"))
        except Rejected as exc:
            return bigmodel_error(exc.status, exc.code, exc.message)
        return await self._submit(request.url.path, key, body, accepted)

    def _check_images(self, request: Request, accepted: Accepted, given: Any) -> None:
        """Fetch and check the input images (simulator/media_check.py, limits of §2.3), or
        Rejected: 400 `1214` naming image_url for every problem (inferred: BigModel documents
        no code for images it cannot fetch or use)."""
        limits = accepted.model.image
        if limits is None or given is None:
            return
        urls = given if isinstance(given, list) else [given]
        pictures = []
        try:
            for i, url in enumerate(urls):
                where = f"image_url[{i}]" if isinstance(given, list) else "image_url"
                content = media_check.fetch(self.sim, request, url)
                pictures.append(media_check.check(content, limits, where))
            if accepted.model.family == "vidu-start-end" and len(pictures) == 2:
                media_check.check_similar(*pictures)
        except media_check.MediaProblem as problem:
            raise Rejected(400, "1214", problem.message) from None

    async def _submit(self, path: str, key: str, body: Any, accepted: Accepted) -> Response:
        sim, model = self.sim, accepted.model.name
        context = (VENDOR, "submit", model, accepted.prompt)
        if (rule := sim.faults.take(ANSWERS, *context, stage="before")) is not None:
            return fault_response(rule)
        account = sim.account_of(key)
        if accepted.request_id is not None:
            earlier = sim.tasks.by_request_id(VENDOR, account, accepted.request_id)
            if earlier is not None and earlier.phase(sim.clock.now(), sim.config.task_ttl_s) != (
                Phase.UNKNOWN
            ):
                message = f"You already have a request: {accepted.request_id}"
                return bigmodel_error(400, "1231", message)
        window = sim.admit(VENDOR, account, model)
        if window is None:
            return throttled()
        task = Task(
            task_id=platform_id(),
            vendor=VENDOR,
            model=model,
            path=path,
            body=body,
            key_fp=fingerprint(key),
            account=account,
            prompt=accepted.prompt,
            output=Output(accepted.width, accepted.height, accepted.duration),
            created=sim.clock.now(),
            scheduled=window[0],
            ended=window[1],
            request_id=accepted.request_id or platform_id(),
        )
        self._mark(task, context)
        sim.add_task(task)
        if (rule := sim.faults.take(ANSWERS, *context, stage="after")) is not None:
            return fault_response(rule)
        if (delay := sim.faults.take({"delay"}, *context)) is not None:
            await asyncio.sleep(delay.seconds or 0)
        created = {"model": model, "id": task.task_id, "request_id": task.request_id}
        return JSONResponse({**created, "task_status": "PROCESSING"})

    def _mark(self, task: Task, context: tuple[str, str, str, str | None]) -> None:
        faults = self.sim.faults
        if (rule := faults.take({"fail_task"}, *context)) is not None:
            task.fail(rule.code or "FAIL", rule.message or "Video generation failed.")
            if rule.code is not None:  # the FAIL body's `error` object is undocumented: opt-in
                task.extra["error"] = {"code": rule.code, "message": task.fail_message}
        if faults.take({"unknown"}, *context) is not None:
            task.unknown = True
        if faults.take({"expired_url"}, *context) is not None:
            task.url_expired = True

    async def query(self, request: Request) -> Response:
        key = self._key(request)
        if isinstance(key, Response):
            return key
        sim = self.sim
        account = sim.account_of(key)
        task = sim.visible(sim.tasks.get(VENDOR, request.path_params["id"]), account)
        if not sim.allow_query(VENDOR, account):
            return throttled()
        context = (VENDOR, "query", task.model if task else None, task.prompt if task else None)
        if (rule := sim.faults.take(ANSWERS, *context)) is not None:
            return fault_response(rule)
        if (delay := sim.faults.take({"delay"}, *context)) is not None:
            await asyncio.sleep(delay.seconds or 0)
        phase = task.phase(sim.clock.now(), sim.config.task_ttl_s) if task else Phase.UNKNOWN
        if task is None or phase is Phase.UNKNOWN:
            return bigmodel_error(400, "1210", "No task found for this id.")
        task.queries += 1
        task.query_key_fps.add(fingerprint(key))
        return JSONResponse(self._task_body(request, task, phase))

    def _task_body(self, request: Request, task: Task, phase: Phase) -> dict[str, Any]:
        body: dict[str, Any] = {"model": task.model, "request_id": task.request_id}
        if phase in PROCESSING:
            body["task_status"] = "PROCESSING"
        elif phase is Phase.SUCCEEDED:
            url, cover = result_urls(self.sim, request, task)
            body.update(
                task_status="SUCCESS", video_result=[{"url": url, "cover_image_url": cover}]
            )
        else:
            body["task_status"] = "FAIL"
            if "error" in task.extra:
                body["error"] = task.extra["error"]
        return body
