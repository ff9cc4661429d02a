"""Faults the simulator can be told to answer with, queued per endpoint.

Endpoint names are the client's: auth, workflow_list, subtask_list, outbound_task_list, task_detail,
call_info, recording. The first fault in an endpoint's queue applies to its next `times` requests,
then the next fault takes over; an empty queue means normal answers.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field

ENDPOINTS: tuple[str, ...] = (
    "auth",
    "workflow_list",
    "subtask_list",
    "outbound_task_list",
    "task_detail",
    "call_info",
    "recording",
)


@dataclass
class Fault:
    """kind: "status" (answer `status` with an error body), "rate_limit" (429 + Retry-After),
    "delay" (wait `delay` seconds, then answer normally), "expire_tokens" (expire every token
    now, so the request and all later ones get 401 until the client authenticates again),
    "unauthorized" (401 whatever the token), "code" (HTTP 200 whose body `code` is `code`),
    "hold" (set `arrived`, wait until `release` is set or the client hangs up, then answer normally:
    a test decides when the request ends, or makes a client time out whatever its timeout, instead of
    guessing how long "busy" or "too slow" must last on a loaded machine)."""

    kind: str
    status: int = 500
    code: int | None = None
    message: str = ""
    retry_after: float | None = None
    delay: float = 0.0
    times: int = 1
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def server_error(cls, status: int = 503, times: int = 1) -> Fault:
        return cls("status", status=status, code=status, message="injected server error", times=times)

    @classmethod
    def rate_limit(cls, retry_after: float | None = 1.0, times: int = 1) -> Fault:
        return cls(
            "rate_limit",
            status=429,
            code=10705,
            message="The number of queries exceeds the number limit",
            retry_after=retry_after,
            times=times,
        )

    @classmethod
    def slow(cls, seconds: float, times: int = 1) -> Fault:
        return cls("delay", delay=seconds, times=times)

    @classmethod
    def hold(cls, times: int = 1) -> Fault:
        """Held until `release.set()` or the client hangs up; `arrived` is set when a request reaches it."""
        return cls("hold", times=times)

    @classmethod
    def expire_tokens(cls) -> Fault:
        return cls("expire_tokens", status=401, times=1)

    @classmethod
    def unauthorized(cls, times: int = 1) -> Fault:
        return cls("unauthorized", status=401, code=401, message="invalid token", times=times)

    @classmethod
    def error_code(cls, code: int, message: str = "injected error", times: int = 1) -> Fault:
        return cls("code", status=200, code=code, message=message, times=times)

    @classmethod
    def http_status(cls, status: int, code: int | None = None, message: str = "injected", times: int = 1) -> Fault:
        return cls("status", status=status, code=status if code is None else code, message=message, times=times)


@dataclass
class _Entry:
    fault: Fault
    left: int


class FaultQueue:
    """Thread-safe per-endpoint FIFO of faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[_Entry]] = defaultdict(deque)

    def add(self, endpoint: str, *faults: Fault) -> None:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
        with self._lock:
            for fault in faults:
                if fault.times > 0:
                    self._queues[endpoint].append(_Entry(fault, fault.times))

    def take(self, endpoint: str) -> Fault | None:
        """The fault for this request, if any (consumes one of its `times`)."""
        with self._lock:
            queue = self._queues.get(endpoint)
            if not queue:
                return None
            entry = queue[0]
            entry.left -= 1
            if entry.left <= 0:
                queue.popleft()
            return entry.fault

    def pending(self, endpoint: str | None = None) -> int:
        """Requests still to be answered with a fault."""
        with self._lock:
            queues = [self._queues[endpoint]] if endpoint in self._queues else []
            if endpoint is None:
                queues = list(self._queues.values())
            return sum(entry.left for q in queues for entry in q)

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()
