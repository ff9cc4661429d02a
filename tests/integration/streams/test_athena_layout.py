"""The Glue tables of template.yaml read the archive the way the archive is really written.

Every sample (and some rejected bodies) goes through the gateway; then the folder of every stored event
and quarantined delivery (archive.line_place -> archive.partition_prefix, the archiver's own functions)
and every S3 key under raw/ and quarantine/ must match its table's `storage.location.template`, with a
`type` the enum projects and a `dt` inside the projected date range; the columns must be the keys of
`archive.archive_line`, and every line really archived must have no key the table lacks.

The archive objects are written by tests/integration/archive_support.py from the table (the archiver's
line codec and layout) until the stream archiver runs in the local stack.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airudder_ingest.models import all_models
from airudder_ingest.storage.archive import (
    LINE_FACTS,
    LINE_VERSION,
    ArchiveReader,
    Envelope,
    archive_line,
    line_place,
    partition_prefix,
    unpack_envelope,
)
from tools.local_aws.stack import LocalStack
from tools.local_aws.template import load_template

from ..archive_support import EVERY_DAY, archive_stack
from ..stack_support import Client, Inspector, all_samples

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
TABLES = {"RawDeliveriesTable": "raw", "QuarantinedDeliveriesTable": "quarantine"}
# Java date format letters of Athena's projection.dt.format -> strftime.
JAVA_DATE = {"yyyy": "%Y", "MM": "%m", "dd": "%d"}
# Route -> a body that is quarantined (400): not JSON, or JSON but not an object.
REJECTED = {
    "/webhooks/workflow/call": b'{"call_id": ',
    "/webhooks/collection/call": b"not json at all",
    "/webhooks/workflow/status-changed": b'[{"status": "running"}]',
}


def table_input(stack: LocalStack, logical_id: str) -> dict[str, Any]:
    """The table's TableInput from template.yaml, intrinsics resolved by moto's CloudFormation for the
    local stack (its bucket name, the parameters' defaults, the Mappings)."""
    resources = load_template(ROOT / "template.yaml")["Resources"]
    assert resources[logical_id]["Type"] == "AWS::Glue::Table"
    assert stack.resolver is not None
    resolved: dict[str, Any] = stack.resolver.resolve(resources[logical_id]["Properties"]["TableInput"])
    return resolved


def location_pattern(template: str) -> re.Pattern[str]:
    """storage.location.template as a regular expression with one group per ${...} partition."""
    parts = re.split(r"\$\{(\w+)\}", template)
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
    return re.compile(f"^{regex}[^/]+\\.jsonl\\.gz$")


def date_range(text: str) -> tuple[date, date]:
    start, end = (part.strip() for part in text.split(","))
    match = re.fullmatch(r"NOW(?:\+(\d+)DAYS)?", end)
    assert match, f"unexpected end of the dt range: {end}"
    return date.fromisoformat(start), datetime.now(UTC).date() + timedelta(days=int(match.group(1) or 0))


def line_keys(area: str) -> set[str]:
    """Every key an archive line of `area` can have: archive_line of an item with every fact, and an
    envelope with every optional field."""
    envelope = Envelope("/p", b"{}", headers={"content-type": "application/json"}, pull_only={"a": 1}).fields()
    item: dict[str, Any]
    if area == "raw":
        item = {"item_type": "event", **{name: "x" for name in LINE_FACTS}}
    else:
        item = {"item_type": "quarantine", "quarantine_id": "q", "http_status": 400, "size": 2}
    return set(archive_line(item, envelope))


@pytest.fixture(scope="module")
def archived(client: Client, inspector: Inspector) -> list[str]:
    for sample in all_samples():
        assert client.post(sample.path, sample.body()).status_code == 200, sample.name
    for path, body in REJECTED.items():
        assert client.post(path, None, raw=body).status_code == 400, path
    archive_stack(inspector.stack)
    return inspector.keys("raw/") + inspector.keys("quarantine/")


def stored_lines(inspector: Inspector) -> list[dict[str, Any]]:
    """The archive line of every event and quarantine item of the table (what the archiver writes)."""
    store = inspector.store()
    items = [*store.scan_events(*EVERY_DAY), *store.scan_quarantine(*EVERY_DAY)]
    return [archive_line(item, unpack_envelope(item["envelope"])) for item in items]


def archived_lines(inspector: Inspector, key: str) -> list[dict[str, Any]]:
    return list(ArchiveReader(inspector.bucket, inspector.s3).lines(key))


def test_the_projected_types_are_the_models_webhook_types(stack: LocalStack) -> None:
    types = {model.webhook_type for model in all_models()}
    for logical_id in TABLES:
        params = table_input(stack, logical_id)["Parameters"]
        assert params["projection.type.type"] == "enum"
        assert set(params["projection.type.values"].split(",")) == types


class Projection:
    """A table's partition projection: which S3 keys Athena reads, and as which (type, dt)."""

    def __init__(self, table: dict[str, Any], bucket: str, area: str) -> None:
        params = table["Parameters"]
        assert params["projection.enabled"] == "true"
        assert [key["Name"] for key in table["PartitionKeys"]] == ["type", "dt"]
        self.template = params["storage.location.template"]
        assert self.template == f"s3://{bucket}/{area}/type=${{type}}/dt=${{dt}}/"
        assert self.template.startswith(table["StorageDescriptor"]["Location"])
        self.bucket = bucket
        self.pattern = location_pattern(self.template)
        self.types = set(params["projection.type.values"].split(","))
        assert params["projection.dt.type"] == "date"
        self.dt_format = params["projection.dt.format"]
        self.strftime = self.dt_format
        for java, python in JAVA_DATE.items():
            self.strftime = self.strftime.replace(java, python)
        self.first, self.last = date_range(params["projection.dt.range"])

    def partition(self, key: str) -> tuple[str, str]:
        """(type, dt) of an object key, after checking that the projection reads it."""
        match = self.pattern.match(f"s3://{self.bucket}/{key}")
        assert match, f"{key} does not match {self.template}"
        kind, dt = match.group("type"), match.group("dt")
        assert kind in self.types, f"{key}: type {kind} is not projected"
        day = datetime.strptime(dt, self.strftime).date()
        assert day.strftime(self.strftime) == dt, f"{key}: dt {dt} is not in the format {self.dt_format}"
        assert self.first <= day <= self.last, f"{key}: dt {dt} outside the projected range {self.first}..{self.last}"
        return kind, dt


def test_every_archived_key_matches_its_tables_location_template(
    stack: LocalStack, inspector: Inspector, archived: list[str]
) -> None:
    seen: dict[str, set[str]] = {area: set() for area in TABLES.values()}
    lines = stored_lines(inspector)
    for logical_id, area in TABLES.items():
        projection = Projection(table_input(stack, logical_id), inspector.bucket, area)
        # Where the archiver puts each stored event's and quarantined delivery's line.
        for line in lines:
            place = line_place(line)
            if place[0] == area:
                kind, dt = projection.partition(partition_prefix(*place) + "name.jsonl.gz")
                # raw/ is dated by the event, quarantine/ by the receipt (README, "S3 layout").
                assert (kind, dt) == (line["webhook_type"], (line["event_time"] or line["received_at"])[:10])
                seen[area].add(kind)
        # What the archive really holds (the archiver's set-aside folder, type=_..., is no table's).
        for key in (k for k in archived if k.startswith(f"{area}/") and "/type=_" not in k):
            kind, dt = projection.partition(key)
            for line in archived_lines(inspector, key):
                assert line_place(line) == (area, kind, dt), key

    # Every route was posted: every webhook type has its folder, and each one matched.
    assert seen["raw"] == {model.webhook_type for model in all_models()}
    assert {"workflow.call", "collection.call", "workflow.status_changed"} <= seen["quarantine"]
    assert {k.split("/dt=")[0] for k in archived} >= {f"raw/type={kind}" for kind in seen["raw"]}


def test_the_columns_are_the_archive_lines_keys(stack: LocalStack, inspector: Inspector, archived: list[str]) -> None:
    for logical_id, area in TABLES.items():
        table = table_input(stack, logical_id)
        descriptor = table["StorageDescriptor"]
        assert descriptor["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
        assert table["Parameters"]["compressionType"] == "gzip"
        columns = {column["Name"]: column["Type"] for column in descriptor["Columns"]}
        assert set(columns) == line_keys(area), area
        assert columns["headers"] == columns["query"] == "map<string,string>"
        assert columns["v"] == "int"
        if area == "raw":
            assert columns["results"] == "map<string,string>"
            assert columns["unreadable"] == columns["left_out"] == "array<string>"
        else:
            assert (columns["http_status"], columns["size"]) == ("int", "bigint")
        # What the archive really wrote has no key its table lacks, and is the version the table reads.
        for key in (k for k in archived if k.startswith(f"{area}/") and "/type=_" not in k):
            for line in archived_lines(inspector, key):
                assert set(line) <= set(columns), (key, set(line) - set(columns))
                assert line["v"] == LINE_VERSION == 2


def test_query_results_go_encrypted_under_results_and_expire(stack: LocalStack) -> None:
    resources = load_template(ROOT / "template.yaml")["Resources"]
    assert stack.resolver is not None
    workgroup = stack.resolver.resolve(resources["ArchiveWorkGroup"]["Properties"])
    bucket = stack.resources["ArchiveBucket"]["Ref"]
    config = workgroup["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["ResultConfiguration"]["OutputLocation"] == f"s3://{bucket}/results/"
    assert config["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] in ("SSE_S3", "SSE_KMS")
    rules = stack.boto3_client("s3").get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    results = [r for r in rules if r.get("Filter", {}).get("Prefix") == "results/"]
    assert results and results[0]["Expiration"]["Days"] > 0
