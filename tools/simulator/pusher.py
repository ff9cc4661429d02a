"""Pushes the simulated calls' webhooks to our stack, with AIRUDDER's retry rule.

AIRUDDER (documented for the dialer webhooks): a delivery that answers abnormally is tried again
after 1 minute, at most 5 tries in total, then dropped. Here "abnormal" is anything but a 2xx
within `timeout` seconds; `retry_delay` (default 60 s) can be scaled down for tests.

An attempt is one POST the pusher starts, on a connection of its own (a retry a minute later would
not find a kept-alive connection either): whatever ends it - an answer, a timeout, a reset or a
refused connection - it is one of the five tries. A receiver therefore sees one connection per
attempt, and an attempt it did not answer (reset, refused) still counts; no pooled connection can
go stale between tries and turn into an attempt the receiver never saw.

Which webhooks a call produces (`kinds`):
- "call":   one call-completion body per call, POSTed to <base><call_path>;
- "dialer": for calls on predictive-dialer ("pds") nodes, ContactStatus bodies POSTed to
            <base><dialer_path>: the final HANGUP state only, or every state in order when
            `dialer_progress` is set.
With a `token`, `?token=<token>` is added to both URLs.

Dropping on purpose (never sent, counted as `skipped`): every `drop_every`-th unit, or each unit
with probability `drop_fraction` (seeded by `drop_seed`); a unit is one delivery, or with
`drop_scope="call"` all the deliveries of one call. Work is spread over `concurrency` threads; the
run ends by itself once every delivery is delivered, dropped or skipped. `on_attempt(delivery,
attempt number, outcome)` is called after each attempt, one call at a time: a test acts on what
happened (cut AWS after the n-th delivery, say) instead of on how long it took.
"""

from __future__ import annotations

import heapq
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from . import bodies
from .dataset import Call

MAX_TRIES = 5
RETRY_DELAY = 60.0
KINDS = ("call", "dialer")


@dataclass(frozen=True)
class Delivery:
    seq: int
    kind: str  # "call" or "dialer"
    call_id: str
    url: str
    body: dict[str, Any]


@dataclass
class PushReport:
    planned: int = 0  # deliveries built (skipped ones included)
    attempts: int = 0  # HTTP POSTs started, one connection each (reset and refused ones included)
    delivered: int = 0  # deliveries that got a 2xx in time
    retried: int = 0  # POSTs that were retries
    dropped: int = 0  # deliveries given up after max_tries
    skipped: int = 0  # deliveries dropped on purpose (never sent)
    delivered_call_ids: set[str] = field(default_factory=set)
    dropped_call_ids: set[str] = field(default_factory=set)
    skipped_call_ids: set[str] = field(default_factory=set)
    # "200", "500", "timeout", "error" (reset, refused, or a broken answer)
    outcomes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Counts only (no ids, no numbers): safe to print."""
        return {
            "planned": self.planned,
            "attempts": self.attempts,
            "delivered": self.delivered,
            "retried": self.retried,
            "dropped": self.dropped,
            "skipped": self.skipped,
            "calls_delivered": len(self.delivered_call_ids),
            "outcomes": dict(self.outcomes),
            "seconds": round(self.seconds, 3),
        }


class WebhookPusher:
    def __init__(
        self,
        target_base_url: str,
        *,
        recording_base_url: str,
        token: str | None = None,
        kinds: Sequence[str] = KINDS,
        dialer_progress: bool = False,
        call_path: str = "/webhooks/workflow/call",
        dialer_path: str = "/webhooks/workflow/dialer",
        retry_delay: float = RETRY_DELAY,
        max_tries: int = MAX_TRIES,
        timeout: float = 10.0,
        concurrency: int = 4,
        drop_every: int = 0,
        drop_fraction: float = 0.0,
        drop_seed: int = 0,
        drop_scope: str = "delivery",
        user_agent: str = "Airudder",
        on_attempt: Callable[[Delivery, int, str], None] | None = None,
    ) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown webhook kinds {sorted(unknown)}; known: {KINDS}")
        if drop_scope not in ("delivery", "call"):
            raise ValueError("drop_scope is 'delivery' or 'call'")
        if max_tries < 1 or concurrency < 1:
            raise ValueError("max_tries and concurrency must be at least 1")
        self.base = target_base_url.rstrip("/")
        self.recording_base_url = recording_base_url
        self.token = token
        self.kinds = tuple(kinds)
        self.dialer_progress = dialer_progress
        self.call_path = call_path
        self.dialer_path = dialer_path
        self.retry_delay = retry_delay
        self.max_tries = max_tries
        self.timeout = timeout
        self.concurrency = concurrency
        self.drop_every = drop_every
        self.drop_fraction = drop_fraction
        self.drop_seed = drop_seed
        self.drop_scope = drop_scope
        self.on_attempt = on_attempt
        # One connection per attempt: the receiver closes it after its answer.
        self.headers = {"Content-Type": "application/json", "User-Agent": user_agent, "Connection": "close"}

    # --- planning ------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base + path + (f"?token={quote(self.token, safe='')}" if self.token else "")

    def deliveries(self, calls: Iterable[Call]) -> list[Delivery]:
        """Every webhook the calls produce, in the order AIRUDDER would send them (by time)."""
        timed: list[tuple[Any, str, int, str, str, dict[str, Any]]] = []
        for call in calls:
            if "call" in self.kinds:
                body = bodies.call_completed_body(call, self.recording_base_url)
                timed.append((call.end_time, call.call_id, 9, "call", self.url(self.call_path), body))
            if "dialer" in self.kinds and call.node_type == "pds":
                states = bodies.dialer_states(call) if self.dialer_progress else [("HANGUP", call.end_time)]
                for order, (state, when) in enumerate(states):
                    body = bodies.dialer_contact_status_body(call, self.recording_base_url, state)
                    timed.append((when, call.call_id, order, "dialer", self.url(self.dialer_path), body))
        timed.sort(key=lambda t: (t[0], t[1], t[2]))
        return [Delivery(i, kind, call_id, url, body) for i, (_, call_id, _, kind, url, body) in enumerate(timed)]

    def _skips(self, plan: list[Delivery]) -> set[int]:
        """Sequence numbers of the deliveries dropped on purpose."""
        rng = random.Random(self.drop_seed)
        units: list[list[Delivery]]
        if self.drop_scope == "call":
            by_call: dict[str, list[Delivery]] = {}
            for d in plan:
                by_call.setdefault(d.call_id, []).append(d)
            units = list(by_call.values())
        else:
            units = [[d] for d in plan]
        skipped: set[int] = set()
        for n, unit in enumerate(units, start=1):
            every = self.drop_every > 0 and n % self.drop_every == 0
            chance = self.drop_fraction > 0 and rng.random() < self.drop_fraction
            if every or chance:
                skipped.update(d.seq for d in unit)
        return skipped

    # --- running ---------------------------------------------------------------------------------------

    def push(self, calls: Iterable[Call]) -> PushReport:
        """Deliver every webhook of `calls`; returns when each is delivered, dropped or skipped."""
        started = time.monotonic()
        plan = self.deliveries(calls)
        report = PushReport(planned=len(plan))
        skip = self._skips(plan)
        cond = threading.Condition()
        heap: list[tuple[float, int, int]] = []  # (due, seq, attempt number)
        for d in plan:
            if d.seq in skip:
                report.skipped += 1
                report.skipped_call_ids.add(d.call_id)
            else:
                heapq.heappush(heap, (started, d.seq, 1))
        state = {"open": len(plan) - len(skip)}  # deliveries not yet finished

        def worker() -> None:
            while True:
                with cond:
                    while True:
                        if state["open"] == 0:
                            cond.notify_all()
                            return
                        now = time.monotonic()
                        if heap and heap[0][0] <= now:
                            _, seq, attempt = heapq.heappop(heap)
                            break
                        # Nothing due: wait for the next due time, or for another worker's news.
                        cond.wait(timeout=min(heap[0][0] - now, 1.0) if heap else 1.0)
                delivery = plan[seq]
                outcome = self._send(delivery)
                with cond:
                    report.attempts += 1
                    report.outcomes[outcome] += 1
                    if attempt > 1:
                        report.retried += 1
                    if outcome.startswith("2"):
                        report.delivered += 1
                        report.delivered_call_ids.add(delivery.call_id)
                        state["open"] -= 1
                    elif attempt < self.max_tries:
                        heapq.heappush(heap, (time.monotonic() + self.retry_delay, seq, attempt + 1))
                    else:
                        report.dropped += 1
                        report.dropped_call_ids.add(delivery.call_id)
                        state["open"] -= 1
                    if self.on_attempt is not None:
                        self.on_attempt(delivery, attempt, outcome)
                    cond.notify_all()

        threads = [
            threading.Thread(target=worker, name=f"webhook-pusher-{i}", daemon=True)
            for i in range(min(self.concurrency, max(len(plan), 1)))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report.seconds = time.monotonic() - started
        return report

    def _send(self, delivery: Delivery) -> str:
        """One attempt, on a fresh connection that is closed when the attempt ends."""
        try:
            with requests.Session() as session:
                response = session.post(
                    delivery.url, data=json.dumps(delivery.body), headers=self.headers, timeout=self.timeout
                )
                response.close()
        except requests.Timeout:
            return "timeout"
        except requests.RequestException:
            return "error"
        return str(response.status_code)
