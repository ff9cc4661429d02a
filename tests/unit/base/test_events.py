"""Canonical form, event ids, time and phone normalising."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airudder_ingest.base.events import (
    canonical_json,
    event_id,
    iso_utc,
    normalise_phone,
    parse_offset,
    shard_of,
    to_utc,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


def test_event_id_ignores_key_order_and_whitespace() -> None:
    # Given the same body sent twice, once compact and once pretty-printed with keys reversed
    body = {"workflow_id": "w1", "pds": {"type": "ContactStatus", "body": {"callid": "c1", "state": "HANGUP"}}}
    pretty = json.dumps(dict(reversed(list(body.items()))), indent=4)
    # When both are given ids
    # Then the ids are equal
    assert event_id("workflow.dialer", json.loads(pretty)) == event_id("workflow.dialer", body)


def test_event_id_differs_by_type_and_content() -> None:
    body = {"callid": "c1"}
    assert event_id("workflow.dialer", body) != event_id("workflow.call", body)
    assert event_id("workflow.dialer", body) != event_id("workflow.dialer", {"callid": "c2"})


@given(json_values)
def test_canonical_json_is_a_fixed_point(value: object) -> None:
    text = canonical_json(value)
    assert canonical_json(json.loads(text)) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1668998317, "2022-11-21T02:38:37.000Z"),
        ("1668998317236", "2022-11-21T02:38:37.236Z"),
        (1668998317236, "2022-11-21T02:38:37.236Z"),
        ("2025-04-15T06:41:09Z", "2025-04-15T06:41:09.000Z"),
        ("2025-04-15T14:41:09+08:00", "2025-04-15T06:41:09.000Z"),
        ("2025-04-15 14:41:09+08:00", "2025-04-15T06:41:09.000Z"),
        ("2025-04-15 06:41:09", "2025-04-15T06:41:09.000Z"),
    ],
)
def test_every_timestamp_form_becomes_utc(raw: object, expected: str) -> None:
    moment = to_utc(raw)
    assert moment is not None
    assert iso_utc(moment) == expected


def test_naive_times_take_the_configured_offset() -> None:
    moment = to_utc("2025-04-15 14:41:09", parse_offset("+08:00"))
    assert moment == datetime(2025, 4, 15, 6, 41, 9, tzinfo=UTC)


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_empty_times_are_absent(raw: object) -> None:
    assert to_utc(raw) is None


@pytest.mark.parametrize("raw", ["yesterday", True, {"t": 1}, "2025-13-45"])
def test_garbage_times_are_refused(raw: object) -> None:
    with pytest.raises(ValueError):
        to_utc(raw)


def test_offsets() -> None:
    assert parse_offset("-05:30") == timezone(-timedelta(hours=5, minutes=30))
    with pytest.raises(ValueError):
        parse_offset("8")


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)))
def test_iso_utc_sorts_like_time(moment: datetime) -> None:
    later = moment + timedelta(milliseconds=1)
    assert iso_utc(moment) < iso_utc(later)
    assert len(iso_utc(moment)) == 24


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("+8610081", "", "+8610081"),
        ("+62 812-3456-7890", "", "+6281234567890"),
        ("0062 812 3456 7890", "", "+6281234567890"),
        ("081234567890", "62", "+6281234567890"),
        ("081234567890", "", "081234567890"),
        ("81234567890", "62", "+6281234567890"),
        ("6281234567890", "62", "+6281234567890"),
        # Without a country, bare digits are kept as sent, not guessed.
        ("6281234567890", "", "6281234567890"),
        ("+6289xxxxxxxx89092", "", "+6289xxxxxxxx89092"),
        ("", "", None),
        (None, "", None),
        (6281234567890, "", "6281234567890"),
        (6281234567890, "62", "+6281234567890"),
    ],
)
def test_phone_numbers_become_e164_where_they_can(raw: object, country: str, expected: str | None) -> None:
    assert normalise_phone(raw, country) == expected


def test_shards_are_stable_and_in_range() -> None:
    assert shard_of("CALL#abc", 8) == shard_of("CALL#abc", 8)
    assert {shard_of(f"CALL#{i}", 8) for i in range(200)} == set(range(8))
