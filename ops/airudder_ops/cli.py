"""airudder-data: the teams' command line over what the stack stored (query, recordings, export, replay).

    airudder-data call CALL_ID --stack airudder-prod
    airudder-data phone +6281234567890 --since 2025-04-01 --table T
    airudder-data export --from 2025-04-01 --to 2025-04-30 --format csv --output april.csv --stack S
    airudder-data replay --quarantine 3f2a... --stack S
    airudder-data unreadable --day 2025-04-16 --type chatbot.message_status --stack S --json
    airudder-data call CALL_ID --endpoint-url http://127.0.0.1:5000 --table airudder-local-EventsTable

Where the data is: `--stack NAME` reads the table, bucket and queue from the CloudFormation stack's
outputs (and the settings the functions run with from its parameters); or `--table`/`--bucket` name
them. Credentials and region are boto3's usual ones (`--profile`, `--region`, environment, SSO...).
`--endpoint-url` points every client at another endpoint (the local moto server of `make serve`).

Every read goes through store.py and archive.py, every write of `replay` through the event recorder
(recorder.py): this module knows no DynamoDB key and no S3 key. Lookups read the table (an event's body
from the envelope packed on its item); export, unreadable and replay by day read the archive.

Exit codes: 0 done; 1 not found (or deliveries that still cannot be replayed); 2 a usage,
configuration or AWS error, told in one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from airudder_ingest.base.events import iso_utc, normalise_phone, to_utc
from airudder_ingest.storage.archive import (
    QUARANTINE_PREFIX,
    RAW_PREFIX,
    ArchiveReader,
    ClaimChecks,
    event_body,
    unpack_envelope,
)
from airudder_ingest.storage.store import EventStore
from airudder_ops.export import (
    EVENT_COLUMNS,
    FORMATS,
    QUARANTINE_COLUMNS,
    ExportError,
    Progress,
    export_rows,
    json_text,
    plain,
    terminal_safe,
    write_export,
)

if TYPE_CHECKING:
    from airudder_ops.replay import Delivery, Replayer, ReplayResult, ReplaySummary

PROG = "airudder-data"
EXIT_OK, EXIT_NOT_FOUND, EXIT_ERROR = 0, 1, 2
LOCAL_REGION = "us-east-1"
# Stack outputs (template.yaml) and the logical ids to fall back on when a stack lacks the outputs.
STACK_OUTPUTS = {"table": "EventsTableName", "bucket": "ArchiveBucketName", "queue_url": "RecordingsQueueUrl"}
STACK_RESOURCES = {"table": "EventsTable", "bucket": "ArchiveBucket", "queue_url": "RecordingsQueue"}
# Template parameters that change how a body is read (the functions get them as environment variables).
STACK_SETTINGS = {
    "DefaultCountryCode": "DEFAULT_COUNTRY_CODE",
    "NaiveTimeOffset": "NAIVE_TIME_OFFSET",
    "PayloadDecryption": "PAYLOAD_DECRYPTION",
}
# Environment variables of the functions' settings that the CLI honours too (IngestSettings aliases).
SETTING_VARIABLES = (
    "DEFAULT_COUNTRY_CODE",
    "NAIVE_TIME_OFFSET",
    "PAYLOAD_DECRYPTION",
    "PARENT_INDEX_SHARDS",
)


class CliError(Exception):
    """A usage, configuration or AWS error: one line on stderr, exit code 2."""


class NotFound(Exception):
    """What was asked for is not there: one line on stderr, exit code 1."""


# ---------------------------------------------------------------------------------------------- where the data is


@dataclass
class Target:
    table: str | None = None
    bucket: str | None = None
    queue_url: str | None = None
    settings: dict[str, str] = field(default_factory=dict)  # IngestSettings aliases -> values
    stack: str | None = None


class Context:
    """The AWS session and the store/archive of one invocation, made on first use."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._target: Target | None = None
        self._store: EventStore | None = None

    # -- AWS

    @property
    def session(self) -> Any:
        if self._session is None:
            import boto3
            from botocore.exceptions import ProfileNotFound

            region = self.args.region
            if not region and self.args.endpoint_url and not _configured_region():
                region = LOCAL_REGION  # a local endpoint does not care; spare the user the flag
            try:
                self._session = boto3.session.Session(profile_name=self.args.profile, region_name=region)
            except ProfileNotFound as exc:
                raise CliError(str(exc)) from None
        return self._session

    @property
    def region(self) -> str:
        return str(self.session.region_name or "?")

    def client(self, service: str, **config: Any) -> Any:
        cache_key = f"{service}:{sorted(config.items())}"
        if cache_key not in self._clients:
            from botocore.config import Config
            from botocore.exceptions import NoRegionError

            options = Config(
                retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60, **config
            )
            try:
                self._clients[cache_key] = self.session.client(
                    service, endpoint_url=self.args.endpoint_url, config=options
                )
            except NoRegionError:
                raise CliError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION") from None
        return self._clients[cache_key]

    # -- the stack's resources

    @property
    def target(self) -> Target:
        if self._target is None:
            self._target = self._resolve()
        return self._target

    def _resolve(self) -> Target:
        args = self.args
        target = Target(settings={k: os.environ[k] for k in SETTING_VARIABLES if k in os.environ})
        if args.stack:
            target = _stack_target(self.client("cloudformation"), args.stack, target.settings)
        if args.table:
            target.table = args.table
        if args.bucket:
            target.bucket = args.bucket
        if getattr(args, "queue_url", None):
            target.queue_url = args.queue_url
        if not target.table and not target.bucket:
            raise CliError("which stack? pass --stack NAME, or --table NAME (and --bucket NAME)")
        return target

    @property
    def store(self) -> EventStore:
        if self._store is None:
            if not self.target.table:
                raise CliError("this command reads the events table: pass --stack NAME or --table NAME")
            settings = self.ingest_settings()
            self._store = EventStore(self.target.table, self.client("dynamodb"), parent_shards=settings.parent_shards)
        return self._store

    def bucket(self) -> str:
        if not self.target.bucket:
            raise CliError("this command reads the archive bucket: pass --stack NAME or --bucket NAME")
        return self.target.bucket

    def archive(self) -> ArchiveReader:
        return ArchiveReader(self.bucket(), self.client("s3"))

    def claims(self) -> ClaimChecks:
        return ClaimChecks(self.bucket(), self.client("s3"))

    def envelope(self, item: Mapping[str, Any]) -> dict[str, Any] | None:
        """The unpacked envelope of an event or quarantine item: packed on the item, or its claim check in
        S3 (None when the item has neither, or the claim check needs a bucket nobody named)."""
        if isinstance(item.get("envelope"), bytes | bytearray):
            return unpack_envelope(bytes(item["envelope"]))
        if item.get("envelope_key") and self.target.bucket:
            return unpack_envelope(self.claims().get(str(item["envelope_key"])))
        return None

    def readable(self, item: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """An item for --json: numbers as numbers; for an event, the body it was read from (`body`, as
        JSON when it is JSON) instead of the packed envelope."""
        if item is None:
            return None
        envelope = self.envelope(item)
        out = {k: plain(v) for k, v in item.items() if k != "envelope"}
        if envelope is not None:
            out["body"] = shown_body(envelope)
        return out

    def body(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON object an event was read from ({} when it is not one)."""
        envelope = self.envelope(item)
        text = event_body(envelope) if envelope is not None else None
        if text is None:
            return {}
        try:
            value = json.loads(text)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def ingest_settings(self) -> Any:
        from pydantic import ValidationError

        from airudder_ingest.base.settings import IngestSettings

        values = {
            **self.target.settings,
            "EVENTS_TABLE": self.target.table or "",
            "ARCHIVE_BUCKET": self.target.bucket or "",
            "RECORDINGS_QUEUE_URL": self.target.queue_url or "",
            "WEBHOOK_TOKEN_SECRET": "",  # never used: a replay checks no token
        }
        try:
            return IngestSettings.model_validate(values)
        except ValidationError as exc:
            problem = exc.errors(include_url=False)[0]
            raise CliError(f"bad setting {'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}") from None

    def describe(self) -> str:
        where = f"stack {self.target.stack}" if self.target.stack else f"table {self.target.table}"
        return f"{where} ({self.region}{', ' + self.args.endpoint_url if self.args.endpoint_url else ''})"


def _configured_region() -> bool:
    return bool(os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))


def _describe_stack(cloudformation: Any, name: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if _error_code(exc) == "ValidationError" and "does not exist" in _error_message(exc):
            raise CliError(f"stack {name!r} not found in this account and region") from None
        raise
    if not stacks:
        raise CliError(f"stack {name!r} not found in this account and region")
    return dict(stacks[0])


def _stack_target(cloudformation: Any, name: str, settings: dict[str, str]) -> Target:
    stack = _describe_stack(cloudformation, name)
    outputs = {o["OutputKey"]: o.get("OutputValue") for o in stack.get("Outputs") or []}
    target = Target(stack=name, settings=dict(settings))
    for attribute, output in STACK_OUTPUTS.items():
        value = outputs.get(output) or _stack_resource(cloudformation, name, STACK_RESOURCES[attribute])
        setattr(target, attribute, value)
    target.settings.update(_stack_settings(stack))
    if not target.table:
        raise CliError(f"stack {name!r} has no EventsTable (status {stack.get('StackStatus', '?')})")
    return target


def _stack_settings(stack: Mapping[str, Any]) -> dict[str, str]:
    """The settings the stack's parameters hold (STACK_SETTINGS), by environment variable."""
    found: dict[str, str] = {}
    for parameter in stack.get("Parameters") or []:
        variable = STACK_SETTINGS.get(parameter.get("ParameterKey", ""))
        if variable:
            found[variable] = parameter.get("ResolvedValue") or parameter.get("ParameterValue") or ""
    return found


def _stack_resource(cloudformation: Any, stack: str, logical_id: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        detail = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)
    except ClientError:
        return None
    return detail.get("StackResourceDetail", {}).get("PhysicalResourceId")


# ---------------------------------------------------------------------------------------------- output


class Output:
    """What a command prints. Values come from AIRUDDER's bodies, so nothing in them reaches the terminal
    as a control character: tables and lines show them escaped (`\\x1b`), JSON as \\u escapes."""

    def __init__(self, as_json: bool, stream: TextIO | None = None) -> None:
        self.as_json = as_json
        self.stream = stream or sys.stdout

    def json(self, value: Any) -> None:
        self.stream.write(json_text(value, indent=2, default=_json_default) + "\n")

    def line(self, text: str = "") -> None:
        self.stream.write(terminal_safe(text) + "\n")

    def fields(self, pairs: Iterable[tuple[str, Any]]) -> None:
        shown = [(k, _text(v)) for k, v in pairs if v not in (None, "")]
        width = max((len(k) for k, _ in shown), default=0)
        for key, value in shown:
            self.line(f"{key.ljust(width)}  {value}")

    # complexity: one table layout, whose comprehensions over rows and columns radon counts one by one
    def table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]], title: str = "") -> None:
        if title:
            self.line()
            self.line(f"{title} ({len(rows)})")
        if not rows:
            self.line("  (none)")
            return
        cells = [[_text(row.get(key), limit=60) for key, _ in columns] for row in rows]
        widths = [max(len(header), *(len(r[i]) for r in cells)) for i, (_, header) in enumerate(columns)]
        self.line("  ".join(header.ljust(widths[i]) for i, (_, header) in enumerate(columns)).rstrip())
        self.line("  ".join("-" * w for w in widths))
        for row_cells in cells:
            self.line("  ".join(c.ljust(widths[i]) for i, c in enumerate(row_cells)).rstrip())


def _json_default(value: Any) -> Any:
    converted = plain(value)
    if converted is value:
        return str(value)
    return converted


def _text(value: Any, limit: int | None = None) -> str:
    value = plain(value)
    if value is None:
        return ""
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
    text = terminal_safe(text.replace("\n", " "))  # escaped before measuring: the columns stay aligned
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def shown_body(record: Mapping[str, Any]) -> Any:
    """The body of an unpacked envelope or an archive line for --json: the JSON it was read from (the
    decrypted body on encrypted routes), or the text as received when it is not JSON (base64 when it
    was not UTF-8: `body_encoding` says so)."""
    text = event_body(record)
    if text is None:
        return record.get("body")
    with contextlib.suppress(ValueError):
        return json.loads(text)
    return text


def readable_line(line: Mapping[str, Any]) -> dict[str, Any]:
    """An archive line for --json, its body as JSON when it is JSON."""
    return {**line, "body": shown_body(line)}


EVENT_TABLE = [
    ("event_time", "event time"),
    ("webhook_type", "type"),
    ("status", "status"),
    ("entity_kind", "kind"),
    ("entity_id", "entity"),
    ("source", "source"),
    ("event_id", "event id"),
]
MEMBER_TABLE = [
    ("entity_kind", "kind"),
    ("entity_id", "id"),
    ("status", "status"),
    ("phone", "phone"),
    ("case_id", "case"),
    ("nodetask_id", "node task"),
    ("last_event_time", "last event"),
    ("recording_status", "recording"),
]


# ---------------------------------------------------------------------------------------------- time arguments


def day_arg(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {text!r}") from None


def time_bound(text: str) -> str:
    """A --since/--until value as the store sorts times: a day stays a day (as a bound it covers the
    whole day), anything else becomes ISO-8601 UTC (times without a zone are UTC)."""
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    try:
        moment = to_utc(text)
    except ValueError:
        moment = None
    if moment is None:
        raise argparse.ArgumentTypeError(f"not a day or a time: {text!r}")
    return iso_utc(moment)


def days_between(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    if end < start:
        raise CliError(f"--to {last} is before --from {first}")
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


# ---------------------------------------------------------------------------------------------- commands


def cmd_call(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    store = ctx.store
    state = store.get_state("CALL", args.call_id)
    events = list(store.entity_events("CALL", args.call_id, newest_first=False))
    if state is None and not events:
        raise NotFound(f"call {args.call_id}")
    if out.as_json:
        out.json({"call_id": args.call_id, "state": ctx.readable(state), "events": [ctx.readable(e) for e in events]})
        return EXIT_OK
    s = state or {}
    out.line(f"call {args.call_id}")
    out.fields(
        [
            ("status", s.get("status")),
            ("last event", f"{_text(s.get('last_event_time'))} {_text(s.get('last_webhook_type'))}".strip()),
            ("phone", s.get("phone")),
            ("case", s.get("case_id")),
            ("workflow", s.get("workflow_id")),
            ("node task", s.get("nodetask_id")),
            ("task", s.get("task_id")),
            ("recording", _recording_text(s)),
        ]
    )
    out.table(events, EVENT_TABLE, "events, oldest first")
    return EXIT_OK


def _recording_text(state: Mapping[str, Any]) -> str | None:
    status = state.get("recording_status")
    if status == "archived":
        return f"archived s3://…/{state.get('recording_s3_key')} ({_text(state.get('recording_size'))} bytes)"
    if status:
        return f"{status}{': ' + _text(state.get('recording_error')) if state.get('recording_error') else ''}"
    return "link received, not copied yet" if state.get("recording_url") else None


def cmd_phone(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    settings = ctx.ingest_settings()
    phone = normalise_phone(args.phone, settings.default_country_code) or args.phone
    limit = args.limit or None
    events = list(ctx.store.phone_events(phone, start=args.since, end=args.until, newest_first=True, limit=limit))
    if not events:
        raise NotFound(f"events for phone {phone}{_window_text(args)}")
    if out.as_json:
        out.json(
            {"phone": phone, "since": args.since, "until": args.until, "events": [ctx.readable(e) for e in events]}
        )
        return EXIT_OK
    out.line(f"phone {phone}{_window_text(args)}")
    columns = [*EVENT_TABLE[:3], ("call_id", "call"), ("case_id", "case"), *EVENT_TABLE[5:]]
    more = f"; the first {limit}, --limit 0 for all" if limit and len(events) >= limit else ""
    out.table(events, columns, f"events, newest first{more}")
    return EXIT_OK


def _window_text(args: argparse.Namespace) -> str:
    parts = [f"since {args.since}" if args.since else "", f"until {args.until}" if args.until else ""]
    text = " ".join(p for p in parts if p)
    return f" ({text})" if text else ""


def cmd_case(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    store = ctx.store
    state = store.get_state("CASE", args.case_id)
    events = list(store.case_events(args.case_id, newest_first=False))
    if state is None and not events:
        raise NotFound(f"case {args.case_id}")
    if out.as_json:
        out.json({"case_id": args.case_id, "state": ctx.readable(state), "events": [ctx.readable(e) for e in events]})
        return EXIT_OK
    s = state or {}
    out.line(f"case {args.case_id}")
    out.fields(
        [
            ("status", s.get("status")),
            ("last event", f"{_text(s.get('last_event_time'))} {_text(s.get('last_webhook_type'))}".strip()),
            ("phone", s.get("phone")),
            ("workflow", s.get("workflow_id")),
        ]
    )
    columns = [*EVENT_TABLE[:3], ("call_id", "call"), ("phone", "phone"), *EVENT_TABLE[5:]]
    out.table(events, columns, "events, oldest first")
    return EXIT_OK


def _newest_status_body(ctx: Context, workflow_id: str) -> dict[str, Any]:
    """The body of the workflow's newest status-change notification (its envelope), whose `actions` are
    the node tasks; {} when there is none."""
    from airudder_ingest.models.workflow import WorkflowStatusChanged

    for event in ctx.store.entity_events("WORKFLOW", workflow_id, newest_first=True):
        if event.get("webhook_type") == WorkflowStatusChanged.webhook_type:
            return ctx.body(event)
    return {}


def cmd_workflow(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    store = ctx.store
    workflow_id = args.workflow_id
    state = store.get_state("WORKFLOW", workflow_id)
    members = [m for m in store.workflow_members(workflow_id) if m.get("entity_kind") != "WORKFLOW"]
    if state is None and not members:
        raise NotFound(f"workflow {workflow_id}")
    status_body = _newest_status_body(ctx, workflow_id)
    actions = [a for a in status_body.get("actions") or [] if isinstance(a, dict)]
    nodes = _node_tasks(actions, members)
    if out.as_json:
        out.json(
            {
                "workflow_id": workflow_id,
                "workflow_name": status_body.get("workflow_name"),
                "state": ctx.readable(state),
                "node_tasks": nodes,
                "members": list(map(ctx.readable, members)),
            }
        )
        return EXIT_OK
    s = state or {}
    out.line(f"workflow {workflow_id}")
    out.fields(
        [
            ("name", status_body.get("workflow_name")),
            ("status", s.get("status")),
            ("last event", f"{_text(s.get('last_event_time'))} {_text(s.get('last_webhook_type'))}".strip()),
        ]
    )
    out.table(
        nodes,
        [
            ("nodetask_id", "node task"),
            ("nodetask_name", "name"),
            ("node_type", "type"),
            ("task_id", "task"),
            ("task_status", "task status"),
            ("calls", "calls"),
            ("results", "call results"),
        ],
        "node tasks",
    )
    out.table(members, MEMBER_TABLE, "calls, cases and tasks in the workflow")
    return EXIT_OK


def _node_tasks(actions: list[dict[str, Any]], members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The status change's node tasks, each with the calls filed under it and their results."""
    calls = [m for m in members if m.get("entity_kind") == "CALL"]
    nodes: list[dict[str, Any]] = []
    seen: set[str] = set()
    for action in actions:
        node_id = str(action.get("nodetask_id") or "")
        seen.add(node_id)
        mine = _node_calls(calls, node_id, action.get("task_id"))
        nodes.append({**{k: plain(v) for k, v in action.items()}, "calls": len(mine), "results": _results(mine)})
    others = [c for c in calls if str(c.get("nodetask_id") or "") not in seen]
    if others:
        nodes.append({"nodetask_id": "(other)", "calls": len(others), "results": _results(others)})
    return nodes


def _node_calls(calls: list[dict[str, Any]], node_id: str, task_id: Any) -> list[dict[str, Any]]:
    """The calls filed under a node task: by its id, or by the outbound task it ran."""
    return [c for c in calls if c.get("nodetask_id") == node_id or (task_id and c.get("task_id") == task_id)]


def _results(calls: list[dict[str, Any]]) -> str:
    counts = Counter(str(c.get("status") or "?") for c in calls)
    return ", ".join(f"{status} {n}" for status, n in counts.most_common())


def _by_kind(members: list[dict[str, Any]], *kinds: str) -> list[list[dict[str, Any]]]:
    """The members of each of `kinds`, then the others."""
    groups: dict[str, list[dict[str, Any]]] = {kind: [] for kind in (*kinds, "")}
    for member in members:
        kind = str(member.get("entity_kind") or "")
        groups[kind if kind in kinds else ""].append(member)
    return list(groups.values())


def cmd_task(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    store = ctx.store
    task_id = args.task_id
    state = store.get_state("DTASK", task_id) or store.get_state("TASK", task_id)
    members = [m for m in store.task_members(task_id) if m.get("entity_kind") not in ("DTASK", "TASK")]
    if state is None and not members:
        raise NotFound(f"task {task_id}")
    calls, agents, others = _by_kind(members, "CALL", "AGENT")
    if out.as_json:
        out.json(
            {
                "task_id": task_id,
                "state": ctx.readable(state),
                "calls": list(map(ctx.readable, calls)),
                "agents": list(map(ctx.readable, agents)),
                "others": list(map(ctx.readable, others)),
            }
        )
        return EXIT_OK
    _print_task(out, task_id, state or {}, calls, agents, others)
    return EXIT_OK


def _print_task(
    out: Output,
    task_id: str,
    s: Mapping[str, Any],
    calls: list[dict[str, Any]],
    agents: list[dict[str, Any]],
    others: list[dict[str, Any]],
) -> None:
    out.line(f"task {task_id}")
    out.fields(
        [
            ("kind", s.get("entity_kind")),
            ("status", s.get("status")),
            ("last event", f"{_text(s.get('last_event_time'))} {_text(s.get('last_webhook_type'))}".strip()),
            ("workflow", s.get("workflow_id")),
            ("node task", s.get("nodetask_id")),
            ("call results", _results(calls) or None),
        ]
    )
    out.table(calls, MEMBER_TABLE[1:], "calls")
    out.table(
        agents,
        [("entity_id", "agent"), ("status", "status"), ("call_id", "last call"), ("last_event_time", "last event")],
        "agents",
    )
    if others:
        out.table(others, MEMBER_TABLE, "others")


def cmd_recording(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from airudder_ingest.recordings.copier import presigned_recording_url

    store = ctx.store
    if store.get_state("CALL", args.call_id) is None:
        raise NotFound(f"call {args.call_id}")
    recording = store.recording_state(args.call_id)
    if recording.get("recording_status") != "archived":
        status = recording.get("recording_status") or ("not copied yet" if recording.get("recording_url") else "none")
        raise NotFound(f"archived recording of call {args.call_id} (recording status: {status})")
    bucket = ctx.bucket()
    key = str(recording.get("recording_s3_key"))
    if args.download:
        return _download(ctx, args, out, bucket, key, recording)
    try:
        url = presigned_recording_url(
            store, ctx.client("s3", signature_version="s3v4"), bucket, args.call_id, expires_in=args.expires
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if url is None:  # the recording changed between the two reads
        raise NotFound(f"archived recording of call {args.call_id}")
    if out.as_json:
        out.json(
            {
                "call_id": args.call_id,
                "url": url,
                "expires_in": args.expires,
                "s3_key": key,
                "size": plain(recording.get("recording_size")),
                "content_type": recording.get("recording_content_type"),
            }
        )
    else:
        out.line(url)
    return EXIT_OK


def _download(
    ctx: Context, args: argparse.Namespace, out: Output, bucket: str, key: str, recording: Mapping[str, Any]
) -> int:
    target = Path(args.download)
    if target.is_dir():
        target = target / key.rsplit("/", 1)[-1]
    partial = target.with_name(f".{target.name}.partial")
    digest = hashlib.sha256()
    size = 0
    try:
        body = ctx.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
        with partial.open("wb") as stream:
            for chunk in iter(lambda: body.read(1024 * 1024), b""):
                stream.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        expected = recording.get("recording_sha256")
        if expected and expected != digest.hexdigest():
            raise CliError(f"download of {key} does not match its recorded SHA-256; nothing written")
        os.replace(partial, target)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        if partial.exists():
            partial.unlink()
    if out.as_json:
        out.json({"call_id": args.call_id, "path": str(target), "size": size, "sha256": digest.hexdigest()})
    else:
        out.line(f"{target} ({size:,} bytes, sha256 {digest.hexdigest()})")
    return EXIT_OK


def cmd_export(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    days = [args.day] if args.day else days_between(args.date_from, args.date_to)
    quarantined = args.type == "quarantine"
    archive = ctx.archive()
    progress = Progress("exported", quiet=args.quiet)
    area, webhook_type = (QUARANTINE_PREFIX, None) if quarantined else (RAW_PREFIX, args.type)
    rows = export_rows(
        days,
        lambda day: archive.day_lines(day, webhook_type, area),
        quarantined=quarantined,
    )
    try:
        count = write_export(
            rows,
            fmt=args.format,
            output=args.output,
            columns=QUARANTINE_COLUMNS if quarantined else EVENT_COLUMNS,
            progress=progress,
        )
    except ExportError as exc:
        raise CliError(str(exc)) from None
    span = days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"
    what = "quarantined deliveries" if quarantined else f"{args.type + ' ' if args.type else ''}events"
    progress.done(f"exported {count:,} {what} of {span} to {args.output}")
    if args.json and args.output != "-":
        out.json({"rows": count, "days": days, "type": args.type, "format": args.format, "output": args.output})
    return EXIT_OK


UNREADABLE_TABLE = [
    *EVENT_TABLE[:2],
    ("unreadable", "unreadable"),
    *EVENT_TABLE[3:5],
    ("phone", "phone"),
    EVENT_TABLE[6],
]


def cmd_unreadable(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    """Events stored with facts their model could not read (`unreadable`), day by day: the archive lines
    of those days that carry `unreadable` (one pass over the days' objects)."""
    days = [args.day] if args.day else days_between(args.date_from, args.date_to)
    archive = ctx.archive()
    events = [line for day in days for line in archive.day_lines(day, args.type) if line.get("unreadable")]
    events.sort(key=lambda e: (str(e.get("event_time")), str(e.get("event_id"))))
    span = days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"
    if out.as_json:
        out.json({"days": days, "type": args.type, "events": [readable_line(e) for e in events]})
        return EXIT_OK
    out.line(f"events of {span}{' of type ' + args.type if args.type else ''} with facts that could not be read")
    out.table(_unreadable_rows(events), UNREADABLE_TABLE, "events, oldest first")
    return EXIT_OK


def _unreadable_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e | {"unreadable": ", ".join(map(str, e.get("unreadable") or []))} for e in events]


def cmd_replay(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    from airudder_ops.replay import ReplaySummary

    replayer = _replayer(ctx, dry_run=args.dry_run)
    deliveries, scope = _deliveries_to_replay(replayer, args)
    summary = ReplaySummary()
    results: list[ReplayResult] = []
    progress = Progress("replayed", quiet=args.quiet)
    for delivery in deliveries:
        result = replayer.replay(delivery)
        summary.add(result)
        if out.as_json or result.outcome != "unchanged":
            results.append(result)
        progress.step()
    if summary.total == 0:
        raise NotFound(scope)
    progress.done(f"replayed {summary.total:,} {scope}")
    if out.as_json:
        out.json(
            {
                "scope": scope,
                "dry_run": args.dry_run,
                "counts": summary.counts,
                "results": [r.as_dict() for r in results],
            }
        )
    else:
        _print_replay(out, scope, args.dry_run, summary, results)
    invalid = summary.counts.get("invalid", 0)
    if invalid:
        print(f"{PROG}: replayed {summary.total}; {invalid} of them still cannot be read", file=sys.stderr)
        return EXIT_NOT_FOUND
    return EXIT_OK


def _deliveries_to_replay(replayer: Replayer, args: argparse.Namespace) -> tuple[Iterable[Delivery], str]:
    """The deliveries a replay command names (a call's, one quarantined, or a day's), and how to say so."""
    if args.call_id:
        deliveries = replayer.call_deliveries(args.call_id)
        if not deliveries:
            raise NotFound(f"call {args.call_id}")
        return deliveries, f"call {args.call_id}"
    if args.quarantine:
        found = replayer.quarantine_delivery(args.quarantine)
        if found is None:
            raise NotFound(f"quarantined delivery {args.quarantine}")
        return [found], f"quarantined delivery {args.quarantine}"
    area = "quarantined" if args.quarantined else "archived"
    scope = f"{area} {args.type + ' ' if args.type else ''}deliveries of {args.day}"
    return replayer.day_deliveries(args.day, args.type, quarantined=args.quarantined), scope


def _print_replay(
    out: Output, scope: str, dry_run: bool, summary: ReplaySummary, results: Sequence[ReplayResult]
) -> None:
    out.line(f"replay of {scope}{' (dry run: nothing written)' if dry_run else ''}")
    out.fields((outcome, f"{n:,}") for outcome, n in sorted(summary.counts.items()))
    out.table(
        [r.as_dict() | {"differs": ", ".join(r.differs)} for r in results],
        [
            ("outcome", "outcome"),
            ("webhook_type", "type"),
            ("event_id", "event id"),
            ("entity", "entity"),
            ("differs", "model reads differently"),
            ("detail", "detail"),
            ("origin", "read from"),
        ],
        "deliveries not unchanged",
    )


def _replayer(ctx: Context, *, dry_run: bool) -> Replayer:
    from airudder_ingest.edge.decryption import PayloadDecryption
    from airudder_ingest.record.recorder import EventRecorder
    from airudder_ingest.record.recording_queue import RecordingQueue
    from airudder_ops.replay import Replayer

    settings = ctx.ingest_settings()
    recordings = RecordingQueue(ctx.target.queue_url, ctx.client("sqs")) if ctx.target.queue_url else None
    recorder = EventRecorder(settings, ctx.store, ctx.claims(), recordings)
    # Decryption keys are read with this command's credentials and endpoint.
    decryption = PayloadDecryption.from_json(settings.payload_decryption, fetch=_secret_fetcher(ctx))
    return Replayer(recorder, ctx.archive(), decryption, dry_run=dry_run)


def _secret_fetcher(ctx: Context) -> Callable[[str, int, bool], Any]:
    def fetch(name: str, max_age: int, force: bool) -> Any:
        return ctx.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]

    return fetch


def cmd_rebuild_archive(ctx: Context, args: argparse.Namespace, out: Output) -> int:
    """The archive's missing lines of a day range written again from the table (archive_rebuild.py)."""
    from datetime import UTC, datetime

    from airudder_ops.archive_rebuild import rebuild_archive

    days = days_between(args.date_from, args.date_to)
    settled = iso_utc(datetime.now(UTC) - timedelta(minutes=args.settle_minutes)) if args.settle_minutes > 0 else None
    report = rebuild_archive(
        ctx.store, ctx.bucket(), ctx.client("s3"), days[0], days[-1], dry_run=args.dry_run, settled_before=settled
    )
    if out.as_json:
        out.json(report.as_dict())
        return EXIT_OK
    span = days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"
    rows = [p.as_dict() | {"folder": f"{p.area}/type={p.webhook_type}/dt={p.day}"} for p in report.places]
    columns = [("folder", "folder"), ("in_table", "in table"), ("in_archive", "in archive"), ("missing", "missing"),
               ("key", "written")]  # fmt: skip
    out.table(rows, columns, f"archive of {span} against the table")
    verb = "would write" if args.dry_run else "wrote"
    out.line(f"{report.missing:,} missing lines; {verb} {len([p for p in report.places if p.missing])} objects")
    if report.unsettled:
        out.line(f"{report.unsettled:,} items received in the last {args.settle_minutes} minutes left to the archiver")
    for problem in report.unarchivable:
        out.line(f"cannot be archived: {problem['id']}: {problem['reason']}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------- arguments


def _connection_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The options every command takes; on the subcommands with SUPPRESS defaults, so that they may
    stand before or after the command without one place resetting the other."""
    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("where the data is")
    group.add_argument(
        "--stack",
        metavar="NAME",
        default=default,
        help="CloudFormation stack: table, bucket and queue from its outputs",
    )
    group.add_argument(
        "--table", metavar="NAME", default=default, help="the events table (instead of, or over, --stack)"
    )
    group.add_argument(
        "--bucket", metavar="NAME", default=default, help="the archive bucket (recording, export, unreadable, replay)"
    )
    group.add_argument("--region", default=default, help="AWS region (default: the profile's or AWS_REGION)")
    group.add_argument("--profile", default=default, help="AWS profile of the shared config/credentials files")
    group.add_argument(
        "--endpoint-url",
        metavar="URL",
        default=default,
        help="send every AWS call there, e.g. http://127.0.0.1:5000 for `make serve`",
    )
    group.add_argument("--json", action="store_true", default=default, help="print JSON instead of a table")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Query, export and replay the AIRUDDER webhooks the stack stored.",
        epilog="Exit codes: 0 done, 1 not found, 2 usage/configuration/AWS error."
        " `%(prog)s COMMAND --help` tells more about each command.",
    )
    _connection_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        name: str, help_text: str, run: Callable[[Context, argparse.Namespace, Output], int]
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _connection_options(sub, suppress=True)
        sub.set_defaults(run=run)
        return sub

    sub = command("call", "a call's current state and its event history", cmd_call)
    sub.add_argument("call_id", metavar="CALL_ID")

    sub = command("phone", "every event about a phone number, newest first", cmd_phone)
    sub.add_argument("phone", metavar="E164", help="the number, e.g. +6281234567890 (normalised as the stack does)")
    sub.add_argument("--since", type=time_bound, help="day (YYYY-MM-DD) or time (ISO-8601) of the oldest event")
    sub.add_argument("--until", type=time_bound, help="day or time of the newest event (a day counts whole)")
    sub.add_argument("--limit", type=int, default=200, help="at most this many events (0: all; default 200)")

    sub = command("case", "a case's state and every event about it", cmd_case)
    sub.add_argument("case_id", metavar="CASE_ID")

    sub = command(
        "workflow", "a workflow: status, node tasks, and its calls and cases with their results", cmd_workflow
    )
    sub.add_argument("workflow_id", metavar="WORKFLOW_ID")

    sub = command("task", "a dialer (or campaign, WABA) task with its calls and agents", cmd_task)
    sub.add_argument("task_id", metavar="TASK_ID")

    sub = command("recording", "a time-limited link to a call's archived recording, or the file", cmd_recording)
    sub.add_argument("call_id", metavar="CALL_ID")
    sub.add_argument("--download", metavar="PATH", help="save the recording there (a directory: under its own name)")
    sub.add_argument(
        "--expires", type=int, default=3600, help="link lifetime in seconds (default 3600, at most 7 days)"
    )

    sub = command("export", "every event of a day or days to CSV, JSON Lines or Parquet, streamed", cmd_export)
    when = sub.add_mutually_exclusive_group(required=True)
    when.add_argument("--day", type=day_arg, help="one day (UTC, YYYY-MM-DD)")
    when.add_argument("--from", dest="date_from", type=day_arg, help="first day (with --to)")
    sub.add_argument("--to", dest="date_to", type=day_arg, help="last day, included")
    sub.add_argument("--type", help="one webhook type (e.g. workflow.call); `quarantine` for quarantined deliveries")
    sub.add_argument("--format", choices=FORMATS, default="csv", help="default csv; parquet needs pyarrow")
    sub.add_argument("--output", required=True, metavar="FILE", help="the file to write ('-': stdout, csv/jsonl)")
    sub.add_argument("--quiet", action="store_true", help="no progress on stderr")

    sub = command(
        "unreadable", "events stored with facts their model could not read (missing ids, odd values)", cmd_unreadable
    )
    when = sub.add_mutually_exclusive_group(required=True)
    when.add_argument("--day", type=day_arg, help="one day (UTC, YYYY-MM-DD) of event time")
    when.add_argument("--from", dest="date_from", type=day_arg, help="first day (with --to)")
    sub.add_argument("--to", dest="date_to", type=day_arg, help="last day, included")
    sub.add_argument("--type", help="one webhook type (e.g. chatbot.message_status)")

    sub = command("replay", "read stored deliveries again with the current models (idempotent)", cmd_replay)
    what = sub.add_mutually_exclusive_group(required=True)
    what.add_argument("--day", type=day_arg, help="every archived delivery of that day (raw/…/dt=DAY)")
    what.add_argument("--call-id", help="every event of a call (its partition in the table)")
    what.add_argument(
        "--quarantine", metavar="ID", help="one quarantined delivery (the quarantine_id of the 400 answer)"
    )
    sub.add_argument("--type", help="with --day: one webhook type")
    sub.add_argument("--quarantined", action="store_true", help="with --day: the day's quarantined deliveries instead")
    sub.add_argument(
        "--queue-url", default=argparse.SUPPRESS, help="recordings queue for new recording links (default: the stack's)"
    )
    sub.add_argument("--dry-run", action="store_true", help="tell what would be written, write nothing")
    sub.add_argument("--quiet", action="store_true", help="no progress on stderr")

    sub = command(
        "rebuild-archive",
        "write the archive's missing lines of a day range again from the table (after a stream outage)",
        cmd_rebuild_archive,
    )
    sub.add_argument("--from", dest="date_from", type=day_arg, required=True, help="first day (UTC, YYYY-MM-DD)")
    sub.add_argument("--to", dest="date_to", type=day_arg, required=True, help="last day, included")
    sub.add_argument(
        "--settle-minutes",
        type=int,
        default=15,
        help="leave items received in the last N minutes to the archiver (default 15; 0: none)",
    )
    sub.add_argument("--dry-run", action="store_true", help="count what is missing, write nothing")
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command in ("export", "unreadable") and bool(args.date_from) != bool(args.date_to):
        parser.error(f"{args.command}: --from and --to go together")
    if args.command == "replay" and (args.type or args.quarantined) and not args.day:
        parser.error("replay: --type and --quarantined go with --day")


# ---------------------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    ctx = Context(args)
    out = Output(bool(args.json))
    try:
        return int(args.run(ctx, args, out))
    except NotFound as exc:
        return _fail(EXIT_NOT_FOUND, f"not found: {exc}")
    except CliError as exc:
        return _fail(EXIT_ERROR, str(exc))
    except KeyboardInterrupt:
        return _fail(130, "interrupted")
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other command-line tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        message = _aws_problem(exc, ctx)
        if message is None:
            raise
        return _fail(EXIT_ERROR, message)


def _fail(code: int, message: str) -> int:
    sys.stdout.flush()
    print(f"{PROG}: {terminal_safe(message)}", file=sys.stderr)
    return code


# complexity: one message per AWS failure a user can fix; a flat list of cases reads best
def _aws_problem(exc: Exception, ctx: Context) -> str | None:
    """One line for the AWS failures a user can fix; None for anything else (a bug: traceback)."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        SSOTokenLoadError,
        TokenRetrievalError,
    )

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials: use a profile (--profile; aws configure or aws sso login)"
            " or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, SSOTokenLoadError | TokenRetrievalError):
        return f"AWS SSO login needed: {exc}"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}"
    if not isinstance(exc, ClientError):
        return None
    code, message = _error_code(exc), _error_message(exc)
    operation = exc.operation_name
    target = ctx._target
    if code == "ResourceNotFoundException" and target is not None:
        return f"table {target.table!r} not found in {ctx.region} (check --table or --stack)"
    if code == "NoSuchBucket" and target is not None:
        return f"bucket {target.bucket!r} not found (check --bucket or --stack)"
    if code in (
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
    ):
        return f"AWS rejected the credentials ({code}): {message}"
    if code in ("AccessDenied", "AccessDeniedException", "403"):
        return f"access denied to {operation}: {message or 'check the role or policy of these credentials'}"
    return f"{operation} failed: {code}: {message}"


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _error_message(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")).replace("\n", " ")


if __name__ == "__main__":
    sys.exit(main())
