"""Streaming export of archived events (the `airudder-data export` command).

Rows come from the archive's JSON Lines objects (archive.ArchiveReader: one day after another, type after
type, one object at a time, each read as a gzip stream), so memory does not grow with the size of the
export: CSV and JSON Lines hold one row at a time, Parquet one row group (`PARQUET_ROW_GROUP` rows). The
archiver writes each event once, so each row is a distinct event. Within a day the order is by object
(stream batch), not by time; sort afterwards if needed. The file is written next to its final name and
renamed into place when complete, so an interrupted export leaves no half file behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, TextIO

# The columns of an archive line (archive.archive_line) that an export keeps: the event's facts and the
# body exactly as received (`body_encoding` says whether it is UTF-8 text or base64).
EVENT_COLUMNS = (
    "event_id",
    "webhook_type",
    "source",
    "event_time",
    "received_at",
    "time_source",
    "entity_kind",
    "entity_id",
    "status",
    "phone",
    "case_id",
    "workflow_id",
    "nodetask_id",
    "task_id",
    "call_id",
    "recording_url",
    "agent",
    "results",
    "unreadable",
    "left_out",
    "request_id",
    "body_encoding",
    "body",
)
QUARANTINE_COLUMNS = (
    "quarantine_id",
    "webhook_type",
    "route",
    "path",
    "reason",
    "http_status",
    "received_at",
    "size",
    "request_id",
    "body_encoding",
    "body",
)
FORMATS = ("csv", "jsonl", "parquet")
PARQUET_ROW_GROUP = 5_000


class ExportError(Exception):
    """The export cannot be written (format not available, bad output)."""


def plain(value: Any) -> Any:
    """A stored value as JSON/CSV wants it (DynamoDB numbers come back as Decimal)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(plain(v) for v in value)
    return value


def cell(value: Any) -> str | None:
    value = plain(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


# Output safety. A spreadsheet evaluates a cell that starts with = + - @ (after spaces, too), a tab, a
# carriage return or a NUL (OWASP "CSV Injection", ASVS 1.2.10): such a CSV cell gets a leading `'`, so it
# is read as text. A plain number (`-42`, `1.5`, an E.164 phone `+6281234567890`) is only a number to a
# spreadsheet, nothing it can run: it stays as it is.
_FORMULA_START = re.compile(r"[\t\r\x00]|\s*[=+\-@]")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
# What a terminal acts on rather than shows: C0 controls (ESC starts every escape sequence), DEL, C1
# controls (0x9b is a one-character CSI), and the bidirectional overrides that reorder what is shown.
_TERMINAL_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# JSON escapes C0 itself; these it writes raw (U+2028/2029 end a line in JavaScript).
_JSON_RAW_CONTROLS = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def spreadsheet_safe(value: str) -> str:
    """A CSV cell that a spreadsheet shows as text instead of evaluating."""
    if _FORMULA_START.match(value) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def terminal_safe(text: str) -> str:
    """Text for a terminal: every control character shown as an escape (`\\x1b`, `\\u202e`), not acted on."""
    return _TERMINAL_CONTROLS.sub(_escape, text)


def json_text(value: Any, **options: Any) -> str:
    """json.dumps (UTF-8 kept) with DEL, C1 and the other controls JSON writes raw as \\u escapes: the
    same JSON value, safe to print."""
    return _JSON_RAW_CONTROLS.sub(
        lambda found: f"\\u{ord(found.group()):04x}", json.dumps(value, ensure_ascii=False, **options)
    )


def _escape(found: re.Match[str]) -> str:
    char = found.group()
    return _SHORT_ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


class Sink(Protocol):
    def write(self, row: Mapping[str, str | None]) -> None: ...

    def close(self) -> None: ...


class CsvSink:
    """Every field quoted, so that a `;` or tab inside a value never starts a cell in a spreadsheet that
    splits on it; formula-like cells made text (`spreadsheet_safe`)."""

    def __init__(self, stream: TextIO, columns: tuple[str, ...]) -> None:
        self._writer = csv.writer(stream, quoting=csv.QUOTE_ALL)
        self._columns = columns
        self._writer.writerow(columns)

    def write(self, row: Mapping[str, str | None]) -> None:
        self._writer.writerow([spreadsheet_safe(row.get(c) or "") for c in self._columns])

    def close(self) -> None:
        return None


class JsonLinesSink:
    def __init__(self, stream: TextIO, columns: tuple[str, ...]) -> None:
        self._stream = stream
        self._columns = columns

    def write(self, row: Mapping[str, str | None]) -> None:
        self._stream.write(json_text({c: row.get(c) for c in self._columns}) + "\n")

    def close(self) -> None:
        return None


class ParquetSink:
    """Parquet through pyarrow (the optional extra `parquet`), one row group per PARQUET_ROW_GROUP rows.
    Every column is text, as in the CSV (event times are ISO-8601 UTC and sort as text)."""

    def __init__(self, path: Path, columns: tuple[str, ...], row_group: int = PARQUET_ROW_GROUP) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ExportError(
                "--format parquet needs pyarrow: pip install 'airudder-ingest[parquet]' (or pip install pyarrow)"
            ) from None
        self._pa = pa
        self._columns = columns
        self._row_group = row_group
        self._schema = pa.schema([(c, pa.string()) for c in columns])
        self._writer = pq.ParquetWriter(str(path), self._schema, compression="zstd")
        self._buffer: dict[str, list[str | None]] = {c: [] for c in columns}
        self._buffered = 0

    def write(self, row: Mapping[str, str | None]) -> None:
        for column in self._columns:
            self._buffer[column].append(row.get(column))
        self._buffered += 1
        if self._buffered >= self._row_group:
            self._flush()

    def _flush(self) -> None:
        if self._buffered:
            self._writer.write_table(self._pa.Table.from_pydict(self._buffer, schema=self._schema))
            self._buffer = {c: [] for c in self._columns}
            self._buffered = 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


class Progress:
    """A count on stderr while a long job runs: rewritten in place on a terminal, a line every few
    seconds otherwise (logs), nothing when quiet."""

    def __init__(
        self, verb: str, *, stream: TextIO | None = None, quiet: bool = False, every: float | None = None
    ) -> None:
        self.verb = verb
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.count = 0
        self.started = time.monotonic()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._every = every if every is not None else 0.5 if self._tty else 5.0
        self._last = self.started
        self._shown = False

    def step(self, label: str = "", n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if not self.quiet and now - self._last >= self._every:
            self._last = now
            self._show(label)

    def _show(self, label: str) -> None:
        rate = self.count / max(time.monotonic() - self.started, 1e-6)
        text = f"{self.verb} {self.count:,} ({rate:,.0f}/s){f' {label}' if label else ''}"
        if self._tty:
            self.stream.write(f"\r\x1b[2K{text}")
            self._shown = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self, message: str) -> None:
        if self.quiet:
            return
        if self._shown:
            self.stream.write("\r\x1b[2K")
        self.stream.write(f"{message} in {time.monotonic() - self.started:.1f} s\n")
        self.stream.flush()


def export_row(line: Mapping[str, Any], columns: tuple[str, ...]) -> dict[str, str | None]:
    return {column: cell(line.get(column)) for column in columns}


def export_rows(
    days: Iterable[str],
    lines_of_day: Callable[[str], Iterator[Mapping[str, Any]]],
    *,
    quarantined: bool,
) -> Iterator[tuple[str, dict[str, str | None]]]:
    """(day, row) for every event line (or, `quarantined`, every quarantine line) of the days."""
    columns = QUARANTINE_COLUMNS if quarantined else EVENT_COLUMNS
    for day in days:
        for line in lines_of_day(day):
            if bool(line.get("quarantine_id")) != quarantined:
                continue
            yield day, export_row(line, columns)


def write_export(
    rows: Iterable[tuple[str, Mapping[str, str | None]]],
    *,
    fmt: str,
    output: str,
    columns: tuple[str, ...],
    progress: Progress,
) -> int:
    """Write the rows to `output` ("-" = stdout, CSV and JSON Lines only); returns the row count."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    if output == "-":
        if fmt == "parquet":
            raise ExportError("--format parquet needs a file (--output FILE), not stdout")
        return _write_all(rows, _text_sink(fmt, sys.stdout, columns), progress)
    final = Path(output)
    if final.is_dir():
        raise ExportError(f"--output {output} is a directory")
    if not final.parent.exists():
        raise ExportError(f"--output {output}: no directory {final.parent}")
    partial = final.with_name(f".{final.name}.partial")
    try:
        if fmt == "parquet":
            count = _write_all(rows, ParquetSink(partial, columns), progress)
        else:
            with partial.open("w", encoding="utf-8", newline="") as stream:
                count = _write_all(rows, _text_sink(fmt, stream, columns), progress)
        os.replace(partial, final)
    finally:
        if partial.exists():
            partial.unlink()
    return count


def _text_sink(fmt: str, stream: TextIO | io.TextIOBase, columns: tuple[str, ...]) -> Sink:
    text: Any = stream
    return CsvSink(text, columns) if fmt == "csv" else JsonLinesSink(text, columns)


def _write_all(rows: Iterable[tuple[str, Mapping[str, str | None]]], sink: Sink, progress: Progress) -> int:
    count = 0
    try:
        for day, row in rows:
            sink.write(row)
            count += 1
            progress.step(day)
    finally:
        sink.close()
    return count
