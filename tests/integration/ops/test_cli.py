"""airudder-data against the local stack: every sample posted through the gateway (the real ingest path),
a recording copied by the real recordings function from a local server, the table archived as the
archiver archives it (tests/integration/archive_support.py), then every command of the CLI over HTTP
against moto, with the table and bucket named or found through a CloudFormation stack."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from airudder_ingest.storage.archive import ArchiveReader, unpack_envelope
from airudder_ingest.storage.store import STATE_SK, entity_key
from airudder_ops.cli import main
from tests.support.recordings_testkit import RecordingsLab
from tools.local_aws.stack import LocalStack
from tools.simulator.recordings_server import expected_sha256

from ..archive_support import archive_stack
from ..stack_support import EVENTS, Client, Inspector, all_samples, cli_local

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
# Bodies above this are quarantined (413): what a later replay takes up (see test_replay_of_a_quarantined_...).
MAX_BODY_BYTES = 4096
WORKFLOW = "8c3d9d033236d8c10ca1c35984012a10"
WORKFLOW_CALL = "84e761298ef4394273900e00a2fc0127"
DIALER_WORKFLOW = "2b6951a25b434657b94d4d60d96fcf18"
DIALER_TASK = "9751a67700274a24b650334587653de6"
DIALER_PHONE = "+6281234567890"
RECORDED_CALL = "cli-recorded-call-0001"
RECORDING_BYTES = 300_000
OVERSIZED_CALL = "cli-oversized-call-0001"
UNREADABLE_SESSION = "cli-conversation-without-message-id"


@dataclass
class Ingested:
    event_ids: dict[str, str] = field(default_factory=dict)  # sample name -> x-event-id
    invalid_quarantine_id: str = ""
    oversized_quarantine_id: str = ""


@pytest.fixture(scope="module")
def lab() -> Iterator[RecordingsLab]:
    with RecordingsLab(parameters={"MaxBodyBytes": str(MAX_BODY_BYTES)}) as running:
        yield running


@pytest.fixture(scope="module")
def stack(lab: RecordingsLab) -> LocalStack:
    """The lab's stack (the conftest's client and inspector fixtures use this one)."""
    return lab.running


def sample(path: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / path).read_text()))


@pytest.fixture(scope="module")
def ingested(lab: RecordingsLab, client: Client, inspector: Inspector) -> Ingested:
    found = Ingested()
    # A call whose recording the recordings function copies from the local recordings server (first: the
    # samples' links point at AIRUDDER's hosts, which this machine does not reach; they stay queued).
    recorded = sample("workflow/call/completed.json") | {
        "call_id": RECORDED_CALL,
        "case_id": "cli-case-recorded",
        "recLink": lab.server.url(RECORDED_CALL, size=RECORDING_BYTES),
    }
    assert client.post("/webhooks/workflow/call", recorded).status_code == 200
    assert [b.failed for b in lab.drain()] == [[]]
    assert lab.recording(RECORDED_CALL)["recording_status"] == "archived"
    for item in all_samples():
        answer = client.post(item.path, item.body())
        assert answer.status_code == 200, (item.name, answer.text)
        found.event_ids[item.name] = answer.headers["x-event-id"]
    # The same workflow call, ringing a minute before it was answered: the call's history has two events.
    ringing = sample("workflow/call/completed.json") | {"status": "ringing", "end_time": "2025-04-15 09:30:10"}
    ringing.pop("recLink")
    answer = client.post("/webhooks/workflow/call", ringing)
    assert answer.status_code == 200
    found.event_ids["ringing"] = answer.headers["x-event-id"]
    # Stored though its model cannot read its message id: filed under its conversation, listed by `unreadable`.
    no_message_id = sample("chatbot/message-status/read.json") | {"call_id": UNREADABLE_SESSION}
    no_message_id.pop("msg_id")
    answer = client.post("/webhooks/chatbot/message-status", no_message_id)
    assert answer.status_code == 200
    found.event_ids["unreadable"] = answer.headers["x-event-id"]
    # Quarantined: a body that is not JSON (400), and a valid call too large for MaxBodyBytes (413).
    answer = client.post("/webhooks/workflow/call", None, raw=b'{"workflow_id": "w", "call_id":')
    assert answer.status_code == 400
    found.invalid_quarantine_id = answer.json()["quarantine_id"]
    oversized = sample("workflow/call/completed.json") | {
        "call_id": OVERSIZED_CALL,
        "case_id": "cli-case-oversized",
        "notes": "x" * MAX_BODY_BYTES,
    }
    oversized.pop("recLink")
    answer = client.post("/webhooks/workflow/call", oversized)
    assert answer.status_code == 413
    found.oversized_quarantine_id = answer.json()["quarantine_id"]
    archive_stack(inspector.stack)
    return found


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def cli(*argv: str) -> Run:
    """The CLI's main() in this process, its stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return Run(code, out.getvalue(), err.getvalue())


def on(stack: LocalStack, *argv: str) -> Run:
    return cli(*argv, *cli_local(stack))


def one_line_error(run: Run, code: int) -> str:
    assert run.code == code, run
    assert run.out == ""
    lines = run.err.splitlines()
    assert len(lines) == 1, run.err
    return lines[0]


# ---------------------------------------------------------------------------------------------- queries


def test_call_shows_its_state_and_its_history_oldest_first(stack: LocalStack, ingested: Ingested) -> None:
    run = on(stack, "call", WORKFLOW_CALL, "--json")

    assert run.code == 0, run.err
    found = run.json()
    assert found["state"]["status"] == "answered"  # the newest event wins
    assert found["state"]["case_id"] == "test-caseid11"
    assert [e["event_id"] for e in found["events"]] == [
        ingested.event_ids["ringing"],
        ingested.event_ids["workflow/call/completed.json"],
    ]
    assert [e["status"] for e in found["events"]] == ["ringing", "answered"]

    table = on(stack, "call", WORKFLOW_CALL)
    assert table.code == 0
    assert "status      answered" in table.out
    assert ingested.event_ids["ringing"] in table.out and "events, oldest first (2)" in table.out


def test_phone_lists_events_newest_first_within_a_window(stack: LocalStack, ingested: Ingested) -> None:
    everything = on(stack, "phone", DIALER_PHONE, "--json").json()["events"]
    assert [e["event_time"] for e in everything] == ["2022-11-21T02:45:30.000Z", "2022-11-21T02:44:51.000Z"]
    assert {e["event_id"] for e in everything} == {
        ingested.event_ids["workflow/dialer/agent-status.json"],
        ingested.event_ids["workflow/dialer/contact-status-answered.json"],
    }

    since = on(stack, "phone", DIALER_PHONE, "--since", "2022-11-21T02:45:00Z", "--json").json()["events"]
    until = on(stack, "phone", DIALER_PHONE, "--until", "2022-11-21T09:45:00+07:00", "--json").json()["events"]
    whole_day = on(stack, "phone", DIALER_PHONE, "--since", "2022-11-21", "--until", "2022-11-21", "--json")
    assert [e["event_time"] for e in since] == ["2022-11-21T02:45:30.000Z"]
    assert [e["event_time"] for e in until] == ["2022-11-21T02:44:51.000Z"]
    assert len(whole_day.json()["events"]) == 2
    # The number as AIRUDDER sends it elsewhere (00 prefix) is the same E.164 number.
    assert len(on(stack, "phone", "0062 812-3456-7890", "--json").json()["events"]) == 2

    nothing = on(stack, "phone", DIALER_PHONE, "--since", "2023-01-01")
    assert one_line_error(nothing, 1).startswith("airudder-data: not found: events for phone +6281234567890")


def test_case_lists_every_event_about_it(stack: LocalStack, ingested: Ingested) -> None:
    found = on(stack, "case", "test-caseid11", "--json").json()

    types = [e["webhook_type"] for e in found["events"]]
    assert {"workflow.call", "workflow.custom_api", "workflow.list_completed"} <= set(types)
    assert ingested.event_ids["workflow/list-completed/completed.json"] in {e["event_id"] for e in found["events"]}
    assert found["state"]["status"] == "list_completed"
    times = [e["event_time"] for e in found["events"]]
    assert times == sorted(times)


def test_workflow_shows_node_tasks_from_the_status_change_and_its_calls(stack: LocalStack, ingested: Ingested) -> None:
    found = on(stack, "workflow", WORKFLOW, "--json").json()

    assert found["workflow_name"] == "collection_demo_0415"
    status = found["state"]["status"]
    assert status in ("running", "finished")  # both samples were posted; no time: the later receipt wins
    nodes = {n["nodetask_id"]: n for n in found["node_tasks"]}
    ai_call, waba = nodes["e21f8a046d2527766b9e6dc33f122482"], nodes["6d9f0ead18bdde948945b9bcf04dc7c9"]
    assert ai_call["nodetask_name"] == "AI Call1_4d2e7b" and ai_call["task_status"] == status
    assert ai_call["calls"] >= 1 and "answered" in ai_call["results"]
    assert waba["node_type"] == "waba"
    members = {(m["entity_kind"], m["entity_id"]): m for m in found["members"]}
    assert members[("CALL", WORKFLOW_CALL)]["status"] == "answered"
    assert ("CASE", "test-caseid11") in members

    table = on(stack, "workflow", WORKFLOW)
    assert "AI Call1_4d2e7b" in table.out and "node tasks (2)" in table.out


def test_task_shows_the_dialer_task_with_its_calls_and_agents(stack: LocalStack, ingested: Ingested) -> None:
    found = on(stack, "task", DIALER_TASK, "--json").json()

    assert found["state"]["entity_kind"] == "DTASK" and found["state"]["status"] == "Finished"
    assert {c["entity_id"] for c in found["calls"]} == {
        "c379e0b29c11e9d4141a5d275442e0d9",
        "48ff2faa9de34c0387eb688468d563a5",
    }
    assert [a["entity_id"] for a in found["agents"]] == ["agent.demo01"]
    assert found["state"]["workflow_id"] == DIALER_WORKFLOW

    table = on(stack, "task", DIALER_TASK)
    assert "agent.demo01" in table.out and "HANGUP 2" in table.out


def test_unreadable_lists_the_events_their_model_could_not_fully_read(stack: LocalStack, ingested: Ingested) -> None:
    event_id = ingested.event_ids["unreadable"]
    run = on(stack, "unreadable", "--day", "2025-04-16", "--type", "chatbot.message_status", "--json")

    assert run.code == 0, run.err
    found = run.json()
    assert found["days"] == ["2025-04-16"] and found["type"] == "chatbot.message_status"
    (event,) = found["events"]
    assert (event["event_id"], event["unreadable"]) == (event_id, ["message_id"])
    assert (event["entity_kind"], event["entity_id"]) == ("SESSION", UNREADABLE_SESSION)
    assert event["body"]["call_id"] == UNREADABLE_SESSION and "msg_id" not in event["body"]  # the body as received
    # Every sample is read in full: over both sample days, this is the only one listed.
    both_days = on(stack, "unreadable", "--from", "2025-04-15", "--to", "2025-04-16", "--json").json()
    assert [e["event_id"] for e in both_days["events"]] == [event_id]
    assert on(stack, "unreadable", "--day", "2025-04-16", "--type", "workflow.call", "--json").json()["events"] == []

    table = on(stack, "unreadable", "--day", "2025-04-16")
    assert table.code == 0 and event_id in table.out and "message_id" in table.out
    assert "events, oldest first (1)" in table.out


# ---------------------------------------------------------------------------------------------- recordings


def test_recording_link_and_download(stack: LocalStack, ingested: Ingested, tmp_path: Path) -> None:
    expected = expected_sha256(RECORDED_CALL, RECORDING_BYTES)

    link = on(stack, "recording", RECORDED_CALL, "--expires", "600", "--json").json()
    assert link["expires_in"] == 600 and link["size"] == RECORDING_BYTES
    assert "X-Amz-Expires=600" in link["url"]
    fetched = requests.get(link["url"], timeout=30)
    assert fetched.status_code == 200 and hashlib.sha256(fetched.content).hexdigest() == expected
    plain_link = on(stack, "recording", RECORDED_CALL)
    assert plain_link.out.strip().startswith("http") and len(plain_link.out.splitlines()) == 1

    saved = on(stack, "recording", RECORDED_CALL, "--download", str(tmp_path))
    assert saved.code == 0, saved.err
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [f"{RECORDED_CALL}.wav"]
    assert hashlib.sha256(files[0].read_bytes()).hexdigest() == expected

    # A call whose link was never copied, an unknown call, a bad lifetime.
    assert "recording status: not copied yet" in one_line_error(on(stack, "recording", WORKFLOW_CALL), 1)
    assert one_line_error(on(stack, "recording", "no-such-call"), 1) == "airudder-data: not found: call no-such-call"
    assert "expires_in" in one_line_error(on(stack, "recording", RECORDED_CALL, "--expires", "0"), 2)


# ---------------------------------------------------------------------------------------------- export


def day_events(inspector: Inspector, day: str) -> set[str]:
    return {str(i["event_id"]) for i in inspector.store().scan_events(day, day)}


def test_export_writes_every_event_of_the_days_in_each_format(
    stack: LocalStack, inspector: Inspector, ingested: Ingested, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    expected = day_events(inspector, "2025-04-15") | day_events(inspector, "2025-04-16")
    assert ingested.event_ids["workflow/call/completed.json"] in expected

    as_csv, as_jsonl, as_parquet = tmp_path / "e.csv", tmp_path / "e.jsonl", tmp_path / "e.parquet"
    days = ["--from", "2025-04-15", "--to", "2025-04-16"]
    for fmt, path in (("csv", as_csv), ("jsonl", as_jsonl), ("parquet", as_parquet)):
        run = on(stack, "export", *days, "--format", fmt, "--output", str(path))
        assert run.code == 0, run.err
        assert f"exported {len(expected)} events of 2025-04-15..2025-04-16" in run.err

    rows = list(csv.DictReader(as_csv.open(encoding="utf-8")))
    lines = [json.loads(line) for line in as_jsonl.read_text(encoding="utf-8").splitlines()]
    table = pq.read_table(as_parquet).to_pylist()
    for exported in (rows, lines, table):
        assert {r["event_id"] for r in exported} == expected
        assert len(exported) == len(expected)
    call = next(r for r in rows if r["event_id"] == ingested.event_ids["workflow/call/completed.json"])
    assert call["call_id"] == WORKFLOW_CALL and call["phone"] == "+6281298765432"
    assert call["body_encoding"] == "utf-8"
    assert json.loads(call["body"])["hangup_reason"] == "user_hangup"  # the body, as received
    assert not list(tmp_path.glob(".*partial"))

    one_type = on(stack, "export", "--day", "2025-04-15", "--type", "workflow.call", "--output", "-", "--quiet")
    exported_types = {r["webhook_type"] for r in csv.DictReader(io.StringIO(one_type.out))}
    assert exported_types == {"workflow.call"} and one_type.err == ""


def test_export_of_quarantined_deliveries(
    stack: LocalStack, inspector: Inspector, ingested: Ingested, tmp_path: Path
) -> None:
    quarantine = inspector.store().get_quarantine(ingested.invalid_quarantine_id)
    day = str(quarantine["received_at"])[:10]
    out = tmp_path / "q.jsonl"

    run = on(stack, "export", "--day", day, "--type", "quarantine", "--format", "jsonl", "--output", str(out))

    assert run.code == 0, run.err
    rows = {r["quarantine_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert {ingested.invalid_quarantine_id, ingested.oversized_quarantine_id} <= set(rows)
    assert rows[ingested.invalid_quarantine_id]["http_status"] == "400"
    assert rows[ingested.oversized_quarantine_id]["http_status"] == "413"


# ---------------------------------------------------------------------------------------------- replay


def snapshot(inspector: Inspector) -> tuple[list[Any], list[tuple[str, str]]]:
    """Every item of the table and every object version of the bucket."""
    items = [
        item
        for page in inspector.ddb.get_paginator("scan").paginate(TableName=inspector.table)
        for item in page["Items"]
    ]
    items.sort(key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
    versions = [
        (v["Key"], v["VersionId"])
        for page in inspector.s3.get_paginator("list_object_versions").paginate(Bucket=inspector.bucket)
        for v in page.get("Versions", [])
    ]
    return items, sorted(versions)


def raw_days(inspector: Inspector) -> list[str]:
    return sorted({key.split("/dt=")[1][:10] for key in inspector.keys("raw/")})


def raw_lines(inspector: Inspector) -> int:
    reader = ArchiveReader(inspector.bucket, inspector.s3)
    return sum(1 for key in inspector.keys("raw/") for _ in reader.lines(key))


def test_replaying_unchanged_data_changes_nothing(stack: LocalStack, inspector: Inspector, ingested: Ingested) -> None:
    before = snapshot(inspector)
    replayed = 0

    for day in raw_days(inspector):
        run = on(stack, "replay", "--day", day, "--json")
        assert run.code == 0, run.err
        counts = run.json()["counts"]
        assert set(counts) == {"unchanged"}, run.out
        replayed += counts["unchanged"]
    by_call = on(stack, "replay", "--call-id", WORKFLOW_CALL, "--json").json()

    assert replayed == raw_lines(inspector) == len(list(inspector.store().scan_events("0000", "9999")))
    assert by_call["counts"] == {"unchanged": 2}
    assert snapshot(inspector) == before


def test_replay_repairs_a_lost_state_and_then_changes_nothing(
    stack: LocalStack, inspector: Inspector, ingested: Ingested
) -> None:
    store = inspector.store()
    call = "c379e0b29c11e9d4141a5d275442e0d9"
    state = store.get_state("CALL", call)
    inspector.ddb.delete_item(
        TableName=inspector.table, Key={"pk": {"S": entity_key("CALL", call)}, "sk": {"S": STATE_SK}}
    )

    dry = on(stack, "replay", "--call-id", call, "--dry-run", "--json").json()
    assert dry["counts"] == {"would repair": 1} and store.get_state("CALL", call) is None

    repaired = on(stack, "replay", "--call-id", call, "--json").json()
    assert repaired["counts"] == {"repaired": 1}
    again = store.get_state("CALL", call)
    assert again is not None
    for name in ("last_event_id", "last_event_time", "status", "phone", "task_id", "workflow_id", "recording_url"):
        assert again.get(name) == state.get(name), name

    assert on(stack, "replay", "--call-id", call, "--json").json()["counts"] == {"unchanged": 1}


def test_replay_of_a_quarantined_delivery_stores_it_once(
    stack: LocalStack, inspector: Inspector, ingested: Ingested
) -> None:
    store = inspector.store()
    quarantine = store.get_quarantine(ingested.oversized_quarantine_id)

    run = on(stack, "replay", "--quarantine", ingested.oversized_quarantine_id, "--json")

    assert run.code == 0, run.err
    (result,) = run.json()["results"]
    assert result["outcome"] == "stored" and result["entity"] == entity_key("CALL", OVERSIZED_CALL)
    assert result["origin"] == f"table Q#{ingested.oversized_quarantine_id} Q"
    event = store.find_event(result["event_id"])
    assert event["source"] == "replay"
    assert event["received_at"] == quarantine["received_at"]  # the original receipt, not the replay's
    assert event["event_time"].startswith("2025-04-15")
    # A new event: the archiver archives it from the stream (nothing marks it as archived already).
    assert "in_archive" not in event
    assert json.loads(unpack_envelope(event["envelope"])["body"])["call_id"] == OVERSIZED_CALL
    assert store.get_quarantine(ingested.oversized_quarantine_id)["replayed_as"] == result["event_id"]
    shown = on(stack, "call", OVERSIZED_CALL, "--json").json()
    assert shown["state"]["last_source"] == "replay" and len(shown["events"]) == 1

    before = snapshot(inspector)
    repeat = on(stack, "replay", "--quarantine", ingested.oversized_quarantine_id, "--json").json()
    assert repeat["counts"] == {"unchanged": 1}
    assert snapshot(inspector) == before


def test_replay_from_the_archive_restores_an_event_missing_from_the_table(
    stack: LocalStack, inspector: Inspector, ingested: Ingested
) -> None:
    store = inspector.store()
    event_id = ingested.event_ids["workflow/list-completed/completed.json"]
    lost = store.find_event(event_id)
    day, webhook_type = str(lost["event_time"])[:10], str(lost["webhook_type"])
    inspector.ddb.delete_item(TableName=inspector.table, Key={"pk": {"S": lost["pk"]}, "sk": {"S": lost["sk"]}})

    run = on(stack, "replay", "--day", day, "--type", webhook_type, "--json")

    assert run.code == 0, run.err
    counts = run.json()["counts"]
    assert counts.pop("stored") == 1 and set(counts) <= {"unchanged"}
    (stored,) = [r for r in run.json()["results"] if r["outcome"] == "stored"]
    assert stored["event_id"] == event_id and stored["origin"].startswith(f"raw/type={webhook_type}/dt={day}/")
    restored = store.find_event(event_id)
    assert (restored["pk"], restored["sk"]) == (lost["pk"], lost["sk"])
    # Its line is in the archive already: marked so that the archiver does not write it a second time.
    assert restored["in_archive"] is True and restored["source"] == "replay"
    assert unpack_envelope(restored["envelope"])["body"] == unpack_envelope(lost["envelope"])["body"]
    again = on(stack, "replay", "--day", day, "--type", webhook_type, "--json").json()
    assert set(again["counts"]) == {"unchanged"}


def test_replay_of_a_body_the_models_still_reject(stack: LocalStack, ingested: Ingested) -> None:
    run = on(stack, "replay", "--quarantine", ingested.invalid_quarantine_id, "--json")

    assert run.code == 1
    (result,) = run.json()["results"]
    assert result["outcome"] == "invalid" and "not valid JSON" in result["detail"]
    assert "1 of them still cannot be read" in run.err
    assert one_line_error(on(stack, "replay", "--quarantine", "0" * 32), 1) == (
        f"airudder-data: not found: quarantined delivery {'0' * 32}"
    )


# ------------------------------------------------------------------------------ where the data is, errors


def test_a_stack_name_finds_the_table_bucket_and_settings(stack: LocalStack, ingested: Ingested) -> None:
    cloudformation = stack.boto3_client("cloudformation")
    template = {
        "Parameters": {"DefaultCountryCode": {"Type": "String", "Default": "62"}},
        "Resources": {
            "Marker": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": "cli", "Type": "String", "Value": "x"}}
        },
        "Outputs": {
            "EventsTableName": {"Value": stack.resources["EventsTable"]["Ref"]},
            "ArchiveBucketName": {"Value": stack.resources["ArchiveBucket"]["Ref"]},
        },
    }
    cloudformation.create_stack(StackName="cli-test-stack", TemplateBody=json.dumps(template))

    found = cli("call", WORKFLOW_CALL, "--stack", "cli-test-stack", "--endpoint-url", stack.moto_url, "--json")
    assert found.code == 0, found.err
    assert found.json()["state"]["status"] == "answered"
    # The stack's DefaultCountryCode (62) turns the national number into the E.164 one stored.
    national = cli("phone", "081234567890", "--stack", "cli-test-stack", "--endpoint-url", stack.moto_url, "--json")
    assert national.json()["phone"] == DIALER_PHONE and len(national.json()["events"]) == 2
    # Options may also come before the command.
    before = cli("--endpoint-url", stack.moto_url, "--stack", "cli-test-stack", "--json", "task", DIALER_TASK)
    assert before.code == 0 and before.json()["task_id"] == DIALER_TASK


def test_clear_errors(stack: LocalStack, ingested: Ingested) -> None:
    endpoint = ["--endpoint-url", stack.moto_url]
    missing_stack = one_line_error(cli("call", WORKFLOW_CALL, "--stack", "no-such-stack", *endpoint), 2)
    wrong_table = one_line_error(cli("call", WORKFLOW_CALL, "--table", "no-such-table", *endpoint), 2)
    unknown_call = one_line_error(on(stack, "call", "no-such-call"), 1)
    no_target = one_line_error(cli("call", WORKFLOW_CALL, *endpoint), 2)

    assert missing_stack == "airudder-data: stack 'no-such-stack' not found in this account and region"
    assert wrong_table == "airudder-data: table 'no-such-table' not found in us-east-1 (check --table or --stack)"
    assert unknown_call == "airudder-data: not found: call no-such-call"
    assert no_target.startswith("airudder-data: which stack?")


def without_credentials() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


def command() -> list[str]:
    """The installed console script (`pip install -e .`, done by the Makefile's venv bootstrap)."""
    script = Path(sys.executable).with_name("airudder-data")
    assert script.exists(), "airudder-data is not installed: run `make venv` (pip install -e .)"
    return [str(script)]


def test_no_credentials_is_one_line(stack: LocalStack, ingested: Ingested) -> None:
    done = subprocess.run(
        [*command(), "call", WORKFLOW_CALL, *cli_local(stack)],
        env=without_credentials(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2, done
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "airudder-data: no AWS credentials: use a profile (--profile; aws configure or aws sso login)"
        " or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    ]


@pytest.mark.parametrize(
    "name", ["", "call", "phone", "case", "workflow", "task", "recording", "export", "replay", "unreadable"]
)
def test_every_command_has_help(name: str) -> None:
    done = subprocess.run(
        [*command(), *([name] if name else []), "--help"], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: airudder-data") and "--stack" in done.stdout
