"""airudder-data without AWS: arguments, time bounds, the streaming writers, and the one-line AWS errors."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from hypothesis import given
from hypothesis import strategies as st

from airudder_ingest.storage.archive import Envelope
from airudder_ops import cli
from airudder_ops.export import (
    EVENT_COLUMNS,
    QUARANTINE_COLUMNS,
    CsvSink,
    ExportError,
    Progress,
    export_rows,
    json_text,
    spreadsheet_safe,
    terminal_safe,
    write_export,
)


def test_time_bounds_keep_days_and_turn_times_into_utc() -> None:
    assert cli.time_bound("2025-04-15") == "2025-04-15"
    assert cli.time_bound("2025-04-15T09:30:00+07:00") == "2025-04-15T02:30:00.000Z"
    assert cli.time_bound("2025-04-15 09:30:00") == "2025-04-15T09:30:00.000Z"  # no zone: UTC
    with pytest.raises(argparse.ArgumentTypeError):
        cli.time_bound("yesterday")


def test_days_between_includes_both_ends() -> None:
    assert cli.days_between("2024-02-28", "2024-03-01") == ["2024-02-28", "2024-02-29", "2024-03-01"]
    with pytest.raises(cli.CliError):
        cli.days_between("2024-03-01", "2024-02-28")


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "--output", "x.csv"],  # no day
        ["export", "--from", "2025-01-01", "--output", "x.csv"],  # --from without --to
        ["export", "--day", "2025-13-01", "--output", "x.csv"],  # not a day
        ["replay", "--call-id", "c", "--type", "workflow.call"],  # --type goes with --day
        ["phone", "+62812", "--since", "soon"],
        [],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == 2
    assert "usage: airudder-data" in capsys.readouterr().err


def test_connection_options_go_before_or_after_the_command() -> None:
    parser = cli.build_parser()
    before = parser.parse_args(["--table", "T", "--json", "call", "c1"])
    after = parser.parse_args(["call", "c1", "--table", "T", "--json"])
    neither = parser.parse_args(["call", "c1"])
    assert (before.table, before.json) == (after.table, after.json) == ("T", True)
    assert (neither.table, neither.json, neither.stack) == (None, None, None)


def items(count: int) -> Iterator[Mapping[str, Any]]:
    """Archive lines (archive.archive_line's shape): an event and a quarantined delivery per n."""
    for n in range(count):
        yield {
            "v": 2,
            "event_id": f"e{n}",
            "webhook_type": "workflow.call",
            "body_encoding": "utf-8",
            "body": '{"a":1}',
            "results": {"PTP": "yes"},
            "unreadable": ["phone"],
        }
        yield {
            "v": 2,
            "event_id": None,
            "quarantine_id": f"{n:032x}",
            "webhook_type": "workflow.call",
            "http_status": 400,
        }


def test_export_rows_pick_events_or_quarantined_deliveries() -> None:
    events = list(export_rows(["d"], lambda day: items(3), quarantined=False))
    held = list(export_rows(["d"], lambda day: items(3), quarantined=True))
    assert [row["event_id"] for _, row in events] == ["e0", "e1", "e2"]
    assert set(events[0][1]) == set(EVENT_COLUMNS) and set(held[0][1]) == set(QUARANTINE_COLUMNS)
    assert (events[0][1]["body"], events[0][1]["results"], events[0][1]["unreadable"]) == (
        '{"a":1}',
        '{"PTP":"yes"}',
        '["phone"]',
    )
    assert [row["quarantine_id"] for _, row in held] == [f"{n:032x}" for n in range(3)]
    assert held[0][1]["http_status"] == "400"


def test_csv_and_jsonl_files_appear_whole(tmp_path: Path) -> None:
    quiet = Progress("exported", quiet=True)
    for fmt in ("csv", "jsonl"):
        output = tmp_path / f"out.{fmt}"
        rows = export_rows(["d"], lambda day: items(5), quarantined=False)
        assert write_export(rows, fmt=fmt, output=str(output), columns=EVENT_COLUMNS, progress=quiet) == 5
        text = output.read_text()
        parsed = list(csv.DictReader(io.StringIO(text))) if fmt == "csv" else list(map(json.loads, text.splitlines()))
        assert [r["event_id"] for r in parsed] == [f"e{n}" for n in range(5)]
        assert parsed[0]["phone"] in ("", None)  # absent values stay empty
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.jsonl"]


def test_a_failed_export_leaves_no_file(tmp_path: Path) -> None:
    def broken(day: str) -> Iterator[Mapping[str, Any]]:
        yield from items(2)
        raise RuntimeError("connection lost")

    output = tmp_path / "out.csv"
    rows = export_rows(["d"], broken, quarantined=False)
    with pytest.raises(RuntimeError):
        write_export(rows, fmt="csv", output=str(output), columns=EVENT_COLUMNS, progress=Progress("x", quiet=True))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ExportError):
        write_export(iter([]), fmt="parquet", output="-", columns=EVENT_COLUMNS, progress=Progress("x", quiet=True))


def test_progress_goes_to_its_stream_and_ends_with_a_summary() -> None:
    stream = io.StringIO()
    progress = Progress("exported", stream=stream, every=0.0)
    for _ in range(3):
        progress.step("2025-04-15")
    progress.done("exported 3 events")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("exported 1 (") and lines[-1].startswith("exported 3 events in ")


def client_error(code: str, message: str = "m", operation: str = "GetItem") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def test_aws_failures_become_one_line() -> None:
    ctx = cli.Context(cli.build_parser().parse_args(["call", "c", "--table", "T", "--region", "eu-west-1"]))
    ctx._target = cli.Target(table="T", bucket="B")
    assert cli._aws_problem(client_error("ResourceNotFoundException"), ctx) == (
        "table 'T' not found in eu-west-1 (check --table or --stack)"
    )
    assert cli._aws_problem(client_error("NoSuchBucket"), ctx) == "bucket 'B' not found (check --bucket or --stack)"
    denied = cli._aws_problem(client_error("AccessDeniedException", "not allowed", "Query"), ctx)
    assert denied == "access denied to Query: not allowed"
    assert str(cli._aws_problem(client_error("ExpiredToken"), ctx)).startswith("AWS rejected the credentials")
    assert str(cli._aws_problem(NoCredentialsError(), ctx)).startswith("no AWS credentials")
    assert cli._aws_problem(ValueError("a bug"), ctx) is None  # not an AWS problem: a traceback


def test_readable_items_show_numbers_and_the_body_of_their_envelope() -> None:
    from decimal import Decimal

    ctx = cli.Context(cli.build_parser().parse_args(["call", "c", "--table", "T"]))
    ctx._target = cli.Target(table="T")  # no bucket: nothing to fetch here
    packed = Envelope(path="/p", body=b'{"b": [1, 2]}').pack()
    shown = ctx.readable({"envelope": packed, "size": Decimal("3"), "rate": Decimal("0.5")})
    assert shown == {"body": {"b": [1, 2]}, "size": 3, "rate": 0.5}
    # An encrypted route's event: the body it was read from is the decrypted one.
    secret = Envelope(path="/p", body=b"\x00cipher", decoded='{"plain":true}').pack()
    assert ctx.readable({"envelope": secret})["body"] == {"plain": True}  # type: ignore[index]
    assert ctx.body({"envelope": secret}) == {"plain": True}
    # Not UTF-8: shown as the base64 text the envelope keeps; a state has no envelope and no body.
    binary = Envelope(path="/p", body=b"\xff\xfe").pack()
    assert ctx.readable({"envelope": binary})["body"] == "//4="  # type: ignore[index]
    assert ctx.readable({"status": "answered"}) == {"status": "answered"}
    assert cli.readable_line({"body_encoding": "utf-8", "body": "not json"})["body"] == "not json"


# ---------------------------------------------------------------------------------------------- safe output

# A spreadsheet evaluates a cell whose first character is one of these, or whose first after spaces is =+-@.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\x00")


@given(st.text())
def test_no_csv_cell_starts_a_formula_and_only_a_quote_is_added(value: str) -> None:
    safe = spreadsheet_safe(value)
    assert safe in (value, "'" + value)
    starts = safe[:1] in FORMULA_START or safe.lstrip()[:1] in FORMULA_START[:4]
    assert not starts or re.fullmatch(r"[+-]?[0-9]+(\.[0-9]+)?", safe)


@pytest.mark.parametrize("number", ["+6281234567890", "-42", "+1", "-0.5", "12"])
def test_numbers_and_e164_phones_stay_numbers(number: str) -> None:
    assert spreadsheet_safe(number) == number


def test_a_separator_inside_a_value_never_starts_a_cell() -> None:
    # Spreadsheets in locales that split CSV on `;` still keep a quoted field whole.
    stream = io.StringIO()
    sink = CsvSink(stream, ("a", "b"))
    sink.write({"a": "ok;=1+1", "b": None})
    assert stream.getvalue().splitlines() == ['"a","b"', '"ok;=1+1",""']


@given(st.text())
def test_terminal_text_has_no_control_characters(value: str) -> None:
    shown = terminal_safe(value)
    assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", shown)
    if not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", value):
        assert shown == value  # text without controls is shown as it is


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_json_output_is_the_same_value_without_raw_controls(value: Any) -> None:
    text = json_text(value)
    assert json.loads(text) == value
    assert not re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", text)


@pytest.mark.usefixtures("moto")
def test_an_envelope_in_a_claim_check_is_read_from_the_bucket() -> None:
    import boto3

    from airudder_ingest.storage.archive import ClaimChecks, claim_key

    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="claims-bucket")
    key = claim_key("e1")
    ClaimChecks("claims-bucket", boto3.client("s3", region_name="us-east-1")).put(
        key, Envelope(path="/p", body=b'{"big": "yes"}').pack()
    )
    args = ["call", "c", "--table", "T", "--bucket", "claims-bucket", "--region", "us-east-1"]
    ctx = cli.Context(cli.build_parser().parse_args(args))
    assert ctx.readable({"event_id": "e1", "envelope_key": key}) == {
        "event_id": "e1",
        "envelope_key": key,
        "body": {"big": "yes"},
    }
    assert ctx.body({"envelope_key": key}) == {"big": "yes"}
    # Without a bucket the claim check cannot be read: the item is shown as it is.
    no_bucket = cli.Context(cli.build_parser().parse_args(["call", "c", "--table", "T", "--region", "us-east-1"]))
    assert no_bucket.readable({"envelope_key": key}) == {"envelope_key": key}
