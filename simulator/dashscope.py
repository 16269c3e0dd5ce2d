"""DashScope (Tongyi Wanxiang wanx2.1) routes: create, query, cancel and list tasks (§1.2-§1.9).

Tasks belong to the account of the key that created them: any key of that account may query,
cancel and list them, keys of other accounts see nothing (§1.6, A-TASKS).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator import media_check
from simulator.catalog import DASHSCOPE_IMAGE, IMAGE2VIDEO, VIDEO_GENERATION
from simulator.connection import DroppedConnection
from simulator.context import Sim
from simulator.dashscope_rules import Accepted, check_create, list_query
from simulator.errors import Rejected, dashscope_error, ds_message
from simulator.faults import ANSWERS, FaultRule
from simulator.results import result_urls
from simulator.state import Output, Phase, Task, fingerprint
from simulator.wire import NOT_JSON, bearer, counted, dashscope_time, json_body

VENDOR = "dashscope"
CREATE_PATH = "/api/v1/services/aigc/{kind}/video-synthesis"
# Fault action -> (HTTP status, code); a rule's own `code` wins. 503/504 bodies are inferred.
FAULT_ERRORS = {
    "403": (403, "AccessDenied"),
    "429": (429, "Throttling.RateQuota"),
    "500": (500, "InternalError"),
    "503": (503, "ServiceUnavailable"),
    "504": (504, "GatewayTimeout"),
    "arrearage": (400, "Arrearage"),
    "moderation": (400, "DataInspectionFailed"),
}
STARTED = (Phase.RUNNING, Phase.SUCCEEDED, Phase.FAILED)


def routes(sim: Sim) -> list[Route]:
    api = DashScopeApi(sim)

    def create(kind: str) -> Route:
        async def endpoint(request: Request) -> Response:
            return await api.create(request, kind)

        path = CREATE_PATH.format(kind=kind)
        return Route(path, counted(sim.stats, VENDOR, "submit", endpoint), methods=["POST"])

    return [
        create(VIDEO_GENERATION),
        create(IMAGE2VIDEO),
        Route("/api/v1/tasks", counted(sim.stats, VENDOR, "list", api.list_tasks)),
        Route("/api/v1/tasks/{task_id}", counted(sim.stats, VENDOR, "query", api.query)),
        Route(
            "/api/v1/tasks/{task_id}/cancel",
            counted(sim.stats, VENDOR, "cancel", api.cancel),
            methods=["POST"],
        ),
    ]


def fault_response(rule: FaultRule) -> Response:
    if rule.action == "reset":
        return DroppedConnection()
    status, code = FAULT_ERRORS[rule.action]
    code = rule.code or code
    return dashscope_error(status, code, rule.message or ds_message(code), rule.headers())


def _media_rejection(problem: media_check.MediaProblem) -> Rejected:
    if problem.kind == media_check.UNREACHABLE:
        message = "Download the media resource timed out during the data inspection process."
        return Rejected(400, "InvalidParameter.DataInspection", f"{message} ({problem.message})")
    if problem.kind == media_check.FORMAT:
        message = ds_message("InvalidParameter.DataInspection")
        return Rejected(400, "InvalidParameter.DataInspection", f"{message} ({problem.message})")
    return Rejected(400, "InvalidParameter", problem.message)


def throttled() -> Response:
    return dashscope_error(429, "Throttling.RateQuota", ds_message("Throttling.RateQuota"))


class DashScopeApi:
    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    def _key(self, request: Request) -> str | Response:
        """The caller's API key, or the 401 DashScope gives."""
        key = bearer(request)
        if key is None:
            return dashscope_error(401, "InvalidApiKey", "No API-key provided.")
        config = self.sim.config
        known = (
            key.startswith("sk-") and len(key) > 3
            if config.dashscope_keys is None
            else (key in config.dashscope_keys)
        )
        if not known or key in config.rejected_keys:
            return dashscope_error(401, "InvalidApiKey", "Invalid API-key provided.")
        return key

    async def create(self, request: Request, kind: str) -> Response:
        key = self._key(request)
        if isinstance(key, Response):
            return key
        if request.headers.get("x-dashscope-async", "").lower() != "enable":
            message = "current user api does not support synchronous calls"
            return dashscope_error(403, "AccessDenied", message)
        body = await json_body(request)
        if body is NOT_JSON:
            return dashscope_error(400, "InvalidParameter", "The request body is not valid JSON.")
        try:
            as_failure = self.sim.config.invalid_params_as == "failed_task"
            accepted = check_create(kind, body, request.headers, errors_as_failure=as_failure)
            self._check_images(request, key, accepted.model.name, body["input"])
        except Rejected as exc:
            return dashscope_error(exc.status, exc.code, exc.message)
        return await self._submit(request.url.path, key, body, accepted)

    def _check_images(self, request: Request, key: str, model: str, inputs: dict[str, Any]) -> None:
        """Fetch and check every input image (simulator/media_check.py), or Rejected.

        Codes: a download that times out, 400 `InvalidParameter.DataInspection` "Download the
        media resource timed out during the data inspection process." (issue 9's wording of
        that code's second meaning); a bad format or a PNG with alpha, the same code with its
        documented "media format" message (§1.8, §1.10); a missing file, too big a file or
        pixels out of bounds, 400 `InvalidParameter` (inferred); `oss://`, see uploads.py."""
        for name in ("img_url", "first_frame_url", "last_frame_url"):
            url = inputs.get(name)
            if not isinstance(url, str):
                continue
            try:
                if url.startswith("oss://"):
                    content = self.sim.uploads.resolve(
                        url, self.sim.account_of(key), model, self.sim.clock.now()
                    ).content
                else:
                    content = media_check.fetch(self.sim, request, url)
                media_check.check(content, DASHSCOPE_IMAGE, f"input.{name}")
            except media_check.MediaProblem as problem:
                raise _media_rejection(problem) from None

    async def _submit(self, path: str, key: str, body: Any, accepted: Accepted) -> Response:
        sim, model = self.sim, accepted.model.name
        context = (VENDOR, "submit", model, accepted.prompt)
        if (rule := sim.faults.take(ANSWERS, *context, stage="before")) is not None:
            return fault_response(rule)
        account = sim.account_of(key)
        window = sim.admit(VENDOR, account, model)
        if window is None:
            return throttled()
        task = self._new_task(path, key, body, accepted, window)
        self._mark(task, context)
        sim.add_task(task)
        if (rule := sim.faults.take(ANSWERS, *context, stage="after")) is not None:
            return fault_response(rule)
        if (delay := sim.faults.take({"delay"}, *context)) is not None:
            await asyncio.sleep(delay.seconds or 0)
        output = {"task_status": "PENDING", "task_id": task.task_id}
        return JSONResponse({"output": output, "request_id": task.extra["create_request_id"]})

    def _new_task(
        self, path: str, key: str, body: Any, accepted: Accepted, window: tuple[float, float]
    ) -> Task:
        task = Task(
            task_id=str(uuid.uuid4()),
            vendor=VENDOR,
            model=accepted.model.name,
            path=path,
            body=body,
            key_fp=fingerprint(key),
            account=self.sim.account_of(key),
            prompt=accepted.prompt,
            output=Output(accepted.width, accepted.height, accepted.duration),
            created=self.sim.clock.now(),
            scheduled=window[0],
            ended=window[1],
        )
        usage = {"video_duration": accepted.duration, "video_ratio": accepted.video_ratio}
        task.extra["usage"] = {**usage, "video_count": 1}
        task.extra["create_request_id"] = str(uuid.uuid4())
        if accepted.prompt_extend:
            task.extra["actual_prompt"] = f"{accepted.prompt or 'A scene'}. (simulated rewrite)"
        if accepted.param_error is not None:
            task.fail("InvalidParameter", accepted.param_error)
        return task

    def _mark(self, task: Task, context: tuple[str, str, str, str | None]) -> None:
        """Apply submit-time rules that decide how the task ends."""
        faults = self.sim.faults
        if (rule := faults.take({"fail_task"}, *context)) is not None:
            code = rule.code or "InternalError.Algo"
            task.fail(code, rule.message or ds_message(code))
        if faults.take({"unknown"}, *context) is not None:
            task.unknown = True
        if faults.take({"expired_url"}, *context) is not None:
            task.url_expired = True

    async def query(self, request: Request) -> Response:
        key = self._key(request)
        if isinstance(key, Response):
            return key
        task_id = request.path_params["task_id"]
        task = self.sim.visible(self.sim.tasks.get(VENDOR, task_id), self.sim.account_of(key))
        early = await self._before_answer(request, key, "query", task)
        if early is not None:
            return early
        if task is not None:
            task.queries += 1
            task.query_key_fps.add(fingerprint(key))
        return JSONResponse(self._task_body(request, task, task_id))

    async def _before_answer(
        self, request: Request, key: str, route: str, task: Task | None
    ) -> Response | None:
        """Query-rate limit and faults for a query or cancel: a response to give instead, if any."""
        sim = self.sim
        if route in ("query", "list") and not sim.allow_query(VENDOR, sim.account_of(key)):
            return throttled()
        context = (VENDOR, route, task.model if task else None, task.prompt if task else None)
        if (rule := sim.faults.take(ANSWERS, *context)) is not None:
            return fault_response(rule)
        if (delay := sim.faults.take({"delay"}, *context)) is not None:
            await asyncio.sleep(delay.seconds or 0)
        return None

    def _task_body(self, request: Request, task: Task | None, task_id: str) -> dict[str, Any]:
        now = self.sim.clock.now()
        phase = task.phase(now, self.sim.config.task_ttl_s) if task else Phase.UNKNOWN
        output: dict[str, Any] = {"task_id": task_id, "task_status": phase.value}
        body: dict[str, Any] = {"request_id": str(uuid.uuid4()), "output": output}
        if task is None or phase in (Phase.UNKNOWN, Phase.CANCELED):
            return body
        output["submit_time"] = dashscope_time(task.created)
        if phase in STARTED:
            output["scheduled_time"] = dashscope_time(task.scheduled)
        if phase in (Phase.SUCCEEDED, Phase.FAILED):
            output["end_time"] = dashscope_time(task.ended)
        if phase is Phase.FAILED:
            output.update(code=task.fail_code, message=task.fail_message)
        if phase is Phase.SUCCEEDED:
            output["video_url"] = result_urls(self.sim, request, task)[0]
            if task.prompt is not None:
                output["orig_prompt"] = task.prompt
            if "actual_prompt" in task.extra:
                output["actual_prompt"] = task.extra["actual_prompt"]
            body["usage"] = task.extra["usage"]
        return body

    async def cancel(self, request: Request) -> Response:
        key = self._key(request)
        if isinstance(key, Response):
            return key
        task = self.sim.visible(
            self.sim.tasks.get(VENDOR, request.path_params["task_id"]), self.sim.account_of(key)
        )
        early = await self._before_answer(request, key, "cancel", task)
        if early is not None:
            return early
        now = self.sim.clock.now()
        phase = task.phase(now, self.sim.config.task_ttl_s) if task else Phase.UNKNOWN
        if task is None or phase is not Phase.PENDING:
            message = f"{ds_message('UnsupportedOperation')} Only PENDING tasks can be canceled; "
            return dashscope_error(400, "UnsupportedOperation", message + f"this one is {phase}.")
        self.sim.cancel(task)
        return JSONResponse({"request_id": str(uuid.uuid4())})

    async def list_tasks(self, request: Request) -> Response:
        """`GET /api/v1/tasks`: the caller's account's tasks, newest first, filtered and paged
        (§1.2, the SDK's `list()` parameters). The answer's shape is not in upstream-apis.md:
        (inferred, from DashScope's older async-task page) `data` items with `task_id`, `status`,
        `model_name`, `gmt_create` (epoch ms), `api_key_id`, `region`, `request_id` (of the
        create call), and `page_no`, `page_size`, `total`, `total_page`. Times are Beijing."""
        key = self._key(request)
        if isinstance(key, Response):
            return key
        early = await self._before_answer(request, key, "list", None)
        if early is not None:
            return early
        try:
            query = list_query(request.query_params)
        except Rejected as exc:
            return dashscope_error(exc.status, exc.code, exc.message)
        now, ttl = self.sim.clock.now(), self.sim.config.task_ttl_s
        account = self.sim.account_of(key)
        rows = []
        for task in reversed(self.sim.tasks.all()):  # newest first, ties in creation order
            phase = task.phase(now, ttl)
            if task.vendor != VENDOR or task.account != account or phase is Phase.UNKNOWN:
                continue  # retention: 24 h (§1.9)
            if query.matches(task, phase):
                rows.append((task.created, self._listed(task, phase)))
        rows.sort(key=lambda row: -row[0])
        first = (query.page_no - 1) * query.page_size
        pages = max(1, -(-len(rows) // query.page_size))
        return JSONResponse(
            {
                "request_id": str(uuid.uuid4()),
                "data": [row for _, row in rows[first : first + query.page_size]],
                "page_no": query.page_no,
                "page_size": query.page_size,
                "total": len(rows),
                "total_page": pages,
            }
        )

    def _listed(self, task: Task, phase: Phase) -> dict[str, Any]:
        created_ms = int(task.created * 1000)
        return {
            "task_id": task.task_id,
            "status": phase.value,
            "model_name": task.model,
            "gmt_create": created_ms,
            "gmt_modified": created_ms,
            "api_key_id": task.key_fp,  # a stand-in: the real one is an Aliyun id of the key
            "region": "cn-beijing",
            "request_id": task.extra.get("create_request_id"),
        }
