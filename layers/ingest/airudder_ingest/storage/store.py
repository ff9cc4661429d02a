"""The one module that knows the DynamoDB key design (README, "DynamoDB keys").

Items of the single table:

  event        pk=<KIND>#<entity id>  sk=EV#<event time>#<event id>   one per distinct event, written once
                                      sk=EV#-#<event id>              (the body carried no time)
  state        pk=<KIND>#<entity id>  sk=STATE   the newest known state of a call, case, task... (no body)
  quarantine   pk=Q#<digest of body>  sk=Q       a delivery kept but not ingested
  sync         pk=SYNC#<job>          sk=SYNC    a scheduled sync's watermark, cursor and lease

An event lives in its entity's partition, so an entity's history is one Query without an index. The
event item holds the delivery's envelope, packed (archive.py); the archiver copies it to S3 from the
table's stream. An untimed event's sort key has no time, so a redelivery of it (received later) is the
same key: dedup stays exact.

Indexes (sparse, KEYS_ONLY, on state items; on event items only of stateless kinds, which have no state):

  ByPhone     phone_key=PHONE#<e164>
  ByCase      case_key=CASE#<id>
  ByWorkflow  wf_key=WF#<id>#<shard>      states inside one workflow (write-sharded)
  ByTask      task_key=TASK#<id>#<shard>  states inside one task (dialer, campaign, WABA)

An index holds only keys, so a state update that leaves its index keys alone writes no index.

Limits (limits.py): an id whose key would pass DynamoDB's key limits or is not UTF-8 is keyed by
`sha256:<digest of the id>`, the same digest for every write and lookup; a fact over 16 KB is left out of
the items (named in `left_out`) and stays in the envelope; an envelope that would not fit its item goes to
S3 first (a claim check, `envelope_key`).
"""

from __future__ import annotations

import base64
import heapq
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from airudder_ingest.base.events import shard_of
from airudder_ingest.base.limits import MAX_PARTITION_KEY_BYTES, fact_fits, storable
from airudder_ingest.base.limits import key_part as _key_part
from airudder_ingest.models.record import EventRecord, entity_key

__all__ = [
    "EventRecord",
    "EventStore",
    "PutOutcome",
    "entity_key",
    "event_sort_key",
    "index_key",
    "inserted_image",
    "item_from_stream",
]

EVENT_SK_PREFIX = "EV#"
UNTIMED = "-"
STATE_SK = "STATE"
QUARANTINE_SK = "Q"
# Entities whose state is not worth a second write: the event is all there is to know.
STATELESS_KINDS = frozenset({"DELIVERY"})
# A quarantine's reason (and path) is a sentence; anything longer is cut (the envelope says the rest).
MAX_REASON_CHARS = 2_000
# An event's or quarantine's packed envelope larger than this goes to S3 (a claim check): the rest of the
# item (facts of at most 16 KB each) fits in what is left of DynamoDB's 400 KB.
MAX_INLINE_ENVELOPE_BYTES = 200 * 1_024
# The index keys, and the indexes they feed.
INDEX_KEYS = {"phone_key": "ByPhone", "case_key": "ByCase", "wf_key": "ByWorkflow", "task_key": "ByTask"}

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# What a recording's copy writes on the item it belongs to (recording_state, event_recording_state).
RECORDING_ATTRIBUTES = ("recording_status", "recording_s3_key", "recording_size", "recording_sha256",
                        "recording_content_type", "recording_error")  # fmt: skip
# The facts an event sets on its item and on its entity's state; FACT_ATTRIBUTES: all the facts of an item.
SHARED_FACTS = ("status", "phone", "case_id", "workflow_id", "nodetask_id", "task_id", "call_id", "recording_url")
FACT_ATTRIBUTES = ("entity_id", *SHARED_FACTS, "agent", "results")


def _to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    # storable: text as UTF-8 (lone surrogates escaped), numbers DynamoDB cannot hold as text.
    return {
        k: _serializer.serialize(v if isinstance(v, bytes | Binary) else storable(v))
        for k, v in values.items()
        if v is not None
    }


def _from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    values = {k: _deserializer.deserialize(v) for k, v in item.items()}
    return {k: (bytes(v) if isinstance(v, Binary) else v) for k, v in values.items()}


# complexity: one branch per typed value that can hold a binary (B, BS, M, L): the stream JSON, case by case
def _binary_as_bytes(value: Any) -> Any:
    """A typed value of a Lambda stream record, with its binaries as bytes (the JSON holds them base64)."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return value
    ((kind, inner),) = value.items()
    if kind == "B" and isinstance(inner, str):
        return {"B": base64.b64decode(inner)}
    if kind == "BS" and isinstance(inner, list):
        return {"BS": [base64.b64decode(v) if isinstance(v, str) else v for v in inner]}
    if kind == "M" and isinstance(inner, Mapping):
        return {"M": {k: _binary_as_bytes(v) for k, v in inner.items()}}
    if kind == "L" and isinstance(inner, list):
        return {"L": [_binary_as_bytes(v) for v in inner]}
    return value


def inserted_image(record: Mapping[str, Any], item_types: Collection[str]) -> Mapping[str, Any] | None:
    """The new image (still typed, as Lambda delivers it) of a stream record that inserts an item of one
    of `item_types`; None for any other record (a MODIFY or REMOVE, another item type)."""
    if record.get("eventName") != "INSERT":
        return None
    image: Mapping[str, Any] = (record.get("dynamodb") or {}).get("NewImage") or {}
    return image if (image.get("item_type") or {}).get("S") in item_types else None


def item_from_stream(image: Mapping[str, Any]) -> dict[str, Any]:
    """An item's image from a DynamoDB stream record as Lambda delivers it, as plain values (binaries as
    bytes, numbers as Decimal): what the archiver and the publisher read."""
    return _from_item({k: _binary_as_bytes(v) for k, v in image.items()})


def _facts(rec: EventRecord, names: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(rec, name) for name in names}


def index_key(prefix: str, value: str, suffix: str = "") -> str:
    """<PREFIX>#<value><suffix>: an index's partition key (2,048 bytes), e.g. PHONE#<e164>, WF#<id>#<shard>."""
    room = MAX_PARTITION_KEY_BYTES - len(prefix.encode()) - 1 - len(suffix.encode())
    return f"{prefix}#{_key_part(value, room)}{suffix}"


def event_sort_key(event_time: str, event_id: str, timed: bool) -> str:
    """EV#<event time>#<event id>, or EV#-#<event id> for an event whose body carried no time."""
    return f"{EVENT_SK_PREFIX}{event_time if timed else UNTIMED}#{event_id}"


def _left_out(values: dict[str, Any]) -> list[str]:
    """Drop the facts too large for an item (they stay in the envelope); their names, sorted."""
    dropped = sorted(name for name in FACT_ATTRIBUTES if not fact_fits(values.get(name)))
    for name in dropped:
        values[name] = None
    return dropped


def _index_keys(rec: EventRecord, parent_shards: int) -> dict[str, str | None]:
    shard = shard_of(rec.entity, parent_shards)
    return {
        "phone_key": index_key("PHONE", rec.phone) if rec.phone else None,
        "case_key": index_key("CASE", rec.case_id) if rec.case_id else None,
        "wf_key": index_key("WF", rec.workflow_id, f"#{shard}") if rec.workflow_id else None,
        "task_key": index_key("TASK", rec.task_id, f"#{shard}") if rec.task_id else None,
    }


def _failed_condition(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def update_expression(
    sets: Mapping[str, Any], removes: Iterable[str] = ()
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """`SET #a = :a, ... REMOVE #b, ...` with its names and values; None values are left out of SET."""
    present = {k: v for k, v in sets.items() if v is not None}
    dropped = [k for k in removes if k not in present]
    expression = "SET " + ", ".join(f"#{k} = :{k}" for k in present)
    if dropped:
        expression += " REMOVE " + ", ".join(f"#{k}" for k in dropped)
    return expression, {f"#{k}": k for k in [*present, *dropped]}, {f":{k}": v for k, v in present.items()}


@dataclass(frozen=True)
class PutOutcome:
    stored: bool
    existing: dict[str, Any] | None = None


def event_item(
    rec: EventRecord,
    *,
    envelope: bytes | None,
    envelope_key: str | None = None,
    in_archive: bool = False,
    parent_shards: int = 8,
    expires_at: int | None = None,
) -> dict[str, Any]:
    """The event item of `rec` (plain values; `_to_item` drops the None ones). Pure: the bench measures it."""
    values: dict[str, Any] = {
        "pk": rec.entity,
        "sk": event_sort_key(rec.event_time, rec.event_id, rec.timed),
        "item_type": "event",
        "event_id": rec.event_id,
        "webhook_type": rec.webhook_type,
        "route": rec.route,
        "source": rec.source,
        "received_at": rec.received_at,
        "event_time": rec.event_time,
        "time_source": rec.time_source,
        "entity_kind": rec.entity_kind,
        "entity_id": rec.entity_id,
        **_facts(rec, SHARED_FACTS),
        "agent": rec.agent,
        # Only when there is something to say (absent otherwise, as every empty fact).
        "results": dict(rec.results) or None,
        "unreadable": list(rec.unreadable) or None,
        "request_id": rec.request_id,
        "envelope": envelope,
        "envelope_key": envelope_key,
        "in_archive": True if in_archive else None,
        "expires_at": expires_at,
    }
    if rec.entity_kind in STATELESS_KINDS:
        values.update(_index_keys(rec, parent_shards))
    values["left_out"] = _left_out(values) or None
    return values


def state_fields(rec: EventRecord, *, parent_shards: int = 8, now: str | None = None) -> dict[str, Any]:
    """What applying `rec` sets on its entity's state (None: left as it is). Pure: the bench measures it."""
    fields: dict[str, Any] = {
        "item_type": "state",
        "entity_kind": rec.entity_kind,
        "entity_id": rec.entity_id,
        "last_event_id": rec.event_id,
        "last_event_time": rec.event_time,
        "last_webhook_type": rec.webhook_type,
        "last_source": rec.source,
        "updated_at": now or _now_iso(),
        **_facts(rec, SHARED_FACTS),
        **_index_keys(rec, parent_shards),
    }
    # Too large for the item: left out (the state keeps the value it had), read from the envelope.
    _left_out(fields)
    return fields


def quarantine_item(
    *,
    digest: str,
    webhook_type: str,
    route: str,
    path: str,
    reason: str,
    status: int,
    received_at: str,
    size: int,
    envelope: bytes | None,
    envelope_key: str | None = None,
    source: str = "webhook",
    request_id: str | None = None,
) -> dict[str, Any]:
    return {
        "pk": f"Q#{digest}",
        "sk": QUARANTINE_SK,
        "item_type": "quarantine",
        "quarantine_id": digest,
        "webhook_type": webhook_type,
        "route": route,
        "path": path[:MAX_REASON_CHARS],
        "reason": reason[:MAX_REASON_CHARS],
        "source": source,
        "http_status": status,
        "received_at": received_at,
        "size": size,
        "request_id": request_id or None,
        "envelope": envelope,
        "envelope_key": envelope_key,
    }


@dataclass(frozen=True)
class Window:
    """Which events of a time line a reader wants: a time range (inclusive, ISO prefixes), the order, how many."""

    start: str | None = None
    end: str | None = None
    newest_first: bool = True
    limit: int | None = None

    @property
    def forward(self) -> bool:
        return not self.newest_first

    def holds(self, item: Mapping[str, Any]) -> bool:
        moment = str(item.get("event_time") or "")
        return (not self.start or moment >= self.start) and (not self.end or moment <= self.end + "\uffff")

    def cut(self, items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        return _limited(items, self.limit)


class EventStore:
    def __init__(
        self,
        table_name: str,
        ddb: Any,
        *,
        parent_shards: int = 8,
        event_ttl_days: int = 0,
    ) -> None:
        self.table_name = table_name
        self._ddb = ddb
        self.parent_shards = parent_shards
        self.event_ttl_days = event_ttl_days

    # ------------------------------------------------------------------ one helper for updates

    def _update(
        self,
        key: Mapping[str, str],
        sets: Mapping[str, Any],
        *,
        removes: Iterable[str] = (),
        condition: str | None = None,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        return_new: bool = False,
    ) -> dict[str, Any] | None:
        """One UpdateItem; None when `condition` stopped it, else the new item ({} unless `return_new`)."""
        expression, all_names, all_values = update_expression(sets, removes)
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _to_item(key),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {**all_names, **(names or {})},
        }
        all_values.update(values or {})
        if all_values:
            request["ExpressionAttributeValues"] = _to_item(all_values)
        if condition:
            request["ConditionExpression"] = condition
        if return_new:
            request["ReturnValues"] = "ALL_NEW"
        try:
            answer = self._ddb.update_item(**request)
        except ClientError as exc:
            if condition and _failed_condition(exc):
                return None
            raise
        return _from_item(answer.get("Attributes") or {})

    # ------------------------------------------------------------------ writes of the ingest path

    def event_key(self, rec: EventRecord) -> tuple[str, str]:
        return rec.entity, event_sort_key(rec.event_time, rec.event_id, rec.timed)

    def put_event(
        self,
        rec: EventRecord,
        envelope: bytes | None,
        envelope_key: str | None = None,
        *,
        in_archive: bool = False,
    ) -> PutOutcome:
        """Write the event once, with its packed envelope (or the claim check's key). A second write of
        the same event is a duplicate: nothing is written, and the stored item comes back so that the
        caller can repair what follows it."""
        expires = int(time.time()) + self.event_ttl_days * 86_400 if self.event_ttl_days else None
        values = event_item(
            rec,
            envelope=envelope,
            envelope_key=envelope_key,
            in_archive=in_archive,
            parent_shards=self.parent_shards,
            expires_at=expires,
        )
        try:
            self._ddb.put_item(
                TableName=self.table_name,
                Item=_to_item(values),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise
            return PutOutcome(stored=False, existing=_from_item(exc.response.get("Item") or {}))
        return PutOutcome(stored=True)

    def apply_state(self, rec: EventRecord) -> bool:
        """Make this event the entity's state unless a newer one is already there.

        Deliveries arrive out of order; the condition keeps the state at the newest event (ties on
        time broken by event id, so every writer agrees). Re-applying the same event is harmless.
        Absent values are left alone: a later event that omits a known id must not erase it.
        Returns False when a newer event was already applied.
        """
        if rec.entity_kind in STATELESS_KINDS:
            return True
        written = self._update(
            {"pk": rec.entity, "sk": STATE_SK},
            state_fields(rec, parent_shards=self.parent_shards),
            condition="attribute_not_exists(#last_event_time) OR #last_event_time < :last_event_time"
            " OR (#last_event_time = :last_event_time AND #last_event_id <= :last_event_id)",
        )
        return written is not None

    def put_quarantine(self, **fields: Any) -> None:
        """Record a quarantined delivery with its envelope (quarantine_item's fields), so that it can be
        listed and replayed. A redelivery of the same body overwrites the same item."""
        self._ddb.put_item(TableName=self.table_name, Item=_to_item(quarantine_item(**fields)))

    def mark_quarantine_stored(self, digest: str, event_id: str) -> None:
        """A replay stored the quarantined body as an event: say so on the quarantine item."""
        self._update({"pk": f"Q#{digest}", "sk": QUARANTINE_SK}, {"replayed_as": event_id, "replayed_at": _now_iso()})

    # ------------------------------------------------------------------ recordings

    def recording_state(self, call_id: str) -> dict[str, Any]:
        """The recording attributes of a call's state (empty when nothing is known)."""
        return self._recording_attributes(entity_key("CALL", call_id), STATE_SK, "recording_url") or {}

    def set_recording(self, call_id: str, **attributes: Any) -> None:
        """Set recording_* attributes on a call's state, creating the item if the call is not known
        yet (the state's event fields are then filled by the first event)."""
        self.update_recording(call_id, **attributes)

    def update_recording(
        self,
        call_id: str,
        *,
        remove: tuple[str, ...] = (),
        unless_status: str | None = None,
        **attributes: Any,
    ) -> bool:
        """Set (and `remove`) recording_<name> attributes of a call's state, creating it if the call is not
        known yet. With `unless_status`, nothing is written when the recording already has that status: a
        failed attempt must never overwrite "archived". Returns False when the condition stopped it."""
        key = {"pk": entity_key("CALL", call_id), "sk": STATE_SK}
        return self._update_recording(key, remove, unless_status, attributes, must_exist=False)

    def event_recording_state(self, pk: str, sk: str) -> dict[str, Any] | None:
        """The recording attributes of an event whose recording has no call id to be filed under (a
        call notification naming only its case); None when the event is not stored."""
        return self._recording_attributes(pk, sk)

    def _recording_attributes(self, pk: str, sk: str, *more: str) -> dict[str, Any] | None:
        """The recording_* attributes (and `more`) of an item, read consistently; None when there is no
        item (pk is read too so that an item without any of them still answers {})."""
        answer = self._ddb.get_item(
            TableName=self.table_name,
            Key=_to_item({"pk": pk, "sk": sk}),
            ProjectionExpression=", ".join(("pk", *RECORDING_ATTRIBUTES, *more)),
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
        pk: str,
        sk: str,
        *,
        remove: tuple[str, ...] = (),
        unless_status: str | None = None,
        **attributes: Any,
    ) -> bool:
        """update_recording for the recording of an event (see event_recording_state). Only an existing
        event is updated (False otherwise): the event item is written once, by put_event."""
        return self._update_recording({"pk": pk, "sk": sk}, remove, unless_status, attributes, must_exist=True)

    def _update_recording(
        self,
        key: Mapping[str, str],
        remove: tuple[str, ...],
        unless_status: str | None,
        attributes: Mapping[str, Any],
        *,
        must_exist: bool,
    ) -> bool:
        sets = {f"recording_{k}": v for k, v in attributes.items()}
        sets["recording_updated_at"] = _now_iso()
        conditions = ["attribute_exists(pk)"] if must_exist else []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        if unless_status is not None:
            names["#recording_status"] = "recording_status"
            values[":unless_status"] = unless_status
            conditions.append("(attribute_not_exists(#recording_status) OR #recording_status <> :unless_status)")
        written = self._update(
            key,
            sets,
            removes=[f"recording_{k}" for k in remove],
            condition=" AND ".join(conditions) or None,
            names=names,
            values=values,
        )
        return written is not None

    # ------------------------------------------------------------------ reads

    def get_event(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self._get(pk, sk)

    def get_event_of(self, rec: EventRecord) -> dict[str, Any] | None:
        """The stored item of `rec`'s event (None when it is not stored)."""
        return self._get(*self.event_key(rec))

    def find_event(self, event_id: str) -> dict[str, Any] | None:
        """An event found by its id alone: a filtered Scan of the whole table (tests and an operator's
        one-off; every other reader knows the entity and uses get_event)."""
        for item in self._scan("item_type = :e AND event_id = :id", {":e": "event", ":id": event_id}):
            return item
        return None

    def get_state(self, kind: str, entity_id: str) -> dict[str, Any] | None:
        return self._get(entity_key(kind, entity_id), STATE_SK)

    def get_quarantine(self, digest: str) -> dict[str, Any] | None:
        return self._get(f"Q#{digest}", QUARANTINE_SK)

    def entity_events(self, kind: str, entity_id: str, **window: Any) -> Iterator[dict[str, Any]]:
        """The events of one entity (its partition), in time order; `window`: Window's fields."""
        return self._partition_events(entity_key(kind, entity_id), Window(**window))

    def phone_events(self, phone: str, **window: Any) -> Iterator[dict[str, Any]]:
        """The events of every entity whose state names this phone number, merged in time order."""
        return self._members_events("ByPhone", "phone_key", index_key("PHONE", phone), Window(**window))

    def case_events(self, case_id: str, **window: Any) -> Iterator[dict[str, Any]]:
        """The events of the case and of every entity filed under it, merged in time order."""
        return self._members_events("ByCase", "case_key", index_key("CASE", case_id), Window(**window))

    def workflow_members(self, workflow_id: str) -> Iterator[dict[str, Any]]:
        """States of the workflow itself and of every call, case and task filed under it."""
        keys = [index_key("WF", workflow_id, f"#{shard}") for shard in range(self.parent_shards)]
        yield from self._members("ByWorkflow", "wf_key", keys)

    def task_members(self, task_id: str) -> Iterator[dict[str, Any]]:
        """States of a dialer task and of every call and agent filed under it."""
        keys = [index_key("TASK", task_id, f"#{shard}") for shard in range(self.parent_shards)]
        yield from self._members("ByTask", "task_key", keys)

    def scan_events(
        self, first_day: str, last_day: str, *, segment: int = 0, total_segments: int = 1
    ) -> Iterator[dict[str, Any]]:
        """Every event item whose event day is in [first_day, last_day] (a parallel-capable Scan: the
        archive's rebuild after an outage longer than the stream keeps records)."""
        return self._scan(
            "item_type = :e AND event_time BETWEEN :a AND :b",
            {":e": "event", ":a": first_day, ":b": last_day + "\uffff"},
            segment=segment,
            total_segments=total_segments,
        )

    def scan_quarantine(
        self, first_day: str, last_day: str, *, segment: int = 0, total_segments: int = 1
    ) -> Iterator[dict[str, Any]]:
        """Every quarantine item received in [first_day, last_day]."""
        return self._scan(
            "item_type = :q AND received_at BETWEEN :a AND :b",
            {":q": "quarantine", ":a": first_day, ":b": last_day + "\uffff"},
            segment=segment,
            total_segments=total_segments,
        )

    # ------------------------------------------------------------------ read helpers

    def _partition_events(self, pk: str, window: Window) -> Iterator[dict[str, Any]]:
        low = f"{EVENT_SK_PREFIX}{window.start}" if window.start else f"{EVENT_SK_PREFIX}0"
        high = f"{EVENT_SK_PREFIX}{window.end}\uffff" if window.end else f"{EVENT_SK_PREFIX}\uffff"
        timed = self._query(
            None, "pk = :pk AND sk BETWEEN :lo AND :hi", {":pk": pk, ":lo": low, ":hi": high}, forward=window.forward
        )
        # Untimed events (EV#-#...) are filed at their receipt time: few, merged in by it.
        untimed = sorted(
            (
                item
                for item in self._query(
                    None, "pk = :pk AND begins_with(sk, :u)", {":pk": pk, ":u": f"{EVENT_SK_PREFIX}{UNTIMED}#"}
                )
                if window.holds(item)
            ),
            key=_time_order,
            reverse=window.newest_first,
        )
        return window.cut(heapq.merge(timed, untimed, key=_time_order, reverse=window.newest_first))

    def _members_events(self, index: str, key_name: str, key: str, window: Window) -> Iterator[dict[str, Any]]:
        streams: list[Iterator[dict[str, Any]]] = []
        whole = replace(window, limit=None)
        for hit in self._query(index, f"{key_name} = :k", {":k": key}):
            if str(hit["sk"]) == STATE_SK:
                streams.append(self._partition_events(str(hit["pk"]), whole))
            else:  # an event of a stateless kind, in the index itself
                item = self._get(str(hit["pk"]), str(hit["sk"]))
                if item and window.holds(item):
                    streams.append(iter([item]))
        return window.cut(heapq.merge(*streams, key=_time_order, reverse=window.newest_first))

    def _members(self, index: str, key_name: str, keys: list[str]) -> Iterator[dict[str, Any]]:
        for key in keys:
            hits = [{"pk": h["pk"], "sk": h["sk"]} for h in self._query(index, f"{key_name} = :k", {":k": key})]
            for start in range(0, len(hits), 100):
                items = self._batch_get(hits[start : start + 100])
                yield from sorted(items, key=lambda item: str(item.get("pk")))

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        pending: dict[str, Any] = {self.table_name: {"Keys": [_to_item(k) for k in keys]}}
        while pending:
            answer = self._ddb.batch_get_item(RequestItems=pending)
            found += [_from_item(item) for item in answer.get("Responses", {}).get(self.table_name, [])]
            pending = answer.get("UnprocessedKeys") or {}
        return found

    def _query(
        self,
        index: str | None,
        condition: str,
        values: Mapping[str, Any],
        *,
        forward: bool = True,
        limit: int | None = None,
        filter_expression: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": _to_item(values),
            "ScanIndexForward": forward,
        }
        if index:
            request["IndexName"] = index
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

    def _scan(
        self, filter_expression: str, values: Mapping[str, Any], *, segment: int = 0, total_segments: int = 1
    ) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": filter_expression,
            "ExpressionAttributeValues": _to_item(values),
        }
        if total_segments > 1:
            request.update({"Segment": segment, "TotalSegments": total_segments})
        while True:
            answer = self._ddb.scan(**request)
            for item in answer.get("Items", []):
                yield _from_item(item)
            if "LastEvaluatedKey" not in answer:
                return
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        answer = self._ddb.get_item(TableName=self.table_name, Key=_to_item({"pk": pk, "sk": sk}))
        item = answer.get("Item")
        return _from_item(item) if item else None

    # ------------------------------------------------------------------ scheduled sync (watermark, cursor, lease)

    def acquire_sync_lease(self, job: str, owner: str, *, now_ms: int, until_ms: int) -> dict[str, Any] | None:
        """Take the lease of a sync job, unless another run holds one that has not expired.

        One conditional write on the job's item (pk SYNC#<job>, sk SYNC): it succeeds when nobody
        holds the lease, when the holder's `lease_until` (epoch ms) has passed, or when `owner` holds
        it already. Returns the item (watermark, cursor, ...) on success, None when the lease is held."""
        return self._update(
            _sync_key(job),
            {"item_type": "sync", "lease_owner": owner, "lease_until": until_ms, "lease_taken_at": _now_iso()},
            condition="attribute_not_exists(#lease_owner) OR #lease_until < :now OR #lease_owner = :lease_owner",
            values={":now": now_ms},
            return_new=True,
        )

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
        removed = (["cursor"] if cursor is None else []) + (["lease_owner", "lease_until"] if release else [])
        written = self._update(
            _sync_key(job),
            sets,
            removes=removed,
            condition="#owner_now = :owner_now",
            names={"#owner_now": "lease_owner"},
            values={":owner_now": owner},
        )
        return written is not None

    def set_sync_watermark(self, job: str, watermark: str, *, now_ms: int) -> bool:
        """Set a sync job's watermark and drop its cursor (an operator's "start from here"), unless a
        run holds the lease. Returns False when one does."""
        written = self._update(
            _sync_key(job),
            {"item_type": "sync", "watermark": watermark, "updated_at": _now_iso()},
            removes=["cursor"],
            condition="attribute_not_exists(#owner) OR #until < :now",
            names={"#owner": "lease_owner", "#until": "lease_until"},
            values={":now": now_ms},
        )
        return written is not None

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


def _time_order(item: Mapping[str, Any]) -> tuple[str, str]:
    return str(item.get("event_time") or ""), str(item.get("event_id") or "")


def _limited(items: Iterable[dict[str, Any]], limit: int | None) -> Iterator[dict[str, Any]]:
    for count, item in enumerate(items):
        if limit is not None and count >= limit:
            return
        yield item
