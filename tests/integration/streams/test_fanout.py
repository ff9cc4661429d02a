"""Fan-out over HTTP against moto: webhooks posted to the local gateway, the table's stream read by the
local stream poller into FanoutFunction, the events published to the stack's bus, and a customer's rule
delivering them to an SQS queue (moto runs the rule)."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.integration.stack_support import Client, all_samples
from tools.demo.bus_subscription import BusSubscription
from tools.local_aws.stack import LocalStack
from tools.local_aws.stream_poller import StreamPoller

SCHEMA = json.loads((Path(__file__).resolve().parents[3] / "schemas" / "ingest-event.schema.json").read_text())


@pytest.fixture(scope="module")
def subscription(stack: LocalStack) -> BusSubscription:
    return BusSubscription(stack, "fanout-test")


def readme_rules() -> dict[str, dict[str, Any]]:
    """The example rules of README's "Fan-out" section: what -> event pattern."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    table = readme.split("**Three rules a customer would write**", 1)[1].split("\n\n", 2)[1]
    rules = {}
    for row in table.splitlines()[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        rules[cells[0]] = json.loads(cells[1].strip("`"))
    return rules


@pytest.fixture(scope="module")
def readme_subscriptions(stack: LocalStack) -> dict[str, BusSubscription]:
    """One queue per README example rule, subscribed before anything is posted."""
    return {
        what: BusSubscription(stack, f"readme-rule-{n}", pattern)
        for n, (what, pattern) in enumerate(readme_rules().items())
    }


@pytest.fixture(scope="module")
def poller(stack: LocalStack) -> StreamPoller:
    return stack.stream_poller("FanoutFunction")


@pytest.fixture(autouse=True)
def _clean_faults(stack: LocalStack) -> Iterator[None]:
    yield
    assert stack.faults is not None
    stack.faults.clear()


def post_all(client: Client) -> dict[str, str]:
    """Every sample once: event id -> outcome."""
    outcomes: dict[str, str] = {}
    for sample in all_samples():
        answer = client.post(sample.path, sample.body())
        assert answer.status_code == 200, (sample.name, answer.text)
        outcomes[answer.headers["x-event-id"]] = answer.headers["x-ingest-outcome"]
    return outcomes


def test_every_sample_arrives_exactly_once(
    client: Client,
    poller: StreamPoller,
    subscription: BusSubscription,
    inspector: Any,
    readme_subscriptions: dict[str, BusSubscription],
) -> None:
    outcomes = post_all(client)
    stored = {event_id for event_id, outcome in outcomes.items() if outcome == "stored"}
    assert len(stored) == len(outcomes) >= 30
    poller.drain()
    arrived = subscription.take()
    assert Counter(e["detail"]["event_id"] for e in arrived) == Counter(stored)  # each once, nothing else
    for event in arrived:
        detail = event["detail"]
        jsonschema.validate(detail, SCHEMA)
        assert event["source"] == "airudder.ingest"
        assert event["detail-type"] == detail["webhook_type"]
        item = inspector.event(detail["event_id"])
        assert detail["event_key"] == {"pk": item["pk"], "sk": item["sk"]}
        day = item["event_time"][:10]
        assert detail["archive"]["prefix"] == f"raw/type={item['webhook_type']}/dt={day}/"
        if item.get("phone"):  # masked by default: only the last four digits shown
            assert detail["phone"] != item["phone"] and detail["phone"].endswith(item["phone"][-4:])
        assert "data" not in detail and "body" not in detail  # the facts, never the body (schema: closed)
    # README's example rules route what they say they route (moto runs the patterns).
    details = [e["detail"] for e in arrived]
    expected = {
        "promise": {
            d["event_id"]
            for d in details
            if d["family"] in ("workflow", "collection") and d.get("result", {}).get("intention") == "A"
        },
        "finished": {
            d["event_id"]
            for d in details
            if d["webhook_type"] == "workflow.status_changed" and str(d["status"]).lower() == "finished"
        },
        "workflow": {
            d["event_id"] for d in details if d["ids"].get("workflow_id") == "8c3d9d033236d8c10ca1c35984012a10"
        },
    }
    assert len(readme_subscriptions) == 3
    for (what, rule), wanted in zip(readme_subscriptions.items(), expected.values(), strict=True):
        got = [e["detail"]["event_id"] for e in rule.take()]
        assert wanted and sorted(got) == sorted(wanted), what


def test_duplicates_and_quarantined_publish_nothing(
    client: Client, poller: StreamPoller, subscription: BusSubscription, stack: LocalStack
) -> None:
    assert set(post_all(client).values()) == {"duplicate"}
    quarantined = client.post("/webhooks/workflow/call", None, raw=b"{not json")
    assert quarantined.status_code == 400 and quarantined.json()["quarantine_id"]
    assert client.post("/webhooks/workflow/call", {"x": 1}, token="wrong").status_code == 401
    assert stack.faults is not None
    stack.faults.reset_calls()
    poller.drain()
    assert subscription.take() == []
    assert stack.faults.count("events", "PutEvents") == 0  # filtered at the mapping: no invocation


def _new_call(client: Client, n: int) -> str:
    sample = next(s for s in all_samples() if s.name == "workflow/call/completed.json")
    body = {**sample.body(), "call_id": f"fanout-{n}"}
    answer = client.post(sample.path, body)
    assert answer.headers["x-ingest-outcome"] == "stored"
    return answer.headers["x-event-id"]


def test_a_failing_publish_is_retried_and_nothing_is_lost(
    client: Client, poller: StreamPoller, subscription: BusSubscription, stack: LocalStack
) -> None:
    assert stack.faults is not None
    ids = [_new_call(client, n) for n in range(12)]
    # Every PutEvents call fails (500) for longer than the publisher's own retries: the batch is handed
    # back to the mapping (ReportBatchItemFailures), whose retry then publishes it.
    stack.faults.fail("events", "PutEvents", times=9)
    batches = poller.drain()
    assert batches[0].failed_from is not None and batches[-1].failed_from is None
    assert stack.faults.count("events", "PutEvents", injected=True) == 9
    assert sorted(e["detail"]["event_id"] for e in subscription.take()) == sorted(ids)


def test_refused_entries_are_retried_one_by_one(
    client: Client, poller: StreamPoller, subscription: BusSubscription, stack: LocalStack
) -> None:
    """EventBridge takes half of a call and refuses the rest (FailedEntryCount): only the refused
    entries are sent again."""
    assert stack.faults is not None
    events = stack.boto3_client("events")
    sent: list[str] = []

    def half_refused(body: bytes) -> tuple[int, Any]:
        entries = json.loads(body)["Entries"]
        taken = entries[::2]
        answer = events.put_events(Entries=taken)["Entries"]
        sent.extend(json.loads(e["Detail"])["event_id"] for e in taken)
        results: list[dict[str, Any]] = []
        for n in range(len(entries)):
            results.append(answer[n // 2] if n % 2 == 0 else {"ErrorCode": "ThrottlingException", "ErrorMessage": "x"})
        return 200, {"FailedEntryCount": len(entries) - len(taken), "Entries": results}

    ids = [_new_call(client, 100 + n) for n in range(6)]
    stack.faults.answer("events", "PutEvents", half_refused, times=1)
    stack.faults.reset_calls()
    poller.drain()
    arrived = [e["detail"]["event_id"] for e in subscription.take()]
    assert sorted(arrived) == sorted(ids)  # each exactly once: the accepted half was not sent again
    assert len(sent) == 3
    # One answered by the rule (half taken), then one forwarded: the refused three, once more.
    assert stack.faults.count("events", "PutEvents", injected=True) == 1
    assert stack.faults.count("events", "PutEvents", injected=False) == 1


def redrive(stack: LocalStack) -> Any:
    """`make republish` against the local stack: the on-failure queue emptied into the bus."""
    from airudder_ingest.streams.fanout import EventPublisher, FanoutSettings, redrive_failures

    events = stack.boto3_client("events")
    settings = FanoutSettings(
        event_bus=stack.resources["IngestEventBus"]["Ref"], archive_bucket=stack.resources["ArchiveBucket"]["Ref"]
    )
    queue = stack.resources["FanoutFailureQueue"]["QueueUrl"]
    report = redrive_failures(
        queue,
        stack.boto3_client("sqs"),
        events,
        stack.boto3_client("dynamodbstreams"),
        EventPublisher(settings, events, None),
    )
    depth = stack.boto3_client("sqs").get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert depth == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    return report


def test_entries_refused_past_the_retries_are_parked_then_published(
    client: Client, poller: StreamPoller, subscription: BusSubscription, stack: LocalStack
) -> None:
    assert stack.faults is not None

    def refuse_all(body: bytes) -> tuple[int, Any]:
        entries = json.loads(body)["Entries"]
        return 200, {
            "FailedEntryCount": len(entries),
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"} for _ in entries],
        }

    ids = [_new_call(client, 200 + n) for n in range(3)]
    stack.faults.answer("events", "PutEvents", refuse_all)
    batches = poller.drain()
    assert all(b.failed_from is None for b in batches)  # parked: the shard moves on
    assert subscription.take() == []
    sqs = stack.boto3_client("sqs")
    queue = stack.resources["FanoutFailureQueue"]["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert sorted(json.loads(m["Body"])["event_id"] for m in messages) == sorted(ids)
    stack.faults.clear()
    assert redrive(stack).entries_published == 3
    assert sorted(e["detail"]["event_id"] for e in subscription.take()) == sorted(ids)


def test_a_batch_lambda_gives_up_on_is_published_by_the_redrive(
    client: Client, poller: StreamPoller, subscription: BusSubscription, stack: LocalStack
) -> None:
    """EventBridge down for longer than the mapping's retries: the batch's pointer goes to the
    on-failure queue (as Lambda does), and the redrive reads the records back from the stream."""
    assert stack.faults is not None
    ids = [_new_call(client, 300 + n) for n in range(4)]
    stack.faults.fail("events", "PutEvents")
    poller.max_retry_attempts, kept = 1, poller.max_retry_attempts
    try:
        batches = poller.drain()
    finally:
        poller.max_retry_attempts = kept
    assert [b.sent_to_on_failure for b in batches] == [False, True]
    assert subscription.take() == []
    stack.faults.clear()
    report = redrive(stack)
    assert (report.batches_published, report.events_in_batches) == (1, 4)
    assert sorted(e["detail"]["event_id"] for e in subscription.take()) == sorted(ids)
    assert poller.drain() == []  # the mapping has moved on: nothing is published twice


def test_log_lines_of_a_delivery_join_up(
    client: Client, poller: StreamPoller, subscription: BusSubscription, stack: LocalStack
) -> None:
    """The webhook's, the recordings consumer's and the publisher's log lines of one delivery carry its
    API request id as correlation_id, and the event id once known: one search finds the whole path."""
    sqs = stack.boto3_client("sqs")
    sqs.purge_queue(QueueUrl=stack.resources["RecordingsQueue"]["QueueUrl"])  # the samples' links: not ours
    client.post("/webhooks/workflow/call", {"call_id": "warm-up", "status": "answered"})  # handlers imported
    poller.drain()
    subscription.take()
    # The functions' JSON lines, through their own formatter (the Logger's handler holds whatever
    # sys.stdout was when it was made, so capturing stdout here would depend on test order).
    service = logging.getLogger("airudder-ingest")
    seen = io.StringIO()
    handler = logging.StreamHandler(seen)
    handler.setFormatter(service.handlers[0].formatter)
    service.addHandler(handler)
    try:
        # A link to a host off the allow-list: the consumer refuses it without fetching anything.
        body = {"call_id": "joined-up-logs", "status": "answered", "recLink": "https://elsewhere.invalid/a.wav"}
        answer = client.post("/webhooks/workflow/call", body)
        assert stack.deliver_sqs("RecordingsFunction")["received"] == 1
        poller.drain()
    finally:
        service.removeHandler(handler)
    request_id, event_id = answer.headers["apigw-requestid"], answer.headers["x-event-id"]
    [published] = subscription.take()
    assert published["detail"]["request_id"] == request_id
    lines = [json.loads(line) for line in seen.getvalue().splitlines()]
    webhook = [line for line in lines if line.get("function_name") == stack.resources["WorkflowCallFunction"]["Ref"]]
    publisher = [line for line in lines if line.get("function_name") == stack.resources["FanoutFunction"]["Ref"]]
    recording = [line for line in lines if line.get("function_name") == stack.resources["RecordingsFunction"]["Ref"]]
    assert webhook and publisher and recording
    assert {line.get("correlation_id") for line in webhook + recording + publisher} == {request_id}
    assert {line.get("event_id") for line in webhook + recording + publisher} == {event_id}
