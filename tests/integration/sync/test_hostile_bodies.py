"""The scheduled sync against a tenant that sends hostile call records (issue 11): the simulator over
HTTP serves them as JSON literals (1e400, Infinity, a 400-digit call id, lone surrogates, a 3,000-character
call id, a 450,000-character status), the local stack's moto server stores them.

Once, any of these raised out of the run: the cursor stayed on the page, and every later run failed on it.
Now each record is kept (stored as an event, or quarantined with the reason), counted, and the run
finishes its windows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airudder_ingest.base.events import event_id
from airudder_ingest.storage.archive import body_of
from airudder_ingest.sync.client import clear_token_cache
from airudder_ingest.sync.job import webhook_body
from tools.local_aws.stack import LocalStack
from tools.simulator import RawJson
from tools.simulator.bodies import dump_json

from ..drills_support import same_json
from ..sync_support import CALL_TYPE, SyncRig, simulator, sync_quarantine

pytestmark = pytest.mark.integration

# One hostile change per call record: the fields as the tenant sends them.
HOSTILE: list[dict[str, Any]] = [
    {"end_time": RawJson("1e400")},  # parses to infinity
    {"end_time": RawJson("1e300"), "start_time": RawJson("Infinity")},
    {"end_time": RawJson('"12345678901234567890123"'), "start_time": RawJson("-1e17")},
    {"end_time": RawJson('"9999-12-31T23:59:59-01:00"'), "start_time": RawJson('"0001-01-01T00:00:00+01:00"')},
    {"call_id": RawJson("9" * 400)},  # a call id sent as a 400-digit integer
    {"hangupReason": RawJson('"1e400"'), "talk_duration": RawJson("1e400"), "nth_call": RawJson("NaN")},
    {"note": RawJson('"cut inside an emoji \\ud83d"'), "case_id": RawJson('"case-\\udc00"')},
    {"call_id": "c" * 3_000},  # keys hold 2,048 bytes (1,024 as a sort key)
    {"status": "x" * 450_000},  # items hold 400 KB
]


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


def test_hostile_records_are_kept_and_the_run_moves_on(stack: LocalStack) -> None:
    with simulator(workflows=1, calls_per_workflow=len(HOSTILE) + 3) as sim:
        calls = sim.dataset.calls()
        for call, fields in zip(calls, HOSTILE, strict=False):
            sim.tamper(call, **fields)
        rig = SyncRig(stack, sim, "hostile")

        report = rig.run()  # once, this raised on the first hostile record

        assert report.status == "done" and report.cursor is None and report.error is None
        assert report.watermark is not None
        state = rig.store.get_sync_state("hostile")
        assert state is not None and "cursor" not in state and state["last_run_quarantined"] == report.quarantined
        # Every record is kept: the ones stored as events, by their event id ...
        quarantined = sync_quarantine(rig)
        stored = 0
        for call in calls:
            record = json.loads(dump_json(sim.call_record(call)))  # as the sync's client reads it
            # A record read as a call is stored as its webhook body; one that is not, whole (sync.RecordMapping).
            body = webhook_body(record)
            event = rig.event(event_id(CALL_TYPE, body))
            if event is None:
                body = record
                event = rig.event(event_id(CALL_TYPE, body))
            if event is not None:
                stored += 1
                assert same_json(json.loads(body_of(rig.archived(event))), body)
            else:  # ... the others in quarantine, with the reason and the record as it came
                kept = [json.loads(body_of(rig.archived(q))) for q in quarantined]
                assert any(same_json(body, record) for body in kept), calls.index(call)
        assert stored + len(quarantined) == len(calls)
        assert report.new == stored and len({q["quarantine_id"] for q in quarantined}) == len(quarantined)
        assert all(q["reason"] and q["http_status"] == 400 for q in quarantined)
        # The values that fit nowhere in an item are left out of it, and the long call id is keyed by a digest.
        long_call = rig.store.get_state("CALL", "c" * 3_000)
        assert long_call is not None and long_call["call_id"] == "c" * 3_000
        huge_status = rig.store.get_state("CALL", calls[HOSTILE.index({"status": "x" * 450_000})].call_id)
        assert huge_status is not None and huge_status.get("status") != "x" * 450_000

        # The next run finds nothing left to do: no page is held back by a record.
        again = rig.run()
        assert again.status == "done" and again.cursor is None and again.quarantined == 0 and again.new == 0
