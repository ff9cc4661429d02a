"""Issue 11, floods: each webhook route has its own throttle, applied by the local gateway as API Gateway
applies the template's route settings. A flood on one route answers 429 there, stores nothing and runs
no function, while the other routes keep accepting.

The stack of this module refills no token on the other routes (rate 0, burst 2): what a route accepts is
counted, not timed. The call routes keep their default throttle (2,000/s, burst 4,000).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tools.local_aws.stack import TEST_TIMEOUT_SCALE, LocalStack

from ..stack_support import EVENTS, Client, Inspector

pytestmark = pytest.mark.integration

OTHER_ROUTES_BURST = 2
FLOODED = "/webhooks/workflow/status-changed"
NEIGHBOUR = "/webhooks/workflow/list-completed"
FORGED = "/webhooks/chatbot/inbound"
CALL = "/webhooks/workflow/call"
TOO_MANY_REQUESTS = {"message": "Too Many Requests"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """A stack of this module's own: its buckets are spent by these tests only."""
    parameters = {"OtherRoutesThrottlingRateLimit": "0", "OtherRoutesThrottlingBurstLimit": str(OTHER_ROUTES_BURST)}
    with LocalStack(parameters=parameters, timeout_scale=TEST_TIMEOUT_SCALE) as running:
        yield running


def delivery(sample: str, n: int) -> dict[str, Any]:
    """A sample body made a distinct delivery (a new event if it were stored)."""
    body: dict[str, Any] = json.loads((EVENTS / sample).read_bytes())
    body["flood_test_delivery"] = n
    return body


def stored(inspector: Inspector) -> tuple[int, list[str]]:
    """Items in the table and objects in the archive (raw and quarantine)."""
    return inspector.item_count(), sorted(inspector.keys())


def assert_throttled(answer: requests.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.json() == TOO_MANY_REQUESTS
    assert "x-ingest-outcome" not in answer.headers  # API Gateway's answer: no function ran


def test_a_flood_on_one_route_is_throttled_there_and_the_other_routes_keep_accepting(
    stack: LocalStack, client: Client, inspector: Inspector
) -> None:
    assert stack.faults is not None
    sample = "workflow/status-changed/finished.json"
    accepted = [client.post(FLOODED, delivery(sample, n)) for n in range(OTHER_ROUTES_BURST)]
    assert [(a.status_code, a.headers.get("x-ingest-outcome")) for a in accepted] == [(200, "stored")] * 2
    before = stored(inspector)
    stack.faults.reset_calls()

    # The route's bucket is empty and never refills: the next valid delivery is refused before any function.
    assert_throttled(client.post(FLOODED, delivery(sample, OTHER_ROUTES_BURST)))
    assert stack.faults.count() == 0  # no AWS call at all: no token read, nothing archived or written
    assert stored(inspector) == before

    # Another route spends a bucket of its own.
    neighbour = client.post(NEIGHBOUR, delivery("workflow/list-completed/completed.json", 0))
    assert (neighbour.status_code, neighbour.headers.get("x-ingest-outcome")) == (200, "stored")
    # A call route has the call routes' throttle: more deliveries than the other routes' burst all pass.
    calls = [client.post(CALL, delivery("workflow/call/completed.json", n)) for n in range(3 * OTHER_ROUTES_BURST)]
    assert [(a.status_code, a.headers.get("x-ingest-outcome")) for a in calls] == [(200, "stored")] * len(calls)
    assert stored(inspector)[0] > before[0]
    # And the flooded route stays refused.
    assert_throttled(client.post(FLOODED, delivery(sample, OTHER_ROUTES_BURST + 1)))


def test_forged_requests_spend_the_routes_tokens_and_then_airudders_delivery_is_refused(
    stack: LocalStack, client: Client, inspector: Inspector
) -> None:
    # A throttle cannot tell AIRUDDER from a forger (README, "Floods"): a request spends a token before
    # anything checks its token, so the flood's 401s empty the bucket that AIRUDDER's delivery needs.
    forged = [client.post(FORGED, {"forged": n}, token="not-the-token") for n in range(OTHER_ROUTES_BURST)]
    assert [a.status_code for a in forged] == [401] * OTHER_ROUTES_BURST
    before = stored(inspector)
    assert_throttled(client.post(FORGED, delivery("chatbot/inbound/conversation.json", 0)))
    assert_throttled(client.post(FORGED, {"forged": "again"}, token="not-the-token"))  # 429 before the 401
    assert stored(inspector) == before
