"""What airudder-data writes is safe to open and to print, whatever AIRUDDER sent (issue 11, point 4).

Deliveries carrying spreadsheet formulas and terminal control sequences are posted through the local
gateway (the real ingest path); values the models cannot produce (they strip leading whitespace) are
stored straight into the table, as an older version or another writer could have; the table is then
archived as the archiver archives it (archive_support.py). Then, over HTTP against moto:
the CSV export makes every formula-like cell text and leaves numbers and E.164 phones alone, JSON Lines
and Parquet keep every value exactly, and the table output escapes every control character.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airudder_ingest.models.record import EventRecord
from airudder_ingest.storage.archive import Envelope
from airudder_ops.cli import main
from airudder_ops.export import EVENT_COLUMNS
from tools.local_aws.stack import LocalStack

from ..archive_support import archive_stack
from ..stack_support import EVENTS, Client, Inspector, cli_local

pytestmark = pytest.mark.integration

DAY = "2025-05-20"
DDE = "cmd|' /C calc'!A0"


@dataclass(frozen=True)
class Cell:
    """One hostile (or harmless) value in one exported column of one event."""

    column: str
    value: str
    through_gateway: bool = True


# Cells a spreadsheet would evaluate: the CSV must make them text.
FORMULAS = {
    "equals": Cell("call_id", f"={DDE}"),
    "plus": Cell("case_id", "+1+1"),
    "minus": Cell("phone", f"-1+1+{DDE}"),  # not a number: kept as sent, so it reaches the export
    "at": Cell("status", f"@SUM(1+1)*{DDE}"),
    "tab": Cell("status", "\t=1+1", through_gateway=False),
    "carriage_return": Cell("status", "\r=1+1", through_gateway=False),
    "spaces_then_equals": Cell("status", "  =1+1", through_gateway=False),
    "nul": Cell("status", "\x00=1+1", through_gateway=False),
}
# Cells that are only numbers to a spreadsheet: left exactly as they are.
NUMBERS = {
    "e164_phone": Cell("phone", "+6281234567890"),
    "negative_number": Cell("status", "-42"),
    "decimal": Cell("status", "-1.5"),
}
# Values that a terminal would act on: shown escaped in table output.
TERMINAL = {
    "esc_sequences": ("\x1b]0;owned\x07\x1b[2J\x1b[31mred", r"\x1b]0;owned\x07\x1b[2J\x1b[31mred"),
    "c1_csi": ("\x9b31mred", r"\x9b31mred"),
    "del": ("a\x7fb", r"a\x7fb"),
    "carriage_return": ("safe\rforged", r"safe\rforged"),
    "bidi_override": ("invoice\u202efdp.exe", r"invoice\u202efdp.exe"),
}


@dataclass
class Exported:
    event_ids: dict[str, str]  # class name -> event id
    bodies: dict[str, dict[str, Any]]  # event id -> the body posted (gateway events)
    csv: dict[str, dict[str, str]]
    jsonl: dict[str, dict[str, Any]]
    parquet: dict[str, dict[str, Any]]


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def call_body(name: str, **fields: str) -> dict[str, Any]:
    body = json.loads((EVENTS / "workflow/call/completed.json").read_text())
    body.pop("recLink")
    return (
        body
        | {
            "call_id": f"out-{name}",
            "case_id": f"case-{name}",
            "start_time": f"{DAY} 10:00:00",
            "end_time": f"{DAY} 10:01:00",
        }
        | fields
    )


BODY_FIELDS = {"call_id": "call_id", "case_id": "case_id", "phone": "callee", "status": "status"}


def stored_directly(inspector: Inspector, name: str, cell: Cell) -> str:
    event_id = hashlib.sha256(name.encode()).hexdigest()[:32]
    body = json.dumps({"call_id": f"out-{name}"})
    column: dict[str, Any] = {cell.column: cell.value}
    record = EventRecord(
        event_id=event_id,
        webhook_type="workflow.call",
        route="/webhooks/workflow/call",
        source="webhook",
        received_at=f"{DAY}T10:01:01.000Z",
        event_time=f"{DAY}T10:01:00.000Z",
        time_source="payload",
        entity_kind="CALL",
        entity_id=f"out-{name}",
        call_id=f"out-{name}",
        **column,
    )
    envelope = Envelope(path="/webhooks/workflow/call", body=body.encode()).pack()
    assert inspector.store().put_event(record, envelope).stored
    return event_id


@pytest.fixture(scope="module")
def exported(stack: LocalStack, client: Client, inspector: Inspector, tmp_path_factory: Any) -> Exported:
    event_ids: dict[str, str] = {}
    bodies: dict[str, dict[str, Any]] = {}
    cells = {**FORMULAS, **NUMBERS} | {f"terminal_{k}": Cell("status", v) for k, (v, _) in TERMINAL.items()}
    for name, cell in cells.items():
        if not cell.through_gateway:
            event_ids[name] = stored_directly(inspector, name, cell)
            continue
        body = call_body(name, **{BODY_FIELDS[cell.column]: cell.value})
        answer = client.post("/webhooks/workflow/call", body)
        assert answer.status_code == 200, (name, answer.text)
        event_ids[name] = answer.headers["x-event-id"]
        bodies[event_ids[name]] = body
    archive_stack(inspector.stack)

    folder = tmp_path_factory.mktemp("export")
    parsed: dict[str, dict[str, dict[str, Any]]] = {}
    for fmt in ("csv", "jsonl", "parquet"):
        path = folder / f"events.{fmt}"
        code, _, err = cli("export", "--day", DAY, "--format", fmt, "--output", str(path), *cli_local(stack))
        assert code == 0, err
        parsed[fmt] = {row["event_id"]: row for row in read(fmt, path)}
    return Exported(event_ids, bodies, parsed["csv"], parsed["jsonl"], parsed["parquet"])


def read(fmt: str, path: Path) -> Iterator[dict[str, Any]]:
    if fmt == "csv":
        with path.open(encoding="utf-8", newline="") as stream:
            yield from csv.DictReader(stream)
    elif fmt == "jsonl":
        yield from map(json.loads, path.read_text(encoding="utf-8").splitlines())
    else:
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()


@pytest.mark.parametrize("name", FORMULAS)
def test_csv_makes_formula_cells_text(exported: Exported, name: str) -> None:
    cell = FORMULAS[name]
    assert exported.csv[exported.event_ids[name]][cell.column] == "'" + cell.value


@pytest.mark.parametrize("name", NUMBERS)
def test_csv_leaves_numbers_and_e164_phones_as_they_are(exported: Exported, name: str) -> None:
    cell = NUMBERS[name]
    assert exported.csv[exported.event_ids[name]][cell.column] == cell.value


def test_jsonl_and_parquet_keep_every_value_exactly(exported: Exported) -> None:
    assert set(exported.jsonl) == set(exported.parquet) == set(exported.csv) == set(exported.event_ids.values())
    for event_id, row in exported.jsonl.items():
        assert exported.parquet[event_id] == row
        if event_id in exported.bodies:
            assert json.loads(row["body"]) == exported.bodies[event_id]  # the body, as posted
    for name, cell in {**FORMULAS, **NUMBERS}.items():
        assert exported.jsonl[exported.event_ids[name]][cell.column] == cell.value, name
    for name, (value, _) in TERMINAL.items():
        assert exported.jsonl[exported.event_ids[f"terminal_{name}"]]["status"] == value, name


def test_csv_changes_nothing_but_the_leading_quote(exported: Exported) -> None:
    for event_id, row in exported.csv.items():
        exact = exported.jsonl[event_id]
        for column in EVENT_COLUMNS:
            value = exact[column] or ""
            assert row[column] in (value, "'" + value), (event_id, column)


@pytest.mark.parametrize("name", TERMINAL)
def test_table_output_shows_control_characters_escaped(stack: LocalStack, exported: Exported, name: str) -> None:
    value, shown = TERMINAL[name]
    code, out, err = cli("call", f"out-terminal_{name}", *cli_local(stack))

    assert code == 0, err
    assert shown in out
    assert not [c for c in out if c != "\n" and unicodedata.category(c) in ("Cc", "Cf")], out

    code, out, _ = cli("call", f"out-terminal_{name}", "--json", *cli_local(stack))
    assert json.loads(out)["state"]["status"] == value  # JSON keeps the value, as \u escapes
    assert not [c for c in out if c != "\n" and unicodedata.category(c) in ("Cc", "Cf")], out


def test_an_error_line_shows_control_characters_escaped(stack: LocalStack, exported: Exported) -> None:
    code, out, err = cli("call", "\x1b[2J\x9bnone", *cli_local(stack))

    assert code == 1 and out == ""
    assert err == "airudder-data: not found: call \\x1b[2J\\x9bnone\n"
