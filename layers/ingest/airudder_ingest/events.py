"""Canonical form of a delivery, event ids, time and phone normalising.

Pure functions only: no AWS, no I/O. Everything that decides whether two deliveries are the same event
lives here, so that the webhook path, the replay and the scheduled sync agree on it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

# Unix times above this are milliseconds (1e11 seconds is the year 5138).
_MILLIS_THRESHOLD = 100_000_000_000
_OFFSET_RE = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def canonical_json(value: Any) -> str:
    """The one text form of a JSON value: sorted keys, no insignificant whitespace, UTF-8 kept.

    It may hold lone surrogates (a JSON escape such as "\\ud800" decodes to one): `utf8_text` makes it
    writable, `utf8_bytes` hashes it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def utf8_bytes(text: str) -> bytes:
    """UTF-8 of any Python string; a lone surrogate becomes its own 3 bytes (stable, for hashing only)."""
    return text.encode("utf-8", "surrogatepass")


def utf8_text(text: str) -> str:
    """`text` as something UTF-8 can hold: each lone surrogate becomes the escape `\\udXXX`. In JSON text
    (surrogates can only be inside strings there) that escape reads back as the same value."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def event_id(webhook_type: str, value: Any) -> str:
    """Stable id of an event: the same content posted to the same webhook type always gets the same id,
    whatever the key order or whitespace of the body."""
    digest = hashlib.sha256()
    digest.update(utf8_bytes(webhook_type))
    digest.update(b"\n")
    digest.update(utf8_bytes(canonical_json(value)))
    return digest.hexdigest()[:32]


def raw_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def shard_of(key: str, shards: int) -> int:
    """A stable small number for spreading one logical index key over several partitions."""
    return zlib.crc32(utf8_bytes(key)) % shards


def parse_offset(text: str) -> timezone:
    match = _OFFSET_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a UTC offset: {text!r}")
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


def to_utc(value: Any, naive_offset: timezone = UTC) -> datetime | None:
    """Normalise every timestamp form AIRUDDER uses to an aware UTC datetime.

    Accepts Unix seconds or milliseconds (as numbers or digit strings) and ISO-8601 text with `T` or
    a space, with `Z`, an offset, or no zone (then `naive_offset` applies). Empty values give None;
    anything else, and any time outside the years 1 to 9999 once in UTC (1e400, Infinity, NaN, a
    23-digit number, 9999-12-31T23:00-05:00), raises ValueError.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int | float):
        try:
            return _from_epoch(float(value))
        except OverflowError:  # an int past float's range
            raise ValueError("timestamp out of range") from None
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            return _from_epoch(float(text))
        iso = text.replace("Z", "+00:00").replace("z", "+00:00")
        try:
            parsed = datetime.fromisoformat(iso)
        except ValueError:
            raise ValueError("unrecognised timestamp") from None  # never the value: it may be anything
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=naive_offset)
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):  # year 0 or 10000 once moved to UTC
            raise ValueError("timestamp out of range") from None
    raise ValueError(f"unrecognised timestamp of type {type(value).__name__}")


def _from_epoch(number: float) -> datetime:
    if not math.isfinite(number):
        raise ValueError("timestamp out of range")
    seconds = number / 1000 if number >= _MILLIS_THRESHOLD else number
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):  # past what a datetime (or the platform's time_t) holds
        raise ValueError("timestamp out of range") from None


def iso_utc(moment: datetime) -> str:
    """Fixed-width UTC text that sorts like time: 2024-01-02T03:04:05.678Z (years 1 to 999 too: the C
    library's %Y does not pad them)."""
    moment = moment.astimezone(UTC)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        f"{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


def normalise_phone(value: Any, default_country_code: str = "") -> str | None:
    """E.164 where it can be told (`+` and digits), otherwise the value as sent, trimmed.

    `00` is the international prefix; a national number (leading 0) gets `default_country_code`
    when one is configured. Masked numbers (with `x`) and other oddities are kept as sent, so that
    they still group together.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    compact = re.sub(r"[\s\-().]", "", text)
    if re.fullmatch(r"\+\d{6,15}", compact):
        return compact
    if re.fullmatch(r"00\d{6,15}", compact):
        return "+" + compact[2:]
    if re.fullmatch(r"0\d{5,14}", compact) and default_country_code:
        return "+" + default_country_code.lstrip("+") + compact[1:]
    if re.fullmatch(r"[1-9]\d{9,14}", compact):
        return "+" + compact
    return text
