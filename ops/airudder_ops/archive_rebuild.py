"""`airudder-data rebuild-archive`: the archive's missing lines written again from the table.

For an outage longer than the stream keeps records (24 h), or a batch the archiver gave up on (its
position on the on-failure queue): the event and quarantine items of the days asked for are read from
the table (one parallel-capable Scan) and compared with the ids the archive already holds, folder by
folder (area, webhook type, day); only the missing lines are written, one object per folder named from
their ids (archive.rebuild_object_name). Idempotent: a second run finds nothing missing and writes
nothing; a run stopped half way writes, the next time, the same names with the same ids.

Items received less than `settle` ago are left to the archiver (their stream records may still be on
their way to it); items marked `in_archive` are already archived (the archiver skips them too), and an
item that can never be archived (archiver.Unarchivable) is counted and named, never written.
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import IO, Any

from airudder_ingest.storage.archive import (
    ArchiveReader,
    ClaimChecks,
    json_line,
    line_place,
    partition_prefix,
    rebuild_object_name,
)
from airudder_ingest.streams.archiver import Unarchivable, item_line, line_id

Place = tuple[str, str, str]  # (area, webhook type, day)
# A folder's missing lines are gathered in a temporary file: in memory up to this size, then on disk.
SPOOL_BYTES = 1 << 20


@dataclass
class PlaceReport:
    area: str
    webhook_type: str
    day: str
    in_table: int = 0
    in_archive: int = 0  # of the table's items, the ones whose line the archive holds
    missing: int = 0
    key: str | None = None  # the object written (None: nothing missing, or a dry run)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RebuildReport:
    first_day: str
    last_day: str
    dry_run: bool
    places: list[PlaceReport] = field(default_factory=list)
    unsettled: int = 0  # received too recently: left to the archiver
    unarchivable: list[dict[str, str]] = field(default_factory=list)  # {"id", "reason"}

    @property
    def missing(self) -> int:
        return sum(p.missing for p in self.places)

    @property
    def written(self) -> list[str]:
        return [p.key for p in self.places if p.key]

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.first_day,
            "to": self.last_day,
            "dry_run": self.dry_run,
            "in_table": sum(p.in_table for p in self.places),
            "in_archive": sum(p.in_archive for p in self.places),
            "missing": self.missing,
            "objects_written": self.written,
            "unsettled": self.unsettled,
            "unarchivable": self.unarchivable,
            "folders": [p.as_dict() for p in self.places],
        }


class _Spool:
    """The missing lines of one folder, gzipped as they come (deterministic: mtime 0)."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (closed by the caller)
        self.gzip = gzip.GzipFile(fileobj=self.file, mode="wb", compresslevel=6, mtime=0)
        self.ids: list[str] = []

    def add(self, line_id: str, line: dict[str, Any]) -> None:
        self.gzip.write(json_line(line))
        self.ids.append(line_id)

    def finish(self) -> IO[bytes]:
        self.gzip.close()
        self.file.seek(0)
        return self.file


def table_items(store: Any, first_day: str, last_day: str, segments: int = 1) -> Iterator[dict[str, Any]]:
    """Every event item dated, and every quarantine item received, in [first_day, last_day]."""
    events = (store.scan_events(first_day, last_day, segment=n, total_segments=segments) for n in range(segments))
    quarantined = store.scan_quarantine(first_day, last_day)
    return chain(chain.from_iterable(events), quarantined)


def rebuild_archive(
    store: Any,
    bucket: str,
    s3: Any,
    first_day: str,
    last_day: str,
    *,
    dry_run: bool = False,
    settled_before: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> RebuildReport:
    """Write the archive's missing lines for [first_day, last_day] (see the module docstring).
    `settled_before` (ISO-8601 UTC): items received at or after it are left to the archiver."""
    claims = ClaimChecks(bucket, s3)
    report = RebuildReport(first_day, last_day, dry_run)
    folders = _Folders(ArchiveReader(bucket, s3), dry_run)
    for seen, item in enumerate(table_items(store, first_day, last_day), 1):
        if progress is not None and seen % 1000 == 0:
            progress(seen)
        line = _rebuild_line(item, claims, settled_before, report)
        if line is None:
            continue
        place = line_place(line)
        if first_day <= place[2] <= last_day:
            folders.compare(place, line, in_archive=bool(item.get("in_archive")))
    for place, spool in sorted(folders.spools.items()):
        key = partition_prefix(*place) + rebuild_object_name(spool.ids)
        s3.upload_fileobj(spool.finish(), bucket, key, ExtraArgs={"ContentType": "application/gzip"})
        spool.file.close()
        folders.places[place].key = key
    report.places = [folders.places[p] for p in sorted(folders.places)]
    return report


def _rebuild_line(
    item: dict[str, Any], claims: ClaimChecks, settled_before: str | None, report: RebuildReport
) -> dict[str, Any] | None:
    """A table item's archive line; None when the rebuild leaves it: received too recently (the archiver's
    still), or never archivable (on the report with its reason)."""
    if settled_before and str(item.get("received_at") or "") >= settled_before:
        report.unsettled += 1
        return None
    try:
        return item_line(item, claims)
    except Unarchivable as exc:
        ident = str(item.get("event_id") or item.get("quarantine_id"))
        report.unarchivable.append({"id": ident, "reason": str(exc)})
        return None


class _Folders:
    """The archive's folders a rebuild meets: the ids each holds (read once, when first needed), its
    counts, and the lines it misses (spooled, unless a dry run)."""

    def __init__(self, reader: ArchiveReader, dry_run: bool) -> None:
        self.reader = reader
        self.dry_run = dry_run
        self.known: dict[Place, set[str]] = {}
        self.places: dict[Place, PlaceReport] = {}
        self.spools: dict[Place, _Spool] = {}

    def compare(self, place: Place, line: dict[str, Any], *, in_archive: bool) -> None:
        """Count a table item's line in its folder; spool it when the folder does not hold it."""
        if place not in self.known:
            self.known[place] = {line_id(held) for held in self.reader.day_lines(place[2], place[1], place[0])}
            self.places[place] = PlaceReport(*place)
        counts = self.places[place]
        counts.in_table += 1
        ident = line_id(line)
        if in_archive or ident in self.known[place]:
            counts.in_archive += 1
            return
        counts.missing += 1
        self.known[place].add(ident)  # the same id twice in one run (a scan repeats nothing; cheap to be sure)
        if not self.dry_run:
            if place not in self.spools:
                self.spools[place] = _Spool()
            self.spools[place].add(ident, line)
