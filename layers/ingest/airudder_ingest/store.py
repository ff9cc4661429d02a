"""The one module that knows the DynamoDB key design (README, "DynamoDB keys").

Items of the single table:

  event        pk=EV#<event id>            sk=EV      one per distinct event, written once
  state        pk=<KIND>#<entity id>       sk=STATE   the newest known state of a call, case, task...
  quarantine   pk=Q#<sha256 of the body>   sk=Q       a delivery kept but not ingested
  sync         pk=SYNC#<job>               sk=SYNC    a scheduled sync's watermark, cursor and lease

Indexes (sparse; an item appears in an index only when it has the index's key):

  ByEntity    entity, gsk                   events of one entity, in time order
  ByPhone     phone_key=PHONE#<e164>, gsk   events about one phone number
  ByCase      case_key=CASE#<id>, gsk       events about one case
  ByDay       day_key=DAY#<day>#<shard>, day_sort=<type>#<time>#<id>   export of a day
  ByWorkflow  wf_key=WF#<id>#<shard>, member=<entity key>   states inside one workflow
  ByTask      task_key=TASK#<id>#<shard>, member            states inside one task (dialer, campaign, WABA)

`gsk` is <event time>#<event id>, so every time-ordered index sorts the same way.

Limits (limits.py): an id whose key would pass DynamoDB's key limits (a sort key, `member`, holds 1,024
bytes; a partition key 2,048) or is not UTF-8 is keyed by `sha256:<digest of the id>` instead, the same
digest for every write and lookup; a fact over 16 KB is left out of the items (named in `left_out`) and
stays in the archived body; an event whose item would pass 400 KB keeps its body in the archive only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from .events import shard_of
from .limits import (
    MAX_ITEM_BYTES,
    MAX_PARTITION_KEY_BYTES,
    MAX_SORT_KEY_BYTES,
    fact_fits,
    item_bytes,
    key_part,
    storable,
)

EVENT_SK = "EV"
STATE_SK = "STATE"
QUARANTINE_SK = "Q"
# Entities whose state is not worth a second write: the event is all there is to know.
STATELESS_KINDS = frozenset({"DELIVERY"})
# Event bodies larger than this stay in the S3 archive only (DynamoDB items are capped at 400 KB).
MAX_INLINE_DATA_BYTES = 100_000
# A quarantine's reason (and path) is a sentence; anything longer is cut (the body says the rest).
MAX_REASON_CHARS = 2_000

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


# The facts of an event, as written on its item and on its entity's state.
FACT_ATTRIBUTES = ("entity_id", "status", "phone", "case_id", "workflow_id", "nodetask_id", "task_id", "call_id",
                   "recording_url", "agent", "results")  # fmt: skip


def _to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    # storable: text as UTF-8 (lone surrogates escaped), numbers DynamoDB cannot hold as text.
    return {k: _serializer.serialize(storable(v)) for k, v in values.items() if v is not None}


def _from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def entity_key(kind: str, entity_id: str) -> str:
    """<KIND>#<entity id>: the state's pk, and `member`, a sort key (1,024 bytes) of two indexes."""
    return f"{kind}#{key_part(entity_id, MAX_SORT_KEY_BYTES - len(kind.encode()) - 1)}"


def index_key(prefix: str, value: str, suffix: str = "") -> str:
    """<PREFIX>#<value><suffix>: an index's partition key (2,048 bytes), e.g. PHONE#<e164>, WF#<id>#<shard>."""
    room = MAX_PARTITION_KEY_BYTES - len(prefix.encode()) - 1 - len(suffix.encode())
    return f"{prefix}#{key_part(value, room)}{suffix}"


def _left_out(values: dict[str, Any]) -> list[str]:
    """Drop the facts too large for an item (they stay in the archived body); their names, sorted."""
    dropped = sorted(name for name in FACT_ATTRIBUTES if not fact_fits(values.get(name)))
    for name in dropped:
        values[name] = None
    return dropped


@dataclass(frozen=True)
class EventRecord:
    """One event, normalised: what the store writes for a delivery (or a synced record)."""

    event_id: str
    webhook_type: str
    route: str
    source: str
    received_at: str
    event_time: str
    time_source: str  # "payload" when the body carried a time, else "received"
    entity_kind: str
    entity_id: str
    data: str  # the body as canonical JSON
    archive_key: str
    status: str | None = None
    phone: str | None = None
    case_id: str | None = None
    workflow_id: str | None = None
    nodetask_id: str | None = None
    task_id: str | None = None
    call_id: str | None = None
    recording_url: str | None = None
    agent: str | None = None
    results: Mapping[str, str] = field(default_factory=dict)  # result title -> value (agent's disposition)
    unreadable: tuple[str, ...] = ()  # facts the model could not read (models.base.EventFacts)
    request_id: str | None = None  # API Gateway's request id of the delivery (logs' correlation_id)

    @property
    def entity(self) -> str:
        return entity_key(self.entity_kind, self.entity_id)

    @property
    def day(self) -> str:
        return self.event_time[:10]

    @property
    def sort_key(self) -> str:
        return f"{self.event_time}#{self.event_id}"

    def timed_as(self, stored: Mapping[str, Any]) -> EventRecord:
        """The same event with the times it was first stored with (for a redelivery)."""
        return replace(
            self,
            event_time=stored.get("event_time", self.event_time),
            received_at=stored.get("received_at", self.received_at),
            time_source=stored.get("time_source", self.time_source),
        )


@dataclass(frozen=True)
class PutOutcome:
    stored: bool
    existing: dict[str, Any] | None = None


class EventStore:
    def __init__(
        self,
        table_name: str,
        ddb: Any,
        *,
        day_shards: int = 16,
        parent_shards: int = 8,
        event_ttl_days: int = 0,
    ) -> None:
        self.table_name = table_name
        self._ddb = ddb
        self.day_shards = day_shards
        self.parent_shards = parent_shards
        self.event_ttl_days = event_ttl_days

    # ------------------------------------------------------------------ writes of the ingest path

    def put_event(self, rec: EventRecord) -> PutOutcome:
        """Write the event once. A second write of the same event id is a duplicate: nothing is
        written, and the stored item comes back so that the caller can repair what follows it."""
        values: dict[str, Any] = {
            "pk": f"EV#{rec.event_id}",
            "sk": EVENT_SK,
            "item_type": "event",
            "event_id": rec.event_id,
            "webhook_type": rec.webhook_type,
            "route": rec.route,
            "source": rec.source,
            "received_at": rec.received_at,
            "event_time": rec.event_time,
            "time_source": rec.time_source,
            "entity": rec.entity,
            "entity_kind": rec.entity_kind,
            "entity_id": rec.entity_id,
            "gsk": rec.sort_key,
            "status": rec.status,
            "phone": rec.phone,
            "case_id": rec.case_id,
            "workflow_id": rec.workflow_id,
            "nodetask_id": rec.nodetask_id,
            "task_id": rec.task_id,
            "call_id": rec.call_id,
            "recording_url": rec.recording_url,
            "agent": rec.agent,
            # Only when there is something to say (absent otherwise, as every empty fact).
            "results": dict(rec.results) or None,
            "unreadable": list(rec.unreadable) or None,
            "archive_key": rec.archive_key,
            "request_id": rec.request_id,
            "phone_key": index_key("PHONE", rec.phone) if rec.phone else None,
            "case_key": index_key("CASE", rec.case_id) if rec.case_id else None,
            "day_key": f"DAY#{rec.day}#{shard_of(rec.event_id, self.day_shards)}",
            "day_sort": f"{rec.webhook_type}#{rec.sort_key}",
        }
        values["left_out"] = _left_out(values) or None
        if len(rec.data.encode("utf-8", "surrogatepass")) <= MAX_INLINE_DATA_BYTES:
            values["data"] = rec.data
        if values.get("data") is None or item_bytes(values) > MAX_ITEM_BYTES:
            values["data"], values["data_in_archive"] = None, True
        if self.event_ttl_days:
            values["expires_at"] = int(time.time()) + self.event_ttl_days * 86_400
        try:
            self._ddb.put_item(
                TableName=self.table_name,
                Item=_to_item(values),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            return PutOutcome(stored=False, existing=_from_item(exc.response.get("Item") or {}))
        return PutOutcome(stored=True)

    def apply_state(self, rec: EventRecord) -> bool:
        """Make this event the entity's state unless a newer one is already there.

        Deliveries arrive out of order; the condition keeps the state at the newest event (ties on
        time broken by event id, so every writer agrees). Re-applying the same event is harmless.
        Returns False when a newer event was already applied.
        """
        if rec.entity_kind in STATELESS_KINDS:
            return True
        shard = shard_of(rec.entity, self.parent_shards)
        fields: dict[str, Any] = {
            "item_type": "state",
            "entity_kind": rec.entity_kind,
            "entity_id": rec.entity_id,
            "last_event_id": rec.event_id,
            "last_event_time": rec.event_time,
            "last_webhook_type": rec.webhook_type,
            "last_source": rec.source,
            "updated_at": _now_iso(),
            "status": rec.status,
            "phone": rec.phone,
            "case_id": rec.case_id,
            "workflow_id": rec.workflow_id,
            "nodetask_id": rec.nodetask_id,
            "task_id": rec.task_id,
            "call_id": rec.call_id,
            "recording_url": rec.recording_url,
            "data": rec.data if len(rec.data.encode("utf-8", "surrogatepass")) <= MAX_INLINE_DATA_BYTES else None,
            "member": rec.entity,
            "wf_key": index_key("WF", rec.workflow_id, f"#{shard}") if rec.workflow_id else None,
            "task_key": index_key("TASK", rec.task_id, f"#{shard}") if rec.task_id else None,
        }
        # Too large for the item: left out (the state keeps the value it had), read from the body.
        _left_out(fields)
        if item_bytes(fields) > MAX_ITEM_BYTES:
            fields["data"] = None
        # Absent values are left alone: a later event that omits a known id must not erase it.
        present = {k: v for k, v in fields.items() if v is not None}
        names = {f"#{k}": k for k in present}
        values = {f":{k}": v for k, v in present.items()}
        update = "SET " + ", ".join(f"#{k} = :{k}" for k in present)
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=_to_item({"pk": rec.entity, "sk": STATE_SK}),
                UpdateExpression=update,
                ConditionExpression=(
                    "attribute_not_exists(#last_event_time) OR #last_event_time < :last_event_time"
                    " OR (#last_event_time = :last_event_time AND #last_event_id <= :last_event_id)"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_item(values),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def put_quarantine(
        self,
        *,
        digest: str,
        webhook_type: str,
        route: str,
        path: str,
        reason: str,
        status: int,
        received_at: str,
        archive_key: str,
        size: int,
        source: str = "webhook",
    ) -> None:
        """Record a quarantined delivery (its body is in the archive), so that it can be listed and
        replayed. A redelivery of the same body overwrites the same item."""
        day = received_at[:10]
        values = {
            "pk": f"Q#{digest}",
            "sk": QUARANTINE_SK,
            "item_type": "quarantine",
            "webhook_type": webhook_type,
            "route": route,
            "path": path[:MAX_REASON_CHARS],
            "reason": reason[:MAX_REASON_CHARS],
            "source": source,
            "http_status": status,
            "received_at": received_at,
            "archive_key": archive_key,
            "size": size,
            "day_key": f"DAY#{day}#{shard_of(digest, self.day_shards)}",
            "day_sort": f"quarantine#{received_at}#{digest}",
        }
        self._ddb.put_item(TableName=self.table_name, Item=_to_item(values))

    # ------------------------------------------------------------------ recordings

    def recording_state(self, call_id: str) -> dict[str, Any]:
        """The recording attributes of a call's state (empty when nothing is known)."""
        answer = self._ddb.get_item(
            TableName=self.table_name,
            Key=_to_item({"pk": entity_key("CALL", call_id), "sk": STATE_SK}),
            ProjectionExpression="recording_status, recording_s3_key, recording_size, recording_sha256,"
            " recording_content_type, recording_error, recording_url",
            ConsistentRead=True,
        )
        return _from_item(answer.get("Item") or {})

    def set_recording(self, call_id: str, **attributes: Any) -> None:
        """Set recording_* attributes on a call's state, creating the item if the call is not known
        yet (the state's event fields are then filled by the first event)."""
        present = {f"recording_{k}": v for k, v in attributes.items() if v is not None}
        present["recording_updated_at"] = _now_iso()
        self._ddb.update_item(
            TableName=self.table_name,
            Key=_to_item({"pk": entity_key("CALL", call_id), "sk": STATE_SK}),
            UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in present),
            ExpressionAttributeNames={f"#{k}": k for k in present},
            ExpressionAttributeValues=_to_item({f":{k}": v for k, v in present.items()}),
        )

    # ------------------------------------------------------------------ reads

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        return self._get(f"EV#{event_id}", EVENT_SK)

    def get_state(self, kind: str, entity_id: str) -> dict[str, Any] | None:
        return self._get(entity_key(kind, entity_id), STATE_SK)

    def get_quarantine(self, digest: str) -> dict[str, Any] | None:
        return self._get(f"Q#{digest}", QUARANTINE_SK)

    def entity_events(self, kind: str, entity_id: str, **window: Any) -> Iterator[dict[str, Any]]:
        return self._timeline("ByEntity", "entity", entity_key(kind, entity_id), **window)

    def phone_events(self, phone: str, **window: Any) -> Iterator[dict[str, Any]]:
        return self._timeline("ByPhone", "phone_key", index_key("PHONE", phone), **window)

    def case_events(self, case_id: str, **window: Any) -> Iterator[dict[str, Any]]:
        return self._timeline("ByCase", "case_key", index_key("CASE", case_id), **window)

    def day_items(self, day: str, webhook_type: str | None = None) -> Iterator[dict[str, Any]]:
        """Every event (and quarantined delivery) of a day, shard after shard; `webhook_type`
        narrows to one type ("quarantine" for the quarantined ones)."""
        for shard in range(self.day_shards):
            condition = "day_key = :d"
            values: dict[str, Any] = {":d": f"DAY#{day}#{shard}"}
            if webhook_type:
                condition += " AND begins_with(day_sort, :t)"
                values[":t"] = f"{webhook_type}#"
            yield from self._query("ByDay", condition, values)

    def unreadable_events(self, day: str, webhook_type: str | None = None) -> Iterator[dict[str, Any]]:
        """The events of a day that their model could not fully read (those with `unreadable`), shard
        after shard; `webhook_type` narrows to one type. Read from the export index, filtered there."""
        for shard in range(self.day_shards):
            condition = "day_key = :d"
            values: dict[str, Any] = {":d": f"DAY#{day}#{shard}"}
            if webhook_type:
                condition += " AND begins_with(day_sort, :t)"
                values[":t"] = f"{webhook_type}#"
            yield from self._query("ByDay", condition, values, filter_expression="attribute_exists(unreadable)")

    def workflow_members(self, workflow_id: str) -> Iterator[dict[str, Any]]:
        """States of the workflow itself and of every call, case and task filed under it."""
        for shard in range(self.parent_shards):
            yield from self._query("ByWorkflow", "wf_key = :k", {":k": index_key("WF", workflow_id, f"#{shard}")})

    def task_members(self, task_id: str) -> Iterator[dict[str, Any]]:
        """States of a dialer task and of every call and agent filed under it."""
        for shard in range(self.parent_shards):
            yield from self._query("ByTask", "task_key = :k", {":k": index_key("TASK", task_id, f"#{shard}")})

    def _timeline(
        self,
        index: str,
        key_name: str,
        key: str,
        *,
        start: str | None = None,
        end: str | None = None,
        newest_first: bool = True,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        condition = f"{key_name} = :k"
        values: dict[str, Any] = {":k": key}
        if start and end:
            condition += " AND gsk BETWEEN :s AND :e"
            values.update({":s": start, ":e": end + "\uffff"})
        elif start:
            condition += " AND gsk >= :s"
            values[":s"] = start
        elif end:
            condition += " AND gsk <= :e"
            values[":e"] = end + "\uffff"
        return self._query(index, condition, values, forward=not newest_first, limit=limit)

    def _query(
        self,
        index: str,
        condition: str,
        values: Mapping[str, Any],
        *,
        forward: bool = True,
        limit: int | None = None,
        filter_expression: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": _to_item(values),
            "ScanIndexForward": forward,
        }
        if filter_expression:
            request["FilterExpression"] = filter_expression
        returned = 0
        while True:
            answer = self._ddb.query(**request)
            for item in answer.get("Items", []):
                yield _from_item(item)
                returned += 1
                if limit is not None and returned >= limit:
                    return
            if "LastEvaluatedKey" not in answer:
                return
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        answer = self._ddb.get_item(TableName=self.table_name, Key=_to_item({"pk": pk, "sk": sk}))
        item = answer.get("Item")
        return _from_item(item) if item else None

    # ------------------------------------------------------------------ recordings (the copier's writes)

    def update_recording(
        self,
        call_id: str,
        *,
        remove: tuple[str, ...] = (),
        unless_status: str | None = None,
        **attributes: Any,
    ) -> bool:
        """Like set_recording, and also remove recording_<name> attributes (`remove`). With
        `unless_status`, nothing is written when the recording already has that status: a failed
        attempt must never overwrite "archived". Returns False when the condition stopped the write."""
        key = {"pk": entity_key("CALL", call_id), "sk": STATE_SK}
        return self._update_recording(key, remove, unless_status, attributes, must_exist=False)

    def event_recording_state(self, event_id: str) -> dict[str, Any] | None:
        """The recording attributes of an event whose recording has no call id to be filed under (a
        call notification naming only its case); None when the event is not stored."""
        answer = self._ddb.get_item(
            TableName=self.table_name,
            Key=_to_item({"pk": f"EV#{event_id}", "sk": EVENT_SK}),
            ProjectionExpression="pk, recording_status, recording_s3_key, recording_size, recording_sha256,"
            " recording_content_type, recording_error",
            ConsistentRead=True,
        )
        item = answer.get("Item")
        if not item:
            return None
        values = _from_item(item)
        values.pop("pk", None)
        return values

    def update_event_recording(
        self,
        event_id: str,
        *,
        remove: tuple[str, ...] = (),
        unless_status: str | None = None,
        **attributes: Any,
    ) -> bool:
        """update_recording for the recording of an event (see event_recording_state). Only an
        existing event is updated (False otherwise): the event item is written once, by put_event."""
        key = {"pk": f"EV#{event_id}", "sk": EVENT_SK}
        return self._update_recording(key, remove, unless_status, attributes, must_exist=True)

    def _update_recording(
        self,
        key: Mapping[str, str],
        remove: tuple[str, ...],
        unless_status: str | None,
        attributes: Mapping[str, Any],
        *,
        must_exist: bool,
    ) -> bool:
        present = {f"recording_{k}": v for k, v in attributes.items() if v is not None}
        present["recording_updated_at"] = _now_iso()
        dropped = [f"recording_{k}" for k in remove if f"recording_{k}" not in present]
        names = {f"#{k}": k for k in [*present, *dropped]}
        values = {f":{k}": v for k, v in present.items()}
        update = "SET " + ", ".join(f"#{k} = :{k}" for k in present)
        if dropped:
            update += " REMOVE " + ", ".join(f"#{k}" for k in dropped)
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _to_item(key),
            "UpdateExpression": update,
            "ExpressionAttributeNames": names,
        }
        conditions = []
        if must_exist:
            conditions.append("attribute_exists(pk)")
        if unless_status is not None:
            names["#recording_status"] = "recording_status"
            values[":unless_status"] = unless_status
            conditions.append("(attribute_not_exists(#recording_status) OR #recording_status <> :unless_status)")
        if conditions:
            request["ConditionExpression"] = " AND ".join(conditions)
        request["ExpressionAttributeValues"] = _to_item(values)
        try:
            self._ddb.update_item(**request)
        except ClientError as exc:
            if conditions and exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # ------------------------------------------------------------------ scheduled sync (watermark, cursor, lease)

    def acquire_sync_lease(self, job: str, owner: str, *, now_ms: int, until_ms: int) -> dict[str, Any] | None:
        """Take the lease of a sync job, unless another run holds one that has not expired.

        One conditional write on the job's item (pk SYNC#<job>, sk SYNC): it succeeds when nobody
        holds the lease, when the holder's `lease_until` (epoch ms) has passed, or when `owner` holds
        it already. Returns the item (watermark, cursor, ...) on success, None when the lease is held."""
        names = {"#item_type": "item_type", "#owner": "lease_owner", "#until": "lease_until", "#at": "lease_taken_at"}
        values = {":item_type": "sync", ":owner": owner, ":until": until_ms, ":now": now_ms, ":at": _now_iso()}
        try:
            answer = self._ddb.update_item(
                TableName=self.table_name,
                Key=_to_item(_sync_key(job)),
                UpdateExpression="SET #item_type = :item_type, #owner = :owner, #until = :until, #at = :at",
                ConditionExpression="attribute_not_exists(#owner) OR #until < :now OR #owner = :owner",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_item(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        return _from_item(answer.get("Attributes") or {})

    def save_sync_progress(
        self,
        job: str,
        owner: str,
        *,
        watermark: str | None = None,
        cursor: str | None = None,
        until_ms: int | None = None,
        release: bool = False,
        **summary: Any,
    ) -> bool:
        """Record how far a sync job got; written only while `owner` holds the lease (fenced).

        `watermark`: the time up to which everything has been fetched (None: left as it is);
        `cursor`: where an unfinished window stopped (None: removed); `until_ms` extends the lease;
        `release` gives the lease up in the same write; `summary` adds plain attributes (last run's
        counts). Returns False when the lease is no longer ours: the caller must stop writing."""
        sets: dict[str, Any] = {**summary, "updated_at": _now_iso(), "watermark": watermark, "cursor": cursor}
        if until_ms is not None and not release:
            sets["lease_until"] = until_ms
        present = {k: v for k, v in sets.items() if v is not None}
        removed = (["cursor"] if cursor is None else []) + (["lease_owner", "lease_until"] if release else [])
        names = {f"#{k}": k for k in [*present, *removed, "lease_owner"]}
        update = "SET " + ", ".join(f"#{k} = :{k}" for k in present)
        if removed:
            update += " REMOVE " + ", ".join(f"#{k}" for k in removed)
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=_to_item(_sync_key(job)),
                UpdateExpression=update,
                ConditionExpression="#lease_owner = :lease_owner_now",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_item(
                    {**{f":{k}": v for k, v in present.items()}, ":lease_owner_now": owner}
                ),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def set_sync_watermark(self, job: str, watermark: str, *, now_ms: int) -> bool:
        """Set a sync job's watermark and drop its cursor (an operator's "start from here"), unless a
        run holds the lease. Returns False when one does."""
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=_to_item(_sync_key(job)),
                UpdateExpression="SET #item_type = :item_type, #watermark = :watermark, #at = :at REMOVE #cursor",
                ConditionExpression="attribute_not_exists(#owner) OR #until < :now",
                ExpressionAttributeNames={
                    "#item_type": "item_type",
                    "#watermark": "watermark",
                    "#at": "updated_at",
                    "#cursor": "cursor",
                    "#owner": "lease_owner",
                    "#until": "lease_until",
                },
                ExpressionAttributeValues=_to_item(
                    {":item_type": "sync", ":watermark": watermark, ":at": _now_iso(), ":now": now_ms}
                ),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get_sync_state(self, job: str) -> dict[str, Any] | None:
        """A sync job's item: watermark, cursor, lease holder and the last run's summary."""
        key = _sync_key(job)
        answer = self._ddb.get_item(TableName=self.table_name, Key=_to_item(key), ConsistentRead=True)
        item = answer.get("Item")
        return _from_item(item) if item else None

    # ------------------------------------------------------------------ reads for the CLI (query, export, replay)

    def state_is_current(self, rec: EventRecord) -> bool:
        """True when the entity's state already holds this event or a newer one, in apply_state's
        order (time, then event id): applying `rec` again would change nothing. A replay uses it to
        leave unchanged data untouched."""
        if rec.entity_kind in STATELESS_KINDS:
            return True
        state = self._get(rec.entity, STATE_SK)
        if not state or "last_event_time" not in state:
            return False
        return (str(state["last_event_time"]), str(state.get("last_event_id") or "")) >= (rec.event_time, rec.event_id)

    @staticmethod
    def quarantine_id(item: Mapping[str, Any]) -> str | None:
        """The id (body digest) of a quarantined delivery's item, as get_quarantine takes it."""
        pk = str(item.get("pk") or "")
        return pk[2:] if item.get("item_type") == "quarantine" and pk.startswith("Q#") else None


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sync_key(job: str) -> dict[str, str]:
    """Key of a scheduled sync job's bookkeeping item (not an event or entity: in no index)."""
    return {"pk": f"SYNC#{job}", "sk": "SYNC"}
