"""The scheduled sync: reads AIRUDDER's Workflow call records back and stores what webhooks missed.

Each run walks, for a time window, the workflows active in it, their outbound (node) tasks, and each
task's details (call records, paged), and feeds every record through the webhook path's own store
steps (recorder.EventRecorder: build_record, store_record) with source "sync".

One event per call, whoever saw it first: a pulled record is turned into the body the call-completion
webhook would have sent (`webhook_body`, an ASSUMPTION about AIRUDDER, see below), so its event id
(sha256 of the webhook type and the canonical body) is the webhook's. A record seen by both is stored
once and the entity state stays at the newest event. A record that cannot be read as a call is still
stored (type of the call route, source "sync", filed under its own event id): nothing is lost. A record
our code fails on anyway (a bug) is quarantined like a webhook body, with the reason, and counted; the run
moves on, so one record never holds a page (and the cursor) back. Only a failing AWS call stops the run.

Incremental: the job's item in DynamoDB (store.py, pk SYNC#<job>) holds a watermark, the time up to
which everything has been fetched. A run asks for [watermark - overlap, now) in windows of at most
`max_window_minutes`, and moves the watermark to a window's end once the window is done. A run that
runs short of time (Lambda's remaining time minus a margin) stops between two pages and saves a cursor
(window, workflows and tasks done, next page); the next run finishes that window first. Two runs never
work at once: a lease on the same item, taken by a conditional write, expires on its own if a run dies.
See docs/sync.md.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field, field_validator, model_validator

from airudder_ingest.base import aws
from airudder_ingest.base.errors import Unprocessable, failure_site
from airudder_ingest.base.events import iso_utc, to_utc, utf8_text
from airudder_ingest.base.secret_values import Fetch, fetch_secret
from airudder_ingest.base.settings import EnvSettings, StoreSettings, split_list
from airudder_ingest.models import FALLBACK_KIND, EventFacts, WebhookModel, model_for, read_facts
from airudder_ingest.models.record import EventRecord
from airudder_ingest.record.recorder import EventRecorder, recording_fits_queue
from airudder_ingest.record.recording_queue import RecordingQueue
from airudder_ingest.storage.archive import Envelope
from airudder_ingest.storage.store import EventStore
from airudder_ingest.sync.client import (
    AirudderApiError,
    AirudderApiSettings,
    AirudderClient,
    AirudderCredentials,
    CredentialsProvider,
)

logger = Logger(child=True)
metrics = Metrics()

SOURCE = "sync"

# --- the record -> webhook body mapping (an assumption about AIRUDDER) ----------------------------------

# Keys a task-detail record carries on top of the call-completion webhook's body. ASSUMPTION: AIRUDDER
# documents that the task-detail fields "mean the same" as those of the Notification of Call Completion
# in Workflow; we take that to mean the record IS that body plus these pull-only keys (the simulator is
# built that way: tools/simulator/bodies.py). Override with SYNC_PULL_ONLY_KEYS.
PULL_ONLY_KEYS: tuple[str, ...] = ("node_type", "task_name", "state", "hangupReason", "update_time")
# The webhook a pulled call record stands for (its route decides the model and the webhook type).
CALL_ROUTE = "/webhooks/workflow/call"
# Recording states after which a sync that meets the call again queues its (possibly fresher) link.
REQUEUE_RECORDING_STATES = frozenset({"link_expired", "failed"})


def webhook_body(record: Mapping[str, Any], pull_only_keys: Iterable[str] = PULL_ONLY_KEYS) -> dict[str, Any]:
    """The body the call-completion webhook would have sent for a pulled call record.

    The record with its pull-only keys dropped, every other key and value untouched (values are not
    re-typed: "35" stays "35"). This is the ASSUMPTION the whole dedupe rests on: if AIRUDDER's record
    differs from the webhook body in any other way (a key spelled differently, a number sent as text,
    another time format), the two get different event ids and the call is kept twice, once per source,
    under the same call entity. Nothing is lost then, and the state is still the newest, but the sync
    counts those records as new.
    """
    drop = frozenset(pull_only_keys)
    return {key: value for key, value in record.items() if key not in drop}


@dataclass(frozen=True)
class Converted:
    body: dict[str, Any]  # what is stored as the event (its canonical JSON gives the event id)
    facts: EventFacts
    matched: bool  # False: not readable as a call; stored whole under its own event id


@dataclass(frozen=True)
class RecordMapping:
    """Pulled call record -> (webhook type, body, facts), through the route's own webhook model."""

    route: str = CALL_ROUTE
    pull_only_keys: tuple[str, ...] = PULL_ONLY_KEYS

    def __post_init__(self) -> None:
        if model_for(self.route) is None:
            raise ValueError(f"no webhook model serves {self.route!r}")

    @property
    def model(self) -> type[WebhookModel]:
        found = model_for(self.route)
        assert found is not None
        return found

    @property
    def webhook_type(self) -> str:
        return self.model.webhook_type

    def convert(self, record: Mapping[str, Any]) -> Converted:
        body = webhook_body(record, self.pull_only_keys)
        # Read as the webhook path reads a body: a value no field can take is left out of the facts
        # (named in `unreadable`), never a reason to set the record aside.
        facts = read_facts(self.model, body)
        if facts.entity_kind != FALLBACK_KIND:
            return Converted(body, facts, matched=True)
        # Names neither a call nor a case: kept whole (pull-only keys and all), as its own entity,
        # with the ids of the workflow and task it came from.
        when = next((record.get(k) for k in ("end_time", "update_time", "start_time") if record.get(k)), None)
        ids: dict[str, Any] = {k: _text_id(record.get(k)) for k in ("workflow_id", "nodetask_id", "task_id")}
        return Converted(dict(record), EventFacts(FALLBACK_KIND, None, event_time=when, **ids), matched=False)


# --- settings ------------------------------------------------------------------------------------------


class SyncSettings(EnvSettings):
    """Settings of the sync (EnvSettings: each setting's environment variable is its `validation_alias`)."""

    # Secrets Manager secret holding {"APPKey": "...", "APPSecret": "..."}.
    api_secret_name: str = Field(default="", validation_alias="AIRUDDER_API_SECRET")
    secret_cache_seconds: int = Field(default=300, validation_alias="AIRUDDER_API_SECRET_CACHE_SECONDS", ge=0)
    # Name of the job's bookkeeping item (watermark, cursor, lease): one per independent sync.
    job: str = Field(default="workflow-calls", validation_alias="SYNC_JOB", min_length=1)
    # Each run starts this far before the watermark: records AIRUDDER files late or with a skewed clock.
    overlap_seconds: int = Field(default=300, validation_alias="SYNC_OVERLAP_SECONDS", ge=0)
    # How far back the very first run (no watermark yet) reaches.
    initial_lookback_hours: float = Field(default=24.0, validation_alias="SYNC_INITIAL_LOOKBACK_HOURS", gt=0)
    # Longest window asked for at once; the watermark moves after each one.
    max_window_minutes: int = Field(default=360, validation_alias="SYNC_MAX_WINDOW_MINUTES", ge=1)
    # Records of one page stored at once (each is a handful of sequential AWS calls).
    store_concurrency: int = Field(default=8, validation_alias="SYNC_STORE_CONCURRENCY", ge=1, le=64)
    # A run stops (saving its cursor) once Lambda's remaining time is below this.
    time_margin_seconds: float = Field(default=60.0, validation_alias="SYNC_TIME_MARGIN_SECONDS", ge=0)
    # The lease lasts the run's remaining time plus this, so it outlives the run even if it is killed.
    lease_slack_seconds: int = Field(default=60, validation_alias="SYNC_LEASE_SLACK_SECONDS", ge=0)
    call_route: str = Field(default=CALL_ROUTE, validation_alias="SYNC_CALL_ROUTE")
    pull_only_keys: tuple[str, ...] = Field(default=PULL_ONLY_KEYS, validation_alias="SYNC_PULL_ONLY_KEYS")

    @field_validator("pull_only_keys", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return split_list(value)

    @model_validator(mode="after")
    def _windows_advance(self) -> SyncSettings:
        if self.max_window_minutes * 60 <= self.overlap_seconds:
            raise ValueError("SYNC_MAX_WINDOW_MINUTES must be longer than SYNC_OVERLAP_SECONDS, or no run advances")
        if model_for(self.call_route) is None:
            raise ValueError(f"SYNC_CALL_ROUTE {self.call_route!r} is not a webhook route")
        return self

    @property
    def overlap(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.overlap_seconds)

    @property
    def max_window(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.max_window_minutes)

    @property
    def initial_lookback(self) -> dt.timedelta:
        return dt.timedelta(hours=self.initial_lookback_hours)


class CredentialsMissing(Exception):
    """The API secret is unreadable, not {"APPKey", "APPSecret"}, or still holds the placeholders."""


PLACEHOLDER_PREFIX = "REPLACE_WITH_"


def secret_credentials(secret_name: str, cache_seconds: int = 300, fetch: Fetch = fetch_secret) -> CredentialsProvider:
    """Credentials from the Secrets Manager secret {"APPKey": "...", "APPSecret": "..."} (cached)."""

    def provide() -> AirudderCredentials:
        if not secret_name:
            raise CredentialsMissing("AIRUDDER_API_SECRET is not set")
        try:
            value = fetch(secret_name, cache_seconds, False)
            document = json.loads(value.decode() if isinstance(value, bytes) else value)
        except Exception as exc:  # never the value itself in the message
            raise CredentialsMissing(f"the AIRUDDER API secret could not be read ({type(exc).__name__})") from None
        key = document.get("APPKey") if isinstance(document, dict) else None
        secret = document.get("APPSecret") if isinstance(document, dict) else None
        if not isinstance(key, str) or not isinstance(secret, str) or not key or not secret:
            raise CredentialsMissing('the AIRUDDER API secret is not {"APPKey": "...", "APPSecret": "..."}')
        if key.startswith(PLACEHOLDER_PREFIX) or secret.startswith(PLACEHOLDER_PREFIX):
            raise CredentialsMissing("the AIRUDDER API secret still holds the template's placeholder values")
        return AirudderCredentials(key, secret)

    return provide


# --- windows and cursor --------------------------------------------------------------------------------


def _parse(value: Any) -> dt.datetime | None:
    return to_utc(value) if value else None


def _floor_second(moment: dt.datetime) -> dt.datetime:
    # AIRUDDER's query times have whole seconds: windows are cut on them, so none is lost to rounding.
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def plan_window(
    watermark: dt.datetime | None, now: dt.datetime, settings: SyncSettings
) -> tuple[dt.datetime, dt.datetime] | None:
    """The next window to fetch, [start, end), or None when the watermark has reached `now`.

    First run: from `now - initial_lookback`. Later: from `watermark - overlap`. At most `max_window`.
    """
    now = _floor_second(now)
    if watermark is None:
        start = now - settings.initial_lookback
    elif watermark >= now:
        return None
    else:
        start = watermark - settings.overlap
    start = _floor_second(start)
    end = min(start + settings.max_window, now)
    return (start, end) if end > start else None


@dataclass
class Cursor:
    """Where an unfinished window stopped. Workflows and tasks are named by id (a listing re-read on
    resume may have changed order or length); inside a task, by page number."""

    start: str
    end: str
    done_workflows: list[str] = field(default_factory=list)
    workflow: str | None = None
    done_tasks: list[str] = field(default_factory=list)  # of `workflow`
    task: str | None = None
    page: int | None = None  # next page of `task` to fetch (None: from the first)
    seen: int = 0  # records of `task` on the pages before `page`
    last_page_len: int = 0  # records on page `page - 1`

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Cursor:
        return cls(**json.loads(text))

    def enter_workflow(self, workflow_id: str) -> None:
        if self.workflow != workflow_id:
            self.workflow, self.done_tasks = workflow_id, []
            self.enter_task(None)

    def enter_task(self, task_id: str | None) -> None:
        if self.task != task_id or task_id is None:
            self.task, self.page, self.seen, self.last_page_len = task_id, None, 0, 0

    def resume_point(self) -> tuple[int | None, int]:
        """(first page to fetch, records before it). A resumed task reads its last page again: had
        records left the window since, the pages after it shifted, and skipping one would be a gap."""
        if self.page is None:
            return None, 0
        if self.last_page_len:
            return self.page - 1, self.seen - self.last_page_len
        return self.page, self.seen


# --- the run -------------------------------------------------------------------------------------------


@dataclass
class SyncReport:
    """What one run did: counts and positions only (no ids of people, no numbers)."""

    run_id: str
    status: str = "done"  # done | budget | api_error | lease_busy | lease_lost | config_error | failed
    windows: int = 0  # windows finished (watermark moved)
    fetched: int = 0  # call records read from AIRUDDER
    new: int = 0  # stored by this run (webhooks had missed them)
    known: int = 0  # already stored (by a webhook or an earlier run)
    unmatched: int = 0  # not readable as a call: stored whole under their own event id
    quarantined: int = 0  # our code failed on them: kept in quarantine with the reason, run went on
    recordings_queued: int = 0
    api_errors: int = 0  # AIRUDDER calls that failed for good (after the client's retries)
    api_calls: int = 0  # HTTP requests to AIRUDDER, retries and token calls included
    api_retries: int = 0
    token_renewals: int = 0
    watermark: str | None = None
    cursor: str | None = None  # saved when the run stopped part-way
    window_start: str | None = None  # the last window worked on
    window_end: str | None = None
    error: str | None = None

    @property
    def errored(self) -> bool:
        return self.status in ("api_error", "lease_lost", "config_error", "failed")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Stored:
    new: bool  # False: the event was stored already
    matched: bool
    queued: bool
    quarantined: bool = False


@dataclass
class _Run:
    report: SyncReport
    remaining_ms: Callable[[], int]
    owner: str
    watermark: dt.datetime | None = None
    cursor: Cursor | None = None


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _epoch_ms() -> int:
    return int(time.time() * 1000)


def _text_id(value: Any) -> str | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    return str(value)


class WorkflowSync:
    """The sync job. `now` is the clock windows are cut with (AIRUDDER's time); `wall_ms` the one
    leases are timed with. One run at a time per instance (the AIRUDDER client is single-threaded)."""

    def __init__(
        self,
        settings: SyncSettings,
        recorder: EventRecorder,
        client: AirudderClient,
        recordings: RecordingQueue | None,
        *,
        now: Callable[[], dt.datetime] = _utc_now,
        wall_ms: Callable[[], int] = _epoch_ms,
    ) -> None:
        if recorder.recordings is not None:
            raise ValueError("the sync queues recordings itself: give it a recorder without a recordings queue")
        self.settings = settings
        self.recorder = recorder
        self.store: EventStore = recorder.store
        self.client = client
        self.recordings = recordings
        self.mapping = RecordMapping(settings.call_route, settings.pull_only_keys)
        self._now = now
        self._wall_ms = wall_ms
        self._pool: ThreadPoolExecutor | None = None  # made on first use, kept while the container lives

    @classmethod
    def from_env(cls) -> WorkflowSync:
        """As deployed: settings from the environment, clients built, nothing fetched yet."""
        store_settings = StoreSettings.from_env()
        settings = SyncSettings.from_env()
        # The sync queues recordings itself (it checks the call's recording first): a recorder without.
        recorder = EventRecorder.from_settings(store_settings, queue_recordings=False)
        recordings = (
            RecordingQueue(store_settings.recordings_queue_url, aws.client("sqs"))
            if store_settings.recordings_queue_url
            else None
        )
        client = AirudderClient(
            secret_credentials(settings.api_secret_name, settings.secret_cache_seconds), AirudderApiSettings.from_env()
        )
        return cls(settings, recorder, client, recordings)

    # ------------------------------------------------------------------ Lambda entry

    def handle(self, event: Any, context: Any) -> dict[str, Any]:
        """One scheduled run: returns the report; emits the metrics; raises only on unexpected errors."""
        request_id = getattr(context, "aws_request_id", None)
        try:
            report = self.run(context.get_remaining_time_in_millis, run_id=request_id)
        except Exception:
            # Progress is saved and the lease released (run() does it); Lambda counts the error too.
            logger.exception("sync run failed unexpectedly; the next run resumes from the saved cursor")
            metrics.add_metric(name="SyncErrors", unit=MetricUnit.Count, value=1)
            raise
        self.emit_metrics(report)
        summary = {k: v for k, v in report.as_dict().items() if k != "cursor"}
        if report.errored:
            logger.error("sync run stopped on an error", extra=summary)
        else:
            logger.info(f"sync run {report.status}", extra=summary)
        return report.as_dict()

    def emit_metrics(self, report: SyncReport) -> None:
        counts = {
            "SyncRecordsFetched": report.fetched,
            "SyncRecordsNew": report.new,
            "SyncRecordsKnown": report.known,
            "SyncRecordsUnmatched": report.unmatched,
            "SyncRecordsQuarantined": report.quarantined,
            "SyncRecordingsQueued": report.recordings_queued,
            "SyncApiErrors": report.api_errors,
            "SyncApiCalls": report.api_calls,
            "SyncApiRetries": report.api_retries,
            "SyncErrors": int(report.errored),
            "SyncLeaseBusy": int(report.status == "lease_busy"),
            "SyncStoppedForTime": int(report.status == "budget"),
        }
        for name, value in counts.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        watermark = _parse(report.watermark)
        if watermark is not None:
            lag = max((_utc_now() - watermark).total_seconds(), 0.0)
            metrics.add_metric(name="SyncWatermarkAgeSeconds", unit=MetricUnit.Seconds, value=lag)

    # ------------------------------------------------------------------ a run

    def run(self, remaining_ms: Callable[[], int], run_id: str | None = None) -> SyncReport:
        """Fetch and store until caught up with `now`, out of time, or stopped by an error."""
        owner = run_id or uuid.uuid4().hex
        report = SyncReport(owner)
        self.client.counter.reset()
        wall = self._wall_ms()
        item = self.store.acquire_sync_lease(
            self.settings.job, owner, now_ms=wall, until_ms=self._lease_until(remaining_ms)
        )
        if item is None:
            report.status = "lease_busy"
            return report
        run = _Run(report, remaining_ms, owner, _parse(item.get("watermark")))
        if item.get("cursor"):
            run.cursor = Cursor.from_json(str(item["cursor"]))
        try:
            self._catch_up(run)
        except CredentialsMissing as exc:
            report.status, report.error = "config_error", str(exc)
            self._finish(run)
        except Exception as exc:
            report.status, report.error = "failed", type(exc).__name__
            try:  # keep what was done; the next run need not wait for the lease to expire
                self._finish(run)
            except Exception:
                logger.warning("could not save the sync's progress after a failure")
            raise
        finally:
            self._count_api(report)
            report.watermark = iso_utc(run.watermark) if run.watermark else None
            report.cursor = run.cursor.to_json() if run.cursor else None
        return report

    def _catch_up(self, run: _Run) -> None:
        report = run.report
        limit = self._now()
        while True:
            if run.cursor is None:
                window = plan_window(run.watermark, limit, self.settings)
                if window is None:
                    break
                run.cursor = Cursor(iso_utc(window[0]), iso_utc(window[1]))
            cursor = run.cursor
            report.window_start, report.window_end = cursor.start, cursor.end
            status = self._window(run, cursor)
            if status != "done":
                report.status = status
                if status != "lease_lost":
                    self._finish(run)
                return
            run.watermark, run.cursor = _parse(cursor.end), None
            report.windows += 1
            if not self._save(run):
                report.status = "lease_lost"
                return
        self._finish(run)

    def _window(self, run: _Run, cursor: Cursor) -> str:
        start, end = _parse(cursor.start), _parse(cursor.end)
        assert start is not None and end is not None
        try:
            if self._out_of_time(run):
                return "budget"
            workflows = list(self.client.list_workflow_tasks(start, end))
            for workflow in workflows:
                workflow_id = _text_id(workflow.get("workflow_id"))
                if workflow_id is None or workflow_id in cursor.done_workflows:
                    continue
                cursor.enter_workflow(workflow_id)
                status = self._workflow(run, cursor, workflow_id, start, end)
                if status != "done":
                    return status
                cursor.done_workflows.append(workflow_id)
                cursor.workflow, cursor.done_tasks = None, []
        except AirudderApiError as exc:
            run.report.api_errors += 1
            run.report.error = f"{exc.endpoint}: HTTP {exc.http_status}, code {exc.code}"
            logger.warning(
                "AIRUDDER call failed for good; the next run resumes here",
                extra={"endpoint": exc.endpoint, "http_status": exc.http_status, "code": exc.code},
            )
            return "api_error"
        return "done"

    def _workflow(self, run: _Run, cursor: Cursor, workflow_id: str, start: dt.datetime, end: dt.datetime) -> str:
        """The outbound tasks of one workflow in the window, each saved as done once stored."""
        if self._out_of_time(run):
            return "budget"
        tasks = list(self.client.list_outbound_tasks(workflow_id, window=(start, end)))
        for task in tasks:
            task_id = _text_id(task.get("task_id"))
            if task_id is None or task_id in cursor.done_tasks:
                continue
            status = self._task(run, cursor, workflow_id, task_id, start, end)
            if status != "done":
                return status
            cursor.done_tasks.append(task_id)
            cursor.enter_task(None)
            if not self._save(run):
                return "lease_lost"
        return "done"

    def _task(
        self, run: _Run, cursor: Cursor, workflow_id: str, task_id: str, start: dt.datetime, end: dt.datetime
    ) -> str:
        if cursor.task != task_id:
            cursor.enter_task(task_id)
        start_page, seen = cursor.resume_point()
        pages = self.client.task_detail_pages(
            task_id, workflow_id=workflow_id, window=(start, end), start_page=start_page, already_seen=seen
        )
        while True:
            if self._out_of_time(run):
                return "budget"
            step = next(pages, None)
            if step is None:
                return "done"
            page, records = step
            received_at = iso_utc(_utc_now())
            query = {"workflow_id": workflow_id, "task_id": task_id, "page": str(page)}
            query |= {"start_time": cursor.start, "end_time": cursor.end}
            self._store_page(run, records, received_at, query)
            seen += len(records)
            cursor.page, cursor.seen, cursor.last_page_len = page + 1, seen, len(records)

    def _store_page(self, run: _Run, records: list[Any], received_at: str, query: Mapping[str, str]) -> None:
        """Every record of a page through the store steps, `store_concurrency` at a time (records are
        independent: each write is conditional and idempotent). Raises the first failure, if any."""
        if self.settings.store_concurrency > 1 and len(records) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.settings.store_concurrency, thread_name_prefix="sync-store")
            results = list(self._pool.map(lambda record: self._store(run.owner, record, received_at, query), records))
        else:
            results = [self._store(run.owner, record, received_at, query) for record in records]
        report = run.report
        for result in results:
            report.fetched += 1
            if result.quarantined:
                report.quarantined += 1
                continue
            report.unmatched += not result.matched
            report.new += result.new
            report.known += not result.new
            report.recordings_queued += result.queued

    def _store(self, owner: str, record: Any, received_at: str, query: Mapping[str, str]) -> _Stored:
        """One pulled record, stored; or, when it is not a JSON object or our code fails on it, quarantined
        (a failing AWS call raises: the run stops and the next one redoes the page)."""
        if not isinstance(record, Mapping):
            reason = f"the pulled record is not a JSON object (a {type(record).__name__}); kept for replay"
            self._quarantine(owner, record, received_at, query, reason)
            return _Stored(new=False, matched=False, queued=False, quarantined=True)
        try:
            return self._store_record(owner, record, received_at, query)
        except (ClientError, BotoCoreError):
            raise
        except Exception as exc:
            where = failure_site(exc)
            logger.warning("pulled record could not be stored; quarantined", extra={"error": type(exc).__name__,
                                                                                    "where": where})  # fmt: skip
            reason = f"the pulled record could not be stored ({type(exc).__name__} in {where}); kept for replay"
            self._quarantine(owner, record, received_at, query, reason)
            return _Stored(new=False, matched=False, queued=False, quarantined=True)

    def _quarantine(self, owner: str, record: Any, received_at: str, query: Mapping[str, str], reason: str) -> None:
        """Keep a pulled record as it came (JSON text) in the quarantine, as the webhook path keeps a body."""
        try:
            text = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=repr)
        except (ValueError, TypeError, RecursionError):
            text = repr(record)
        raw = utf8_text(text).encode()
        self.recorder.quarantine(
            Envelope(path=self.client.settings.task_detail_path, body=raw, query=query),
            webhook_type=self.mapping.webhook_type,
            route=self.mapping.route,
            reason=reason,
            status=Unprocessable.status,
            received_at=received_at,
            source=SOURCE,
            request_id=owner,
        )

    def _store_record(
        self, owner: str, record: Mapping[str, Any], received_at: str, query: Mapping[str, str]
    ) -> _Stored:
        """One pulled record through the webhook path's store steps."""
        converted = self.mapping.convert(record)
        rec = self.recorder.build_record(
            webhook_type=self.mapping.webhook_type,
            route=self.mapping.route,
            value=converted.body,
            facts=converted.facts,
            received_at=received_at,
            source=SOURCE,
            request_id=owner,
        )
        # The envelope's body is what the event id hashes (the webhook body the record stands for), so a
        # replay of the archive finds this very event; the pull-only keys are kept beside it. An event a
        # webhook stored first is a duplicate here: its item, with the body byte for byte as AIRUDDER sent
        # it, is never touched. utf8_text: a lone surrogate stays its JSON escape (reads back the same).
        raw = utf8_text(json.dumps(converted.body, ensure_ascii=False, separators=(",", ":"))).encode()
        extra = {k: v for k, v in record.items() if k not in converted.body}
        envelope = Envelope(path=self.client.settings.task_detail_path, body=raw, query=query, pull_only=extra)
        outcome = self.recorder.store_record(rec, envelope)
        rec = outcome.record
        known = outcome.result != "stored"
        queued = self._queue_recording(rec, known=known)
        if queued:
            assert self.recordings is not None
            self.recordings.send(rec)
        return _Stored(new=not known, matched=converted.matched, queued=queued)

    def _queue_recording(self, rec: EventRecord, *, known: bool) -> bool:
        """New event: queue its link unless the call's recording is archived. Known event: its first
        writer queued it already; queue again only after a failed copy (the sync's link may be fresher)."""
        if self.recordings is None or not rec.recording_url or not recording_fits_queue(rec):
            return False
        call_id = rec.call_id or (rec.entity_id if rec.entity_kind == "CALL" else None)
        if call_id is None:
            return not known
        status = self.store.recording_state(call_id).get("recording_status")
        if status == "archived":
            return False
        return not known or status in REQUEUE_RECORDING_STATES

    # ------------------------------------------------------------------ bookkeeping

    def _out_of_time(self, run: _Run) -> bool:
        return run.remaining_ms() < self.settings.time_margin_seconds * 1000

    def _lease_until(self, remaining_ms: Callable[[], int]) -> int:
        return self._wall_ms() + max(remaining_ms(), 0) + self.settings.lease_slack_seconds * 1000

    def _save(self, run: _Run, *, release: bool = False, **summary: Any) -> bool:
        return self.store.save_sync_progress(
            self.settings.job,
            run.owner,
            watermark=iso_utc(run.watermark) if run.watermark else None,
            cursor=run.cursor.to_json() if run.cursor else None,
            until_ms=None if release else self._lease_until(run.remaining_ms),
            release=release,
            **summary,
        )

    def _finish(self, run: _Run) -> None:
        """Save the position and give the lease up, with the run's summary."""
        report = run.report
        summary = {
            "last_run_id": run.owner,
            "last_run_status": report.status,
            "last_run_at": iso_utc(_utc_now()),
            "last_run_fetched": report.fetched,
            "last_run_new": report.new,
            "last_run_quarantined": report.quarantined,
        }
        if not self._save(run, release=True, **summary):
            report.status = "lease_lost"

    def _count_api(self, report: SyncReport) -> None:
        counter = self.client.counter
        report.api_calls = counter.total
        report.api_retries = counter.retries
        report.token_renewals = counter.renewals
