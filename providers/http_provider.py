"""The I/O shared by both vendors: one reused httpx client, keys, rate limits, running slots.

A vendor's `client.py` only names itself and hands over its pure `wire` module. Nothing is
retried here: a failed call raises `ProviderError` and the task runner schedules any retry
durably.

Rate limits are kept per vendor account (submits per account and model, queries per account):
the vendors count them per account, whatever key of it is used.

`find_submitted` resolves a submit whose outcome is unknown with the vendor's task list
(DashScope; BigModel has none). The rule, since the list shows no inputs: the candidates are the
tasks of the model created since `since` − 10 s (10 s for clocks that differ; a caller less sure
of its clock passes an earlier `since`) in any of the provider's accounts, less the ones the
caller knows belong to other tasks. None: the attempt created nothing. Exactly one: that is the
attempt's task. More than one, or a listed task whose model or time cannot be read: the outcome
stays unknown (ProviderError, not transient). Adopting another request's task would deliver the
wrong video, so any doubt counts as "unknown", never as "found". "None" is only as good as the
moment it is asked: a vendor may still create a task whose answer timed out, so ask once it
could no longer (a minute after the ambiguous answer, say; the vendors document no bound).

`on_call(provider, operation, seconds, outcome)`, when set, is told of every HTTP exchange with
the vendor (the service's metrics observe it; nothing here knows of Prometheus): `operation` is
`submit`, `query`, `cancel` or `lookup` (a page of the task list), `seconds` runs from sending to
the answer (waiting for a free connection and for the rate limits left out), and `outcome` is the
answer's HTTP status class (`2xx`, `4xx`, `5xx`), `not_sent` (no connection could be made) or
`no_answer` (sent, then a timeout or a dropped connection).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Self

import httpx

from providers.base import (
    HttpRequest,
    ModelParameters,
    PollResult,
    Provider,
    ProviderError,
    ProviderLimits,
    Submitted,
)
from providers.http import HttpResponse, send
from providers.keys import KeyRing
from providers.limits import RateLimiter, RunningSlots
from providers.settings import ProviderSettings, VendorSettings
from providers.transport import aiohttp_transport
from providers.wire_types import ListedTask, Wire
from schemas.errors import ErrorCode

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(seconds=10)  # the vendor's clock and ours may differ this much
LIST_AHEAD = timedelta(hours=1)
MAX_LIST_PAGES = 10  # more candidates than 10 pages hold: the outcome cannot be decided

# on_call(provider, operation, seconds, outcome): see the module docstring.
CallHook = Callable[[str, str, float, str], None]


def api_base(base_url: str, api_root: str) -> str:
    """The root URL: `…/api/v1` (as the vendors' docs and SDKs write it) is tolerated too."""
    root = base_url.rstrip("/")
    return root[: -len(api_root)] if root.endswith(api_root) else root


class HttpProvider(Provider):
    wire: ClassVar[Wire]

    def __init__(
        self,
        *,
        keys: KeyRing,
        base_url: str,
        limits: ProviderLimits,
        timeout: httpx.Timeout,
        pool: httpx.Limits,
        transport: httpx.AsyncBaseTransport | None = None,
        oss_account: str | None = None,
        on_call: CallHook | None = None,
    ) -> None:
        self.limits = limits
        self.on_call = on_call
        self.running_slots = RunningSlots(limits.running_per_model)  # the runner's to use
        self._keys = keys
        if oss_account is not None and oss_account not in keys.accounts:
            raise ValueError(
                f"{self.key_env.removesuffix('_API_KEY')}_OSS_ACCOUNT names account "
                f"{oss_account!r}, which has no key; accounts: {', '.join(keys.accounts)}"
            )
        self._oss_account = oss_account
        self._submits = {
            (account, model): RateLimiter(limits.submits_per_s_per_model)
            for account in keys.accounts
            for model in self.models
        }
        # Status queries, cancels and task lists.
        self._queries = {account: RateLimiter(limits.queries_per_s) for account in keys.accounts}
        # Calls wait their turn here, not inside the connection pool: a pool's queue of
        # waiters costs more per release with thousands of tasks in flight (httpx's scanned it).
        self._connections = asyncio.Semaphore(pool.max_connections or 100)
        self._client = httpx.AsyncClient(
            base_url=api_base(base_url, self.wire.API_ROOT),
            timeout=timeout,
            transport=transport or aiohttp_transport(pool),  # the pool's size is the transport's
        )

    @classmethod
    def from_settings(
        cls,
        vendor: VendorSettings,
        settings: ProviderSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Self:
        prefix = cls.key_env.removesuffix("_API_KEY")
        return cls(
            keys=KeyRing(
                cls.key_env, vendor.api_keys, dict(vendor.key_accounts), f"{prefix}_KEY_ACCOUNTS"
            ),
            base_url=vendor.base_url,
            limits=ProviderLimits(
                submits_per_s_per_model=vendor.submits_per_s,
                running_per_model=vendor.running_per_model,
                queries_per_s=vendor.queries_per_s,
            ),
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            pool=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,  # no connect churn under load
            ),
            transport=transport,
            oss_account=vendor.oss_account,
        )

    @property
    def key_ids(self) -> tuple[str, ...]:
        return self._keys.key_ids

    @property
    def accounts(self) -> tuple[str, ...]:
        return self._keys.accounts

    def account_of(self, key_id: str) -> str:
        return self._keys.account_of(key_id)

    def preflight(self, model: str, parameters: ModelParameters) -> None:
        self._submit_account(parameters)

    def _submit_account(self, parameters: ModelParameters) -> str | None:
        """The account that must submit these parameters, None for any. An `oss://` file
        belongs to the account that uploaded it (upstream-apis.md §1.10), and a request cannot
        say which one that was: `{P}_OSS_ACCOUNT`, or the only account there is."""
        fields = [name for name, value in _strings(parameters) if value.startswith("oss://")]
        if not fields:
            return None
        if self._oss_account is not None:
            return self._oss_account
        if len(self._keys.accounts) == 1:
            return self._keys.accounts[0]
        prefix = self.key_env.removesuffix("_API_KEY")
        raise ProviderError(
            ErrorCode.INVALID_PARAMETERS,
            f"parameters.{fields[0]}: an oss:// file can only be used by the account that "
            f"uploaded it, and {prefix}_KEY_ACCOUNTS configures {len(self._keys.accounts)} "
            f"accounts ({', '.join(self._keys.accounts)}) without {prefix}_OSS_ACCOUNT naming "
            "the one that uploads them; give an http(s):// or data: URL instead",
            submit_not_taken=True,
        )

    async def submit(
        self,
        request_id: str,
        model: str,
        parameters: ModelParameters,
        *,
        attempt: int = 1,
        on_send: Callable[[], None] | None = None,
    ) -> Submitted:
        account = self._submit_account(parameters)
        key_id, key = self._keys.pick(request_id, attempt, account)
        request = self.wire.build_submit(model, parameters, request_id, key, attempt)
        await self._submits[(self._keys.account_of(key_id), model)].acquire()
        try:
            response = await self._send(request, "submit", on_send)
            task = self.wire.parse_submit(response.status_code, response.headers, response.body)
        except ProviderError as error:
            if error.already_exists:
                log.warning(
                    "%s already has a task for %s attempt %d (sent as request_id %s); it cannot "
                    "be looked up, so that generation is lost to us",
                    self.name,
                    request_id,
                    attempt,
                    self.wire.submit_id(request_id, attempt),
                )
            raise
        log.info(
            "%s task %s created for %s attempt %d (key %s)",
            self.name,
            task.upstream_task_id,
            request_id,
            attempt,
            key_id,
        )
        return Submitted(task.upstream_task_id, task.upstream_status, key_id)

    async def find_submitted(
        self,
        request_id: str,
        model: str,
        attempt: int,
        since: datetime,
        *,
        exclude: Collection[str] = (),
    ) -> Submitted | None:
        what = f"{request_id} attempt {attempt}"
        start = since.astimezone(UTC) - CLOCK_SKEW
        end = datetime.now(UTC) + LIST_AHEAD  # no upper bound in effect: clocks may differ
        picked, _ = self._keys.pick(request_id, attempt)
        found: list[tuple[str, ListedTask]] = []
        for account in self._keys.accounts:
            members = self._keys.key_ids_of(account)
            key_id = picked if picked in members else members[0]
            async for listed in self._listed(request_id, attempt, model, (start, end), key_id):
                if listed.upstream_task_id in exclude:
                    continue
                if listed.model is None or listed.created is None:
                    raise self._undecided(what, f"task {listed.upstream_task_id} without a time")
                if listed.model == model and start <= listed.created <= end:
                    found.append((key_id, listed))
        if not found:
            log.info("%s: %s created no task; it may be submitted again", self.name, what)
            return None
        if len(found) > 1:
            ids = ", ".join(listed.upstream_task_id for _, listed in found)
            raise self._undecided(what, f"{len(found)} candidate tasks ({ids})")
        key_id, listed = found[0]
        log.warning(
            "%s: the submit of %s whose answer was lost created task %s; adopting it",
            self.name,
            what,
            listed.upstream_task_id,
        )
        return Submitted(listed.upstream_task_id, listed.upstream_status or "", key_id)

    async def _listed(
        self,
        request_id: str,
        attempt: int,
        model: str,
        window: tuple[datetime, datetime],
        key_id: str,
    ) -> AsyncIterator[ListedTask]:
        what = f"{request_id} attempt {attempt}"
        key = self._keys.get(key_id)
        page, pages = 1, 1
        while page <= pages:
            request = self.wire.build_find(model, *window, key, page)
            if request is None:
                vendor, sent_as = self.wire.VENDOR, self.wire.submit_id(request_id, attempt)
                raise ProviderError(
                    ErrorCode.UPSTREAM_UNAVAILABLE,
                    f"the submit of {what} to {vendor} may have created a task, and {vendor} "
                    f"offers no way to look one up (no task list, no lookup by request_id "
                    f"{sent_as}): its outcome stays unknown",
                )
            await self._queries[self._keys.account_of(key_id)].acquire()
            response = await self._send(request, "lookup")
            found = self.wire.parse_find(response.status_code, response.headers, response.body)
            for listed in found.tasks:
                yield listed
            pages = found.pages
            if pages > MAX_LIST_PAGES:
                raise self._undecided(what, f"{pages} pages of candidate tasks")
            page += 1

    def _undecided(self, what: str, why: str) -> ProviderError:
        return ProviderError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"the submit of {what} to {self.wire.VENDOR} may have created a task, and its task "
            f"list cannot tell which: {why}; the outcome stays unknown",
        )

    async def poll(self, upstream_task_id: str, key_id: str) -> PollResult:
        request = self.wire.build_query(upstream_task_id, self._keys.get(key_id))
        await self._queries[self._keys.account_of(key_id)].acquire()
        response = await self._send(request, "query")
        return self.wire.parse_poll(response.status_code, response.headers, response.body)

    async def cancel(self, upstream_task_id: str, key_id: str) -> bool:
        if not self.supports_cancel:
            return False
        request = self.wire.build_cancel(upstream_task_id, self._keys.get(key_id))
        if request is None:
            return False
        await self._queries[self._keys.account_of(key_id)].acquire()
        response = await self._send(request, "cancel")
        return self.wire.parse_cancel(response.status_code, response.headers, response.body)

    async def _send(
        self, request: HttpRequest, operation: str, on_send: Callable[[], None] | None = None
    ) -> HttpResponse:
        async with self._connections:
            if on_send is not None:
                on_send()
            started = time.perf_counter()
            try:
                response = await send(self._client, request, self.wire.VENDOR)
            except ProviderError as exc:
                outcome = "not_sent" if exc.submit_not_taken else "no_answer"
                self._observe(operation, time.perf_counter() - started, outcome)
                raise
            # A cancelled call (shutdown, a cancelled task) is not observed: it measures nothing.
            outcome = f"{response.status_code // 100}xx"
            self._observe(operation, time.perf_counter() - started, outcome)
            return response

    def _observe(self, operation: str, seconds: float, outcome: str) -> None:
        if self.on_call is None:
            return
        try:
            self.on_call(self.name, operation, seconds, outcome)
        except Exception:  # an observer's fault must not fail the call
            log.exception("%s: on_call failed", self.name)

    async def aclose(self) -> None:
        await self._client.aclose()


def _strings(parameters: ModelParameters) -> Iterator[tuple[str, str]]:
    """(field, text) of every string value, list items included."""
    for name, value in parameters.model_dump(exclude_none=True).items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                yield name, item
