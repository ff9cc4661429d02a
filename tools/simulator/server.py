"""A local AIRUDDER tenant: the auth and Workflow pull endpoints, recordings, fault injection.

    with AirudderSimulator(workflows=2, calls_per_workflow=10) as sim:
        sim.url                                     # http://127.0.0.1:<port>
        sim.inject("task_detail", Fault.server_error(times=2))
        sim.add_calls(5)                            # the tenant grows
        report = sim.push_webhooks("http://127.0.0.1:3000", token="...")

Paths and HTTP methods are those the client (airudder_ingest.sync.client) uses by default;
the undocumented ones are assumptions listed there. Paging: page (from 1) and page_size, in the
query of GET calls and the JSON body of POST calls; answers carry data.list, data.total, data.page
and data.page_size. Time windows (start_time, end_time; start inclusive, end exclusive) select call
records by update_time, and workflows / outbound tasks created in the window or holding a call
changed in it. The simulator never logs request bodies or numbers.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from tools.background import Background

from . import bodies
from .dataset import Call, Dataset, DatasetConfig, NodeTask, Workflow
from .faults import Fault, FaultQueue
from .pusher import PushReport, WebhookPusher
from .recordings import recording_chunks, recording_size

DEFAULT_PATHS: dict[str, str] = {
    "auth": "/service/cloud/auth",
    "workflow_list": "/service/cloud/workflow/instancelist",
    "subtask_list": "/service/cloud/workflow/subtasklist",
    "outbound_task_list": "/service/cloud/workflow/tasklist",
    "task_detail": "/service/cloud/workflow/taskdetail",
    "call_info": "/service/cloud/workflow/callinfo",
}
METHODS: dict[str, str] = {
    "auth": "POST",
    "workflow_list": "GET",
    "subtask_list": "GET",
    "outbound_task_list": "POST",
    "task_detail": "POST",
    "call_info": "GET",
    "recording": "GET",
}

# Paging parameters (one place): the client's PageScheme must agree.
PAGE_PARAM = "page"
SIZE_PARAM = "page_size"
DEFAULT_PAGE_SIZE = 100

_TOKEN_HEADER = re.compile(r"^Token (\S+)$")


class ApiError(Exception):
    """Answered as `status` with AIRUDDER's error envelope."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RequestRecord:
    endpoint: str
    method: str
    status: int
    fault: str | None = None


def _hung_up(connection: socket.socket) -> bool:
    """The client closed its end (or reset it) while waiting for our answer: it sends nothing else."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class _SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's default (5) overflows when many clients connect at once


class AirudderSimulator(Background):
    """The simulated tenant; a context manager that serves on a local port (0: any free one)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        app_key: str = "sim-app-key",
        app_secret: str = "sim-app-secret",
        token_ttl: float = 86_400.0,
        recording_bytes: int = 64 * 1024,
        dataset: Dataset | None = None,
        seed: int = 1,
        workflows: int = 3,
        calls_per_workflow: int = 20,
        nodes_per_workflow: int = 2,
        answer_rate: float = 0.6,
        paths: Mapping[str, str] | None = None,
        max_page_size: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.port = port
        self.app_key = app_key
        self.app_secret = app_secret
        self.token_ttl = token_ttl
        self.recording_bytes = recording_bytes
        self.max_page_size = max_page_size
        self.dataset = dataset or Dataset(
            DatasetConfig(
                seed=seed,
                workflows=workflows,
                calls_per_workflow=calls_per_workflow,
                nodes_per_workflow=nodes_per_workflow,
                answer_rate=answer_rate,
            )
        )
        self.paths = {**DEFAULT_PATHS, **(paths or {})}
        self._routes = {path: name for name, path in self.paths.items()}
        self.faults = FaultQueue()
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._log: list[RequestRecord] = []
        self._tampered: dict[str, dict[str, Any]] = {}
        self._server: ThreadingHTTPServer | None = None
        super().__init__("airudder-sim")

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is None:
            handler = type("_BoundHandler", (_Handler,), {"sim": self})
            self._server = _SimulatorServer((self.host, self.port), handler)
            self.port = self._server.server_address[1]
        return super().start()

    def _loop(self) -> None:
        if self._server is not None:
            self._server.serve_forever(poll_interval=0.05)

    def _interrupt(self) -> None:
        super()._interrupt()  # also releases the answers being held
        if self._server is not None:
            self._server.shutdown()

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        if self._server is not None:
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- control ----------------------------------------------------------------------------------------

    def inject(self, endpoint: str, *faults: Fault) -> None:
        self.faults.add(endpoint, *faults)

    def expire_tokens(self) -> None:
        """Every token issued so far stops working now."""
        with self._lock:
            self._tokens.clear()

    def add_calls(self, n: int, workflow_id: str | None = None) -> list[Call]:
        return self.dataset.add_calls(n, workflow_id)

    def tamper(self, call: Call, **fields: Any) -> None:
        """Serve `call`'s pulled record with `fields` set (bodies.RawJson values written as literals), as a
        broken or hostile tenant would: the hostile-record sync tests."""
        with self._lock:
            self._tampered.setdefault(call.call_id, {}).update(fields)

    def add_workflow(self, calls: int | None = None) -> Workflow:
        return self.dataset.add_workflow(calls)

    def call_record(self, call: Call) -> dict[str, Any]:
        """The record the pull API gives for a call (with its tampered fields)."""
        with self._lock:
            tampered = dict(self._tampered.get(call.call_id, {}))
        return {**bodies.call_record(call, self.url), **tampered}

    def push_webhooks(
        self, target_base_url: str, calls: Iterable[Call] | None = None, **pusher_options: Any
    ) -> PushReport:
        """Push the webhooks of `calls` (default: every call) to our stack; blocks until done."""
        pusher = WebhookPusher(target_base_url, recording_base_url=self.url, **pusher_options)
        return pusher.push(self.dataset.calls() if calls is None else list(calls))

    # --- what was asked ---------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def request_count(self, endpoint: str | None = None, status: int | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (endpoint is None or r.endpoint == endpoint) and (status is None or r.status == status)
        )

    def status_counts(self) -> Counter[tuple[str, int]]:
        return Counter((r.endpoint, r.status) for r in self.requests)

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    # --- request handling (called from handler threads) ---------------------------------------------------

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)

    def _issue_token(self) -> str:
        token = base64.b64encode(os.urandom(36)).decode()  # contains + and /, like AIRUDDER's
        with self._lock:
            self._tokens[token] = self._clock() + self.token_ttl
        return token

    def _token_valid(self, header: str | None) -> bool:
        match = _TOKEN_HEADER.match(header or "")
        if not match:
            return False
        with self._lock:
            expires = self._tokens.get(match.group(1))
            return expires is not None and self._clock() < expires

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _hold(self, release: threading.Event, connection: socket.socket) -> None:
        """Until the test releases the request, the client hangs up (it timed out), or the simulator stops."""
        while not release.wait(0.05) and not self._stopping.is_set():
            if _hung_up(connection):
                return

    def _answer(self, endpoint: str, params: dict[str, Any]) -> Any:
        """`data` of a successful answer; raises ApiError otherwise."""
        ds = self.dataset
        if endpoint == "auth":
            if params.get("APPKey") != self.app_key or params.get("APPSecret") != self.app_secret:
                raise ApiError(401, 10302, "Account verification failed")
            return {"token": self._issue_token()}
        start = _time_param(params, "start_time")
        end = _time_param(params, "end_time")

        def in_window(t: Any) -> bool:
            return (start is None or t >= start) and (end is None or t < end)

        def node_active(n: NodeTask) -> bool:
            # A task is in a window when it was created, or any of its calls changed, in it.
            if start is None and end is None:
                return True
            return in_window(n.create_time) or any(
                c is not None and in_window(c.update_time) for c in (ds.call(i) for i in n.call_ids)
            )

        if endpoint == "workflow_list":
            active = [w for w in ds.workflows() if in_window(w.create_time) or any(node_active(n) for n in w.nodes)]
            return self._page([bodies.workflow_record(w) for w in active], params)
        if endpoint == "subtask_list":
            wf = self._workflow(params)
            return self._page([bodies.subtask_record(n) for n in wf.nodes], params)
        if endpoint == "outbound_task_list":
            wf = self._workflow(params)
            nodes = [n for n in wf.nodes if params.get("nodetask_id") in (None, "", n.nodetask_id)]
            return self._page(
                [bodies.outbound_task_record(n, wf.workflow_name, wf.status) for n in nodes if node_active(n)],
                params,
            )
        if endpoint == "task_detail":
            node = ds.task(str(params.get("task_id") or "")) or ds.node(str(params.get("nodetask_id") or ""))
            if node is None:
                if not params.get("task_id") and not params.get("nodetask_id"):
                    raise ApiError(400, 10502, "TaskID is null")
                raise ApiError(200, 10702, "TaskID is invalid")
            if params.get("workflow_id") not in (None, "", node.workflow_id):
                raise ApiError(200, 10703, "TaskID can't be verified")
            calls = [c for c in (ds.call(i) for i in node.call_ids) if c is not None and in_window(c.update_time)]
            return self._page([self.call_record(c) for c in calls], params)
        if endpoint == "call_info":
            call_id = params.get("call_id")
            if not call_id:
                raise ApiError(400, 10608, "CallID is null")
            call = ds.call(str(call_id))
            if call is None:
                raise ApiError(200, 10609, "CallID is invalid")
            return self.call_record(call)
        raise ApiError(404, 404, "not found")

    def _workflow(self, params: dict[str, Any]) -> Workflow:
        workflow_id = params.get("workflow_id")
        if not workflow_id:
            raise ApiError(400, 400, "workflow_id is required")
        wf = self.dataset.workflow(str(workflow_id))
        if wf is None:
            raise ApiError(200, 10702, "workflow_id is invalid")
        return wf

    def _page(self, items: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        try:
            page = int(params.get(PAGE_PARAM, 1))
            size = int(params.get(SIZE_PARAM, DEFAULT_PAGE_SIZE))
        except (TypeError, ValueError):
            raise ApiError(400, 400, "page and page_size must be whole numbers") from None
        if page < 1 or size < 1:
            raise ApiError(400, 400, "page and page_size start at 1")
        size = min(size, self.max_page_size)
        first = (page - 1) * size
        return {"list": items[first : first + size], "total": len(items), PAGE_PARAM: page, SIZE_PARAM: size}


def _time_param(params: dict[str, Any], name: str) -> Any:
    try:
        return bodies.parse_time(params.get(name))
    except ValueError:
        raise ApiError(400, 400, f"{name} is not a time") from None


class _Handler(BaseHTTPRequestHandler):
    sim: AirudderSimulator
    protocol_version = "HTTP/1.1"
    server_version = "AirudderSimulator"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines carry query strings (ids, numbers): never logged

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        raw = self._read_body()
        if split.path.startswith(bodies.RECORDING_PREFIX):
            endpoint: str | None = "recording"
        else:
            endpoint = self.sim._routes.get(split.path)
        if endpoint is None:
            self._json(404, bodies.error_envelope(404, "not found"), "unknown", method)
            return
        if METHODS[endpoint] != method:
            self._json(405, bodies.error_envelope(405, "method not allowed"), endpoint, method)
            return
        fault = self.sim.faults.take(endpoint)
        fault_kind = fault.kind if fault else None
        if fault is not None:
            if fault.kind == "delay":
                self.sim._wait(fault.delay)
            elif fault.kind == "hold":
                fault.arrived.set()
                self.sim._hold(fault.release, self.connection)
            elif fault.kind == "expire_tokens":
                self.sim.expire_tokens()
            else:
                headers = {}
                if fault.kind == "rate_limit" and fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                code = fault.code if fault.code is not None else fault.status
                self._json(
                    fault.status, bodies.error_envelope(code, fault.message), endpoint, method, fault_kind, headers
                )
                return
        if endpoint == "recording":
            self._recording(split.path, method, fault_kind)
            return
        if endpoint != "auth" and not self.sim._token_valid(self.headers.get("Authorization")):
            self._json(401, bodies.error_envelope(401, "invalid or expired token"), endpoint, method, fault_kind)
            return
        try:
            params = self._params(method, split.query, raw)
            data = self.sim._answer(endpoint, params)
        except ApiError as err:
            self._json(err.status, bodies.error_envelope(err.code, err.message), endpoint, method, fault_kind)
            return
        self._json(200, bodies.envelope(data), endpoint, method, fault_kind)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    @staticmethod
    def _params(method: str, query: str, raw: bytes) -> dict[str, Any]:
        if method == "GET":
            return {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise ApiError(400, 400, "body is not JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, 400, "body is not a JSON object")
        return body

    def _json(
        self,
        status: int,
        payload: Any,
        endpoint: str,
        method: str,
        fault: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        data = bodies.dump_json(payload)  # tampered records' RawJson values as they are
        self.sim._record(RequestRecord(endpoint, method, status, fault))
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client gave up (timeout): nothing to answer

    def _recording(self, path: str, method: str, fault: str | None) -> None:
        call_id = path[len(bodies.RECORDING_PREFIX) :].removesuffix(".wav")
        call = self.sim.dataset.call(call_id)
        if call is None or not call.answered:
            self._json(404, bodies.error_envelope(404, "no recording"), "recording", method, fault)
            return
        total = self.sim.recording_bytes
        self.sim._record(RequestRecord("recording", method, 200, fault))
        try:
            self.send_response(200)
            self.send_header("Content-Type", "audio/wav")
            self.send_header("Content-Length", str(recording_size(total)))
            self.end_headers()
            for chunk in recording_chunks(call_id, total):
                self.wfile.write(chunk)
        except OSError:
            self.close_connection = True
