"""What the integration tests share besides fixtures: the sample bodies of events/, a client that posts as
AIRUDDER does, and an inspector that reads what the stack stored straight from moto."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tools.local_aws.apigw_events import ROUTE_PREFIX, sample_files
from tools.local_aws.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


@dataclass(frozen=True)
class Sample:
    """A sample body of events/ and the URL path it is posted to."""

    file: Path
    path: str

    @property
    def name(self) -> str:
        return self.file.relative_to(EVENTS).as_posix()

    def body(self) -> Any:
        return json.loads(self.file.read_bytes())


def all_samples() -> list[Sample]:
    return [
        Sample(file, ROUTE_PREFIX + "/".join(file.relative_to(EVENTS).parent.parts)) for file in sample_files(EVENTS)
    ]


class Client:
    """Posts to the local gateway the way AIRUDDER does: a URL with ?token=, a JSON body."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.session = requests.Session()

    def post(
        self,
        path: str,
        body: Any,
        *,
        token: str | None = "default",
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        params = {} if token is None else {"token": self.stack.token if token == "default" else token}
        data = raw if raw is not None else json.dumps(body).encode()
        return self.session.post(
            self.stack.url(path),
            params=params,
            data=data,
            headers={"content-type": "application/json", "user-agent": "Airudder", **(headers or {})},
            timeout=30,
        )


class Inspector:
    """Reads what the stack stored, straight from moto (not through the fault proxy)."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.table = stack.resources["EventsTable"]["Ref"]
        self.bucket = stack.resources["ArchiveBucket"]["Ref"]
        self.ddb = stack.boto3_client("dynamodb")
        self.s3 = stack.boto3_client("s3")
        self._event_keys: dict[str, tuple[str, str]] = {}
        self._reader: Any = None

    def item_count(self) -> int:
        return sum(page["Count"] for page in self.ddb.get_paginator("scan").paginate(TableName=self.table))

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def archived(self, item: dict[str, Any]) -> dict[str, Any]:
        """The delivery an event or quarantine item keeps: its packed envelope, or its claim check's."""
        from airudder_ingest.storage.archive import unpack_envelope

        if "envelope" in item:
            return unpack_envelope(item["envelope"])
        blob = self.s3.get_object(Bucket=self.bucket, Key=item["envelope_key"])["Body"].read()
        return unpack_envelope(blob)

    def store(self) -> Any:
        from airudder_ingest.storage.store import EventStore

        return EventStore(self.table, self.ddb)

    def event(self, event_id: str) -> dict[str, Any] | None:
        """The stored event of an id, found through the table's stream (the new event items it has seen,
        read on from where the last call stopped) rather than a Scan of the table per lookup."""
        key = self._event_keys.get(event_id)
        if key is None:
            self._event_reader().drain()
            key = self._event_keys.get(event_id)
        return self.store().get_event(*key) if key else None

    def _event_reader(self) -> Any:
        if self._reader is None:
            from tools.local_aws.stream_poller import StreamPoller

            def remember(batch: dict[str, Any]) -> None:
                for record in batch["Records"]:
                    keys = record["dynamodb"]["Keys"]
                    image = record["dynamodb"].get("NewImage") or {}
                    if "event_id" in image and keys["sk"]["S"].startswith("EV#"):
                        self._event_keys[image["event_id"]["S"]] = (keys["pk"]["S"], keys["sk"]["S"])

            arn = self.stack.resources["EventsTable"]["StreamArn"]
            streams = self.stack.boto3_client("dynamodbstreams")
            self._reader = StreamPoller(streams, arn, remember, batch_size=1000, name="inspector-events")
        return self._reader


def cli_local(stack: LocalStack) -> list[str]:
    """The `airudder-data` options that point it at a local stack's table and bucket."""
    return [
        "--endpoint-url",
        stack.moto_url,
        "--table",
        stack.resources["EventsTable"]["Ref"],
        "--bucket",
        stack.resources["ArchiveBucket"]["Ref"],
    ]
