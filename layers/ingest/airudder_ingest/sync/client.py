"""Client of AIRUDDER's Workflow pull API, for the scheduled reconciliation (sync) function only.

Webhook handlers never import this module: it pulls in `requests` and is only needed to read back
what AIRUDDER holds (workflows, node tasks, outbound tasks, call records) and compare it with the
webhooks we stored.

What the reference (../shared/airudder-api/) documents, and what this module assumes instead, is
listed in `API_FACTS` and `ASSUMPTIONS` below so that README can quote them. Every path is a setting
(`AirudderApiSettings`), and the paging scheme lives in one place (`PageScheme`), so a wrong guess
is a configuration change or a few lines, not a rewrite.

Secrets: the APP key/secret come from a caller-supplied provider (the Lambda reads Secrets Manager),
the token lives in a module-level cache only; none of them, nor any phone number or response body,
is ever logged or put in an exception message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import requests
from pydantic import Field, field_validator

from airudder_ingest.base.settings import EnvSettings, split_list

logger = logging.getLogger(__name__)

# A point in time as callers give it: a datetime, ISO text or epoch seconds (format_api_time reads each).
Instant = dt.datetime | str | int | float
# A listing's time window [start, end); None leaves that side open.
TimeBound = Instant | None
Window = tuple[TimeBound, TimeBound]
ANY_TIME: Window = (None, None)
Records = Iterator[dict[str, Any]]

# What the reference documents (copied from auth-and-errors.md / workflow.md).
API_FACTS: tuple[str, ...] = (
    "Host https://api.airudder.com (the only environment seen).",
    "Token: POST /service/cloud/auth with JSON {APPKey, APPSecret}; the answer is "
    '{"data": {"token": ...}, "status": "OK", "code": 200}; the token is valid 24 h.',
    "Every other call sends `Authorization: Token <token>` (the word Token, not Bearer).",
    "Outbound task details: POST /service/cloud/workflow/taskdetail; its records mean the same as the "
    "call-completion webhook fields, plus workflow_id, workflow_name, nodetask_id, nodetask_name, case_id.",
    "HTTP methods: workflow task list GET, subtask list GET, outbound task list POST, task details POST, "
    "call information by call id GET.",
)

# What the reference does not say and this client assumes (each one is a setting or the PageScheme).
ASSUMPTIONS: tuple[str, ...] = (
    "Workflow task list path: GET /service/cloud/workflow/instancelist with query start_time, end_time; "
    "the window selects workflows created or with a call changed in it [AIRUDDER_WORKFLOW_LIST_PATH].",
    "Subtask (node task) list path: GET /service/cloud/workflow/subtasklist?workflow_id=... "
    "[AIRUDDER_SUBTASK_LIST_PATH].",
    "Outbound task list path: POST /service/cloud/workflow/tasklist with JSON {workflow_id, nodetask_id?, "
    "start_time?, end_time?} [AIRUDDER_OUTBOUND_TASK_LIST_PATH].",
    "Task details take JSON {task_id, nodetask_id?, workflow_id?, start_time?, end_time?}; the window "
    "selects call records by update_time [AIRUDDER_TASK_DETAIL_PATH is the documented path].",
    "Call information by call id: GET /service/cloud/workflow/callinfo?call_id=...; `data` is the call "
    "record [AIRUDDER_CALL_INFO_PATH].",
    "Every pull API answers the auth call's envelope: success is body `code` 200; anything else is an error.",
    "Paging: page (from 1) and page_size in the query string of GET calls and in the JSON body of POST "
    "calls; the answer carries data.list and data.total. See PageScheme.",
    "Time windows are sent as 'YYYY-MM-DD HH:MM:SS+08:00' (the format a third-party client uses) "
    "[AIRUDDER_API_TIME_OFFSET sets the offset].",
    "A 401 (or body code in AIRUDDER_TOKEN_ERROR_CODES) means the token is no longer valid.",
    "Rate limiting answers HTTP 429, perhaps with Retry-After in seconds.",
)


class AirudderApiSettings(EnvSettings):
    """Settings of the pull-API client (EnvSettings: each setting's environment variable is its
    `validation_alias`, AIRUDDER_...)."""

    base_url: str = Field(default="https://api.airudder.com", validation_alias="AIRUDDER_API_BASE_URL")
    auth_path: str = Field(default="/service/cloud/auth", validation_alias="AIRUDDER_AUTH_PATH")
    workflow_list_path: str = Field(
        default="/service/cloud/workflow/instancelist", validation_alias="AIRUDDER_WORKFLOW_LIST_PATH"
    )
    subtask_list_path: str = Field(
        default="/service/cloud/workflow/subtasklist", validation_alias="AIRUDDER_SUBTASK_LIST_PATH"
    )
    outbound_task_list_path: str = Field(
        default="/service/cloud/workflow/tasklist", validation_alias="AIRUDDER_OUTBOUND_TASK_LIST_PATH"
    )
    task_detail_path: str = Field(
        default="/service/cloud/workflow/taskdetail", validation_alias="AIRUDDER_TASK_DETAIL_PATH"
    )
    call_info_path: str = Field(default="/service/cloud/workflow/callinfo", validation_alias="AIRUDDER_CALL_INFO_PATH")

    connect_timeout: float = Field(default=3.05, validation_alias="AIRUDDER_CONNECT_TIMEOUT", gt=0)
    read_timeout: float = Field(default=20.0, validation_alias="AIRUDDER_READ_TIMEOUT", gt=0)
    # Retries after the first try, for connection errors, timeouts, 5xx and 429.
    max_retries: int = Field(default=4, validation_alias="AIRUDDER_MAX_RETRIES", ge=0, le=20)
    backoff_base: float = Field(default=0.5, validation_alias="AIRUDDER_BACKOFF_BASE", ge=0)
    backoff_cap: float = Field(default=20.0, validation_alias="AIRUDDER_BACKOFF_CAP", ge=0)
    # Longest Retry-After honoured; a longer one is cut to this.
    retry_after_cap: float = Field(default=60.0, validation_alias="AIRUDDER_RETRY_AFTER_CAP", ge=0)

    page_size: int = Field(default=100, validation_alias="AIRUDDER_PAGE_SIZE", ge=1, le=10_000)
    # Bound on the pages read from one listing, so a server that ignores paging cannot loop us forever.
    max_pages: int = Field(default=10_000, validation_alias="AIRUDDER_MAX_PAGES", ge=1)

    # The docs give 24 h; the token is renewed this many seconds before that.
    token_ttl_seconds: float = Field(default=86_400, validation_alias="AIRUDDER_TOKEN_TTL_SECONDS", gt=0)
    token_safety_margin_seconds: float = Field(
        default=3_600, validation_alias="AIRUDDER_TOKEN_SAFETY_MARGIN_SECONDS", ge=0
    )
    # Body codes (besides HTTP 401) that mean "token not valid".
    token_error_codes: tuple[int, ...] = Field(default=(401,), validation_alias="AIRUDDER_TOKEN_ERROR_CODES")
    success_codes: tuple[int, ...] = Field(default=(200,), validation_alias="AIRUDDER_SUCCESS_CODES")

    # Offset the time windows are written in (AIRUDDER does not document one).
    time_offset: str = Field(default="+08:00", validation_alias="AIRUDDER_API_TIME_OFFSET", pattern=r"^[+-]\d\d:\d\d$")
    user_agent: str = Field(default="Airudder", validation_alias="AIRUDDER_USER_AGENT")

    @field_validator("token_error_codes", "success_codes", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return split_list(value)  # written "200,201" in the environment

    @property
    def token_lifetime(self) -> float:
        return max(self.token_ttl_seconds - self.token_safety_margin_seconds, 0.0)


# --- errors, credentials, counters --------------------------------------------------------------------


@dataclass(eq=False)
class AirudderApiError(Exception):
    """An AIRUDDER call that failed for good: endpoint, HTTP status, AIRUDDER `code` and message.

    `http_status` is None when no answer came (connection error or timeout after the last retry);
    `code` is None when the body had none.
    """

    endpoint: str
    message: str
    _: KW_ONLY
    http_status: int | None = None
    code: int | str | None = None
    retryable: bool = False

    def __str__(self) -> str:
        return f"AIRUDDER {self.endpoint}: HTTP {self.http_status}, code {self.code}: {self.message}"


@dataclass(frozen=True)
class AirudderCredentials:
    """APP key and secret; both kept out of repr so they never reach a log by accident."""

    app_key: str = field(repr=False)
    app_secret: str = field(repr=False)


CredentialsProvider = Callable[[], AirudderCredentials]


class RequestCounter:
    """Counts every HTTP request the client sends (retries and token calls included), thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_endpoint: Counter[str] = Counter()
        self.by_outcome: Counter[str] = Counter()
        self.retries = 0
        self.renewals = 0

    def record(self, endpoint: str, outcome: str) -> None:
        with self._lock:
            self.by_endpoint[endpoint] += 1
            self.by_outcome[outcome] += 1

    def note_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def note_renewal(self) -> None:
        with self._lock:
            self.renewals += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_endpoint.values())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": sum(self.by_endpoint.values()),
                "by_endpoint": dict(self.by_endpoint),
                "by_outcome": dict(self.by_outcome),
                "retries": self.retries,
                "renewals": self.renewals,
            }

    def reset(self) -> None:
        with self._lock:
            self.by_endpoint.clear()
            self.by_outcome.clear()
            self.retries = 0
            self.renewals = 0


# --- token cache (module level: survives between invocations of a warm Lambda) ---------------------------


@dataclass
class _CachedToken:
    token: str
    expires_at: float  # on the client's clock


_TOKEN_CACHE: dict[tuple[str, str], _CachedToken] = {}
_TOKEN_LOCK = threading.Lock()


def _cache_key(base_url: str, app_key: str) -> tuple[str, str]:
    # The key is hashed so the cache does not hold the APP key in clear.
    return base_url.rstrip("/"), hashlib.sha256(app_key.encode()).hexdigest()


def clear_token_cache() -> None:
    with _TOKEN_LOCK:
        _TOKEN_CACHE.clear()


# --- paging (the one place that knows how AIRUDDER pages) ---------------------------------------------------


@dataclass(frozen=True)
class PageScheme:
    """How listings are paged. Not documented by AIRUDDER: assumed page/page_size in, data.list/data.total out.

    The page parameters go wherever the call's other parameters go (query for GET, JSON body for POST).
    A listing ends on an empty page or once `total` records have been read; when an answer has no
    total, a page shorter than asked for is the last one. (With a total, short pages are not trusted:
    the server may cap page_size below what we asked.)
    """

    page_param: str = "page"
    size_param: str = "page_size"
    first_page: int = 1
    items_key: str = "list"
    total_key: str = "total"

    def params(self, page: int, page_size: int) -> dict[str, int]:
        return {self.page_param: page, self.size_param: page_size}

    def items(self, data: Any) -> list[Any]:
        """The entries of one answer, every one of them: a pulled record that is not a JSON object is still
        the sync's to keep (quarantined), and it counts towards the page's length."""
        if isinstance(data, list):  # a listing answered without a paging wrapper
            return data
        if isinstance(data, dict):
            found = data.get(self.items_key)
            if isinstance(found, list):
                return found
        return []

    def total(self, data: Any) -> int | None:
        if isinstance(data, dict):
            value = data.get(self.total_key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, str) and value.isdigit():
                return int(value)
        return None

    def iterate(
        self,
        fetch: Callable[[dict[str, int]], Any],
        page_size: int,
        max_pages: int,
    ) -> Records:
        """Yield every object of a listing (workflows, tasks: entries that are not objects name nothing to
        follow); `fetch(paging_params)` returns one answer's `data`."""
        for _page, items in self.pages(fetch, page_size, max_pages):
            yield from (item for item in items if isinstance(item, dict))

    def pages(
        self,
        fetch: Callable[[dict[str, int]], Any],
        page_size: int,
        max_pages: int,
        *,
        start_page: int | None = None,
        already_seen: int = 0,
    ) -> Iterator[tuple[int, list[Any]]]:
        """Yield (page number, records) of a listing, one page per fetch, fetched only when asked for.

        A listing read partly before can be resumed: `start_page` is the first page to fetch and
        `already_seen` the number of records the pages before it held (so that `total` still ends it).
        """
        first = self.first_page if start_page is None else start_page
        seen = already_seen
        for n in range(max_pages):
            page = first + n
            data = fetch(self.params(page, page_size))
            items = self.items(data)
            yield page, items
            seen += len(items)
            total = self.total(data)
            if not items or isinstance(data, list):  # empty, or an unpaged answer: nothing more
                return
            if (seen >= total) if total is not None else (len(items) < page_size):
                return
        logger.warning("listing stopped after max_pages=%d pages", max_pages)


DEFAULT_PAGE_SCHEME = PageScheme()


def format_api_time(value: Instant, offset: str = "+08:00") -> str:
    """A time as AIRUDDER's queries are assumed to take it: 'YYYY-MM-DD HH:MM:SS+08:00'.

    Naive datetimes are taken as UTC; strings are passed through unchanged; numbers are Unix seconds.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    tz = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") + offset


# --- the client --------------------------------------------------------------------------------------------------


class _Retryable(Exception):
    def __init__(self, error: AirudderApiError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class _TokenRejected(Exception):
    def __init__(self, error: AirudderApiError) -> None:
        super().__init__(str(error))
        self.error = error


_DIGIT_RUNS = re.compile(r"\+?\d[\d ()-]{5,}\d")


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: not worth parsing, the backoff takes over
    return max(seconds, 0.0)


class AirudderClient:
    """AIRUDDER Workflow pull API over `requests`.

    sleep, clock and rng are injectable for tests; the counter may be shared to total several clients.
    One instance serves one thread (it holds a requests.Session); the token cache is shared and locked.
    """

    def __init__(
        self,
        credentials: CredentialsProvider,
        settings: AirudderApiSettings | None = None,
        *,
        session: requests.Session | None = None,
        counter: RequestCounter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        page_scheme: PageScheme = DEFAULT_PAGE_SCHEME,
    ) -> None:
        self.settings = settings or AirudderApiSettings()
        self.counter = counter or RequestCounter()
        self.page_scheme = page_scheme
        self._provider = credentials
        self._credentials: AirudderCredentials | None = None
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._base = self.settings.base_url.rstrip("/")

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> AirudderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- public API ---------------------------------------------------------------------------------

    def list_workflow_tasks(self, start: Instant, end: Instant) -> Records:
        """Every workflow (task instance) changed in [start, end), all pages."""
        params = {"start_time": self._time(start), "end_time": self._time(end)}
        return self._paged("workflow_list", "GET", self.settings.workflow_list_path, params)

    def list_subtasks(self, workflow_id: str) -> Records:
        """The node tasks (subtasks) of one workflow, all pages."""
        return self._paged("subtask_list", "GET", self.settings.subtask_list_path, {"workflow_id": workflow_id})

    def list_outbound_tasks(
        self, workflow_id: str, *, nodetask_id: str | None = None, window: Window = ANY_TIME
    ) -> Records:
        """The outbound (call) tasks the workflow's nodes ran, all pages."""
        params = self._params(window, workflow_id=workflow_id, nodetask_id=nodetask_id)
        return self._paged("outbound_task_list", "POST", self.settings.outbound_task_list_path, params)

    def task_details(
        self,
        task_id: str | None = None,
        *,
        nodetask_id: str | None = None,
        workflow_id: str | None = None,
        window: Window = ANY_TIME,
    ) -> Records:
        """The call records of one outbound task (by task id or node task id), all pages."""
        if not task_id and not nodetask_id:
            raise ValueError("task_details needs a task_id or a nodetask_id")
        params = self._params(window, task_id=task_id, nodetask_id=nodetask_id, workflow_id=workflow_id)
        return self._paged("task_detail", "POST", self.settings.task_detail_path, params)

    def task_detail_pages(
        self,
        task_id: str,
        *,
        workflow_id: str | None = None,
        window: Window = ANY_TIME,
        start_page: int | None = None,
        already_seen: int = 0,
    ) -> Iterator[tuple[int, list[Any]]]:
        """The call records of one outbound task page by page, as (page number, records): a caller
        that must stop part-way (the scheduled sync) can resume at a page (see PageScheme.pages)."""
        params = self._params(window, task_id=task_id, workflow_id=workflow_id)
        path = self.settings.task_detail_path

        def fetch(paging: dict[str, int]) -> Any:
            return self._call("task_detail", "POST", path, {**params, **paging})

        return self.page_scheme.pages(
            fetch, self.settings.page_size, self.settings.max_pages, start_page=start_page, already_seen=already_seen
        )

    def call_info(self, call_id: str) -> dict[str, Any]:
        """One call's information and recording link."""
        data = self._call("call_info", "GET", self.settings.call_info_path, {"call_id": call_id})
        if isinstance(data, dict):
            return data
        raise AirudderApiError("call_info", "answer has no call object", http_status=200)

    def iter_call_records(self, start: Instant, end: Instant) -> Records:
        """Every call record changed in [start, end): workflows -> outbound tasks -> task details."""
        for workflow in self.list_workflow_tasks(start, end):
            workflow_id = workflow.get("workflow_id")
            if not workflow_id:
                continue
            for task in self.list_outbound_tasks(str(workflow_id), window=(start, end)):
                task_id = task.get("task_id")
                if task_id:
                    yield from self.task_details(str(task_id), workflow_id=str(workflow_id), window=(start, end))

    def token(self) -> str:
        """A valid token: the cached one, or a new one."""
        return self._token(force=False)

    # --- internals -------------------------------------------------------------------------------------

    def _params(self, window: Window, **ids: Any) -> dict[str, Any]:
        """A listing's parameters: the ids, then the time window; the ones not given are left out."""
        start, end = window
        params = {**ids, "start_time": self._time(start), "end_time": self._time(end)}
        return {k: v for k, v in params.items() if v is not None}

    def _time(self, value: TimeBound) -> str | None:
        return None if value is None else format_api_time(value, self.settings.time_offset)

    def _paged(self, endpoint: str, method: str, path: str, params: dict[str, Any]) -> Records:
        def fetch(paging: dict[str, int]) -> Any:
            return self._call(endpoint, method, path, {**params, **paging})

        return self.page_scheme.iterate(fetch, self.settings.page_size, self.settings.max_pages)

    def _get_credentials(self, refresh: bool) -> AirudderCredentials:
        if self._credentials is None or refresh:
            self._credentials = self._provider()
        return self._credentials

    def _token(self, *, force: bool, rejected: str | None = None) -> str:
        creds = self._get_credentials(refresh=force)
        key = _cache_key(self._base, creds.app_key)
        with _TOKEN_LOCK:
            cached = _TOKEN_CACHE.get(key)
            if cached and not force and self._clock() < cached.expires_at:
                return cached.token
            if cached and force and rejected is not None and cached.token != rejected:
                # Another thread renewed it since our call was rejected: use theirs.
                return cached.token
            token = self._authenticate(creds)
            _TOKEN_CACHE[key] = _CachedToken(token, self._clock() + self.settings.token_lifetime)
            return token

    def _authenticate(self, creds: AirudderCredentials) -> str:
        body = {"APPKey": creds.app_key, "APPSecret": creds.app_secret}
        data = self._with_retries("auth", lambda: self._send("auth", "POST", self.settings.auth_path, body, None))
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise AirudderApiError("auth", "answer has no data.token", http_status=200)
        logger.info("AIRUDDER token obtained")
        return token

    def _call(self, endpoint: str, method: str, path: str, params: dict[str, Any]) -> Any:
        """One API call: retries for transient failures, and at most one token renewal."""
        token = self._token(force=False)
        try:
            return self._with_retries(endpoint, lambda: self._send(endpoint, method, path, params, token))
        except _TokenRejected:
            logger.info("AIRUDDER rejected the token on %s: renewing once", endpoint)
            self.counter.note_renewal()
            token = self._token(force=True, rejected=token)
            try:
                return self._with_retries(endpoint, lambda: self._send(endpoint, method, path, params, token))
            except _TokenRejected as again:
                raise AirudderApiError(
                    endpoint,
                    "token rejected again right after renewal",
                    http_status=again.error.http_status,
                    code=again.error.code,
                ) from None

    def _with_retries(self, endpoint: str, attempt: Callable[[], Any]) -> Any:
        retries = self.settings.max_retries
        for n in range(retries + 1):
            try:
                return attempt()
            except _Retryable as failure:
                if n >= retries:
                    err = failure.error
                    raise AirudderApiError(
                        endpoint,
                        f"{err.message} (gave up after {n + 1} tries)",
                        http_status=err.http_status,
                        code=err.code,
                        retryable=True,
                    ) from None
                delay = self._delay(n, failure.retry_after)
                logger.warning(
                    "AIRUDDER %s: %s; retry %d/%d in %.2fs", endpoint, failure.error.message, n + 1, retries, delay
                )
                self.counter.note_retry()
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, retry_number: int, retry_after: float | None) -> float:
        s = self.settings
        if retry_after is not None:
            return min(retry_after, s.retry_after_cap)
        # Exponential backoff with full jitter.
        return self._rng.uniform(0.0, min(s.backoff_cap, s.backoff_base * (2**retry_number)))

    def _send(self, endpoint: str, method: str, path: str, params: dict[str, Any], token: str | None) -> Any:
        """One HTTP request; returns `data` of a successful answer or raises."""
        headers = {"User-Agent": self.settings.user_agent, "Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Token {token}"
        kwargs: dict[str, Any] = {
            "headers": headers,
            "timeout": (self.settings.connect_timeout, self.settings.read_timeout),
        }
        if method == "GET":
            kwargs["params"] = params
        else:
            kwargs["json"] = params
        try:
            response = self._session.request(method, self._base + path, **kwargs)
        except requests.Timeout:
            self.counter.record(endpoint, "timeout")
            raise _Retryable(AirudderApiError(endpoint, "timed out")) from None
        except requests.ConnectionError:
            self.counter.record(endpoint, "connection_error")
            raise _Retryable(AirudderApiError(endpoint, "connection failed")) from None
        return self._answer(endpoint, response, token)

    def _answer(self, endpoint: str, response: requests.Response, token: str | None) -> Any:
        """`data` of a successful answer; the error to retry, renew the token for, or raise otherwise."""
        status = response.status_code
        self.counter.record(endpoint, str(status))
        body = self._json(response)
        code = body.get("code") if isinstance(body, dict) else None
        message = self._message(body) or response.reason or ""
        error = AirudderApiError(endpoint, message, http_status=status, code=code)
        self._raise_for_status(error, response, token)
        if not isinstance(body, dict):
            raise AirudderApiError(endpoint, "answer is not a JSON object", http_status=status)
        if code not in self.settings.success_codes:
            raise error
        return body.get("data")

    def _raise_for_status(self, error: AirudderApiError, response: requests.Response, token: str | None) -> None:
        """`error` to retry (429, 5xx), to renew the token for, or as it is, unless the answer is a 200
        whose body code does not reject the token."""
        status = response.status_code
        if status == 429:
            raise _Retryable(error, _parse_retry_after(response.headers.get("Retry-After")))
        if status >= 500:
            raise _Retryable(error)
        if token is not None and (status == 401 or error.code in self.settings.token_error_codes):
            raise _TokenRejected(error)
        if status != 200:
            raise error

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    @staticmethod
    def _message(body: Any) -> str:
        if not isinstance(body, dict):
            return ""
        for key in ("message", "msg", "status", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                # AIRUDDER may echo what it was sent (a number, an id): keep digits runs out of messages.
                return _DIGIT_RUNS.sub("<digits>", value[:200])
        return ""


__all__ = [
    "API_FACTS",
    "ASSUMPTIONS",
    "DEFAULT_PAGE_SCHEME",
    "AirudderApiError",
    "AirudderApiSettings",
    "AirudderClient",
    "AirudderCredentials",
    "CredentialsProvider",
    "PageScheme",
    "RequestCounter",
    "clear_token_cache",
    "format_api_time",
]
