"""The Glue tables of template.yaml read the archive the way the archive is really written.

Every sample (and some rejected bodies) goes through the gateway; then every S3 key under raw/ and
quarantine/ must match its table's `storage.location.template`, with a `type` the enum projects and a
`dt` inside the projected date range, and every envelope field must be a column of the table.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airudder_ingest.archive import Envelope
from airudder_ingest.models import all_models
from tools.cfn import load_template
from tools.local_stack import LocalStack

from .conftest import Client, Inspector, all_samples

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
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
    """The table's TableInput from template.yaml (parsed with tools.cfn), intrinsics resolved for the
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
    return re.compile(f"^{regex}[^/]+\\.json$")


def date_range(text: str) -> tuple[date, date]:
    start, end = (part.strip() for part in text.split(","))
    match = re.fullmatch(r"NOW(?:\+(\d+)DAYS)?", end)
    assert match, f"unexpected end of the dt range: {end}"
    return date.fromisoformat(start), datetime.now(UTC).date() + timedelta(days=int(match.group(1) or 0))


def envelope_fields() -> set[str]:
    line = Envelope("t", "/r", "/p", "2025-01-01T00:00:00.000Z", b"{}", "0" * 64, reason="why").to_json_line()
    return set(json.loads(line))


@pytest.fixture(scope="module")
def archived(client: Client, inspector: Inspector) -> list[str]:
    for sample in all_samples():
        assert client.post(sample.path, sample.body()).status_code == 200, sample.name
    for path, body in REJECTED.items():
        assert client.post(path, None, raw=body).status_code == 400, path
    return inspector.keys("raw/") + inspector.keys("quarantine/")


def test_the_projected_types_are_the_models_webhook_types(stack: LocalStack) -> None:
    types = {model.webhook_type for model in all_models()}
    for logical_id in TABLES:
        params = table_input(stack, logical_id)["Parameters"]
        assert params["projection.type.type"] == "enum"
        assert set(params["projection.type.values"].split(",")) == types


def test_every_archived_key_matches_its_tables_location_template(
    stack: LocalStack, inspector: Inspector, archived: list[str]
) -> None:
    bucket = inspector.bucket
    seen: dict[str, set[str]] = {area: set() for area in TABLES.values()}
    for logical_id, area in TABLES.items():
        table = table_input(stack, logical_id)
        params = table["Parameters"]
        assert params["projection.enabled"] == "true"
        assert [key["Name"] for key in table["PartitionKeys"]] == ["type", "dt"]
        template = params["storage.location.template"]
        assert template == f"s3://{bucket}/{area}/type=${{type}}/dt=${{dt}}/"
        assert template.startswith(table["StorageDescriptor"]["Location"])
        pattern = location_pattern(template)
        projected_types = set(params["projection.type.values"].split(","))
        assert params["projection.dt.type"] == "date"
        dt_format = params["projection.dt.format"]
        strftime = dt_format
        for java, python in JAVA_DATE.items():
            strftime = strftime.replace(java, python)
        first, last = date_range(params["projection.dt.range"])

        for key in (k for k in archived if k.startswith(f"{area}/")):
            match = pattern.match(f"s3://{bucket}/{key}")
            assert match, f"{key} does not match {template}"
            kind, dt = match.group("type"), match.group("dt")
            assert kind in projected_types, f"{key}: type {kind} is not projected"
            day = datetime.strptime(dt, strftime).date()
            assert day.strftime(strftime) == dt, f"{key}: dt {dt} is not in the format {dt_format}"
            assert first <= day <= last, f"{key}: dt {dt} outside the projected range {first}..{last}"
            envelope = inspector.archived(key)
            assert envelope["webhook_type"] == kind
            # raw/ is dated by the event, quarantine/ by the receipt (README, "S3 layout").
            assert dt == (envelope["event_time"] if area == "raw" else envelope["received_at"])[:10]
            seen[area].add(kind)

    # Every route was posted: every webhook type has its folder, and each one matched.
    assert seen["raw"] == {model.webhook_type for model in all_models()}
    assert {"workflow.call", "collection.call", "workflow.status_changed"} <= seen["quarantine"]


def test_the_columns_are_the_envelope_fields(stack: LocalStack, inspector: Inspector, archived: list[str]) -> None:
    fields = envelope_fields()
    for logical_id in TABLES:
        descriptor = table_input(stack, logical_id)["StorageDescriptor"]
        assert descriptor["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
        columns = {column["Name"]: column["Type"] for column in descriptor["Columns"]}
        assert set(columns) == fields
        assert columns["headers"] == columns["query"] == "map<string,string>"
        assert columns["v"] == "int"
    for key in archived:  # what the archive really wrote has no field the tables lack
        assert set(inspector.archived(key)) <= fields, key


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
