"""The fan-out's off switch (FanoutEnabled=false): no publisher, no bus, nothing published."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.stack_support import Client, all_samples
from tools.local_aws.stack import TEST_TIMEOUT_SCALE, LocalStack


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(parameters={"FanoutEnabled": "false"}, timeout_scale=TEST_TIMEOUT_SCALE) as running:
        yield running


def test_the_off_switch_publishes_nothing(stack: LocalStack, client: Client) -> None:
    assert stack.faults is not None
    assert "FanoutFunction" not in (stack.functions.specs if stack.functions else {})
    # The archiver still reads the stream; no publisher does.
    assert "IngestEventBus" not in stack.resources and stack.stream_consumers() == ["ArchiverFunction"]
    for sample in all_samples()[:5]:
        assert client.post(sample.path, sample.body()).status_code == 200
    # The stream still records every write (the archiver reads it); nobody publishes it.
    streams = stack.boto3_client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stack.resources["EventsTable"]["StreamArn"])["StreamDescription"]
    assert shard["Shards"]
    assert stack.faults.count("events") == 0
    buses = stack.boto3_client("events").list_event_buses()["EventBuses"]
    assert [bus["Name"] for bus in buses] == ["default"]
