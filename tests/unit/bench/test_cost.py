"""The bench's DynamoDB metering rules (bench/common.py, bench/cost.py): the cost figure rests on them."""

import json
from typing import Any

from bench.common import IndexSpec, index_write_units, item_size, write_units
from bench.cost import delivery_bill, delivery_write_units

TABLE_KEYS = ("pk", "sk")
BY_PHONE = IndexSpec("ByPhone", ("phone_key",), "KEYS_ONLY")
BY_CASE = IndexSpec("ByCase", ("case_key",), "KEYS_ONLY")
WITH_STATUS = IndexSpec("ByPhoneStatus", ("phone_key",), "INCLUDE", ("status",))


def _state(**values: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": "CALL#c1"}, "sk": {"S": "STATE"}, **{k: {"S": v} for k, v in values.items()}}


def test_item_size_counts_names_and_values() -> None:
    item: dict[str, dict[str, Any]] = {
        "pk": {"S": "CALL#c1"},
        "n": {"N": "12345"},
        "b": {"B": b"\x00" * 10},
        "ok": {"BOOL": True},
    }
    # pk 2+7, n 1+(3+1), b 1+10, ok 2+1
    assert item_size(item) == 9 + 5 + 11 + 3
    assert write_units(1024) == 1 and write_units(1025) == 2 and write_units(0) == 1


def test_an_item_outside_the_index_before_and_after_writes_nothing() -> None:
    assert index_write_units(None, _state(status="x"), TABLE_KEYS, BY_PHONE) == []
    assert index_write_units(_state(status="x"), _state(status="y"), TABLE_KEYS, BY_PHONE) == []


def test_entering_or_leaving_an_index_is_one_write() -> None:
    assert index_write_units(None, _state(phone_key="PHONE#+1"), TABLE_KEYS, BY_PHONE) == [1]
    assert index_write_units(_state(status="x"), _state(phone_key="PHONE#+1"), TABLE_KEYS, BY_PHONE) == [1]
    assert index_write_units(_state(phone_key="PHONE#+1"), _state(status="x"), TABLE_KEYS, BY_PHONE) == [1]


def test_a_changed_index_key_is_two_writes() -> None:
    before, after = _state(phone_key="PHONE#+1"), _state(phone_key="PHONE#+2")
    assert index_write_units(before, after, TABLE_KEYS, BY_PHONE) == [1, 1]


def test_a_changed_projected_attribute_is_one_write_and_an_unprojected_one_none() -> None:
    before, after = _state(phone_key="PHONE#+1", status="a"), _state(phone_key="PHONE#+1", status="b")
    assert index_write_units(before, after, TABLE_KEYS, WITH_STATUS) == [1]
    assert index_write_units(before, after, TABLE_KEYS, BY_PHONE) == []


def test_an_index_write_is_metered_on_its_entry() -> None:
    big = _state(phone_key="PHONE#+1", status="s" * 1500)
    assert index_write_units(None, big, TABLE_KEYS, WITH_STATUS) == [2]  # status is projected
    assert index_write_units(None, big, TABLE_KEYS, BY_PHONE) == [1]  # keys only


def test_an_update_is_metered_on_the_larger_item() -> None:
    event = {"pk": {"S": "CALL#c1"}, "sk": {"S": "EV#1"}, "envelope": {"B": b"x" * 1500}}
    before = _state(phone_key="PHONE#+1", case_key="CASE#1", note="n" * 1100)
    after = _state(phone_key="PHONE#+1", case_key="CASE#1")
    known = delivery_write_units(event, before, after, TABLE_KEYS, [BY_PHONE, BY_CASE])
    assert known == {"event item": 2, "state item": 2}
    new = delivery_write_units(event, None, after, TABLE_KEYS, [BY_PHONE, BY_CASE])
    assert new == {"event item": 2, "state item": 1, "state in ByPhone": 1, "state in ByCase": 1}


def test_the_bill_adds_every_line() -> None:
    bill = delivery_bill(
        wru=2.0,
        sqs_sends=0.5,
        claim_puts=0.0,
        webhook_billed_ms=40,
        webhook_memory_mb=256,
        archive_objects=0.004,
        archiver_invocations=0.001,
        archiver_billed_ms=500,
        archiver_memory_mb=512,
    )
    lines = bill["lines"]
    assert lines["api_gateway"] == 1.0 and lines["lambda_requests"] == 0.2
    assert lines["dynamodb_writes"] == 1.25 and lines["sqs"] == 0.2
    assert round(lines["archive_s3_put"], 4) == 0.02
    assert bill["usd_per_million_deliveries"] == round(sum(lines.values()), 2)


def test_stream_batches_close_at_the_batch_size_and_before_lambdas_payload_limit() -> None:
    from bench.ingest_bench import LAMBDA_PAYLOAD_BYTES, stream_batches

    small = [{"eventID": str(n)} for n in range(25)]
    assert [len(b) for b in stream_batches(small, 10)] == [10, 10, 5]
    # Records of ~1 MB each: six would pass 6 MB with the envelope, so a batch holds five.
    big = [{"eventID": str(n), "pad": "x" * 1024 * 1024} for n in range(12)]
    batches = stream_batches(big, 10_000)
    assert [len(b) for b in batches] == [5, 5, 2]
    assert all(len(json.dumps({"Records": b}, separators=(",", ":"))) <= LAMBDA_PAYLOAD_BYTES for b in batches)
