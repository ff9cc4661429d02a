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
from typing import Any, NamedTuple

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
        return _text_to_utc(value.strip(), naive_offset)
    raise ValueError(f"unrecognised timestamp of type {type(value).__name__}")


def _text_to_utc(text: str, naive_offset: timezone) -> datetime:
    """to_utc of a non-empty text: epoch digits, or ISO-8601."""
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


# Phone numbers. The rule (README "Phone numbers"): `+` or `00` starts an international number; bare
# digits that start with the configured country code are international when what follows the code
# has the shape of that country's national numbers and the whole has not (or is too long to be
# national); any other bare digits are national: one trunk prefix dropped, the configured code
# prefixed. Masked numbers and anything with other characters are kept as sent, and so are bare
# digits when no country is configured. `phonenumbers` would decide the same way for the countries
# below (tests/unit/base/test_phone_numbers.py holds us to it), but its import costs 40-50 ms per cold start.


class _NumberingPlan(NamedTuple):
    national: str  # shape (length and leading digits) of a national significant number, a regex
    longest: int  # digits in the longest national number: a longer one cannot be national
    trunk: str  # the prefix dialled before a national number inside the country, a regex


# From libphonenumber's metadata (phonenumbers 9.0.43, general descriptions), ASCII digits only.
_NUMBERING_PLANS: dict[str, _NumberingPlan] = {
    # NANP: always 10 digits, so 1 + 10 digits is international and 10 digits national.
    "1": _NumberingPlan(r"[2-9][0-9]{9}|3[0-9]{6}", 10, "1"),
    # Mexico: 10 digits since 2019; the old mobile `1` after 52 and the old prefixes 01/044/045 are
    # dropped below, so the same line keeps one key.
    "52": _NumberingPlan(r"[2-9][0-9]{9}", 10, "0(?:[12]|4[45])?"),
    # Indonesia: 7 to 12 digits, and any 9 to 11 digits may be national (areas 062x start with 62):
    # 62 + 10 or 11 digits (or a 12-digit mobile, 8…) is international, 62 + 9 digits a national number,
    # as libphonenumber has it.
    "62": _NumberingPlan(
        r"00[1-9][0-9]{9,14}|(?:[1-36]|8[0-9]{5})[0-9]{6}|00[0-9]{9}|[1-9][0-9]{8,10}|[2-9][0-9]{7}", 17, "0"
    ),
    "63": _NumberingPlan(r"(?:[2-7]|9[0-9])[0-9]{8}|2[0-9]{5}|(?:1800|8)[0-9]{7,9}", 13, "0"),
    # China: 7 to 12 digits; national numbers that start with 86 have 7 or 8.
    "86": _NumberingPlan(
        r"(?:(?:1[03-689]|2[0-9])[0-9]{2}|6)[0-9]{8}|1[0-9]{10}|[126][0-9]{6}(?:[0-9](?:[0-9]{2})?)?"
        r"|86[0-9]{5,6}|(?:[3-579][0-9]|8[0-57-9])[0-9]{5,9}",
        12,
        "0",
    ),
    # India: 10 digits (mobiles may start with 91), special numbers 8 to 13 starting with 1.
    "91": _NumberingPlan(r"(?:000800|[2-9][0-9]{2})[0-9]{7}|1[0-9]{7,12}", 13, "0"),
}
# Any other country: national numbers of 6 to 10 digits, so 11 or more starting with the code are
# international.
_ANY_PLAN = _NumberingPlan(r"[1-9][0-9]{5,9}", 10, "0")

_PHONE_SEPARATORS = re.compile(r"[\s\-./()]")
_TRUNK_MARK = re.compile(r"\(\s*0\s*\)")  # "+62 (0)812...": the 0 is dialled only at home
_DIGITS = re.compile(r"[0-9]+")
_E164_DIGITS = range(6, 16)


def normalise_phone(value: Any, default_country_code: str = "") -> str | None:
    """E.164 where the number can be told, otherwise the value as sent, trimmed (None when empty).

    Masked numbers (`x`, `*`) and anything else that is not digits and separators are kept as sent,
    so that they still group together; no digit is ever made up or changed.
    """
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a number sent as a JSON number
    text = str(value).strip()
    if not text:
        return None
    compact = _PHONE_SEPARATORS.sub("", _TRUNK_MARK.sub("", text))
    if compact.startswith("+"):
        e164 = _international(compact[1:])
    elif compact.startswith("00"):
        e164 = _international(compact[2:])
    elif default_country_code and _DIGITS.fullmatch(compact):
        e164 = _national(compact, default_country_code.lstrip("+"))
    else:
        e164 = None
    return e164 or text


def _international(digits: str) -> str | None:
    if not _DIGITS.fullmatch(digits):
        return None
    for code, plan in _NUMBERING_PLANS.items():
        if digits.startswith(code):
            return _e164(code, _without_trunk(plan, digits[len(code) :]))
    return _e164("", digits)


def _national(digits: str, country_code: str) -> str | None:
    plan = _NUMBERING_PLANS.get(country_code, _ANY_PLAN)
    if digits.startswith(country_code):
        rest = _without_trunk(plan, digits[len(country_code) :])
        if len(digits) > plan.longest or (
            not re.fullmatch(plan.national, digits) and re.fullmatch(plan.national, rest)
        ):
            return _e164(country_code, rest)
    return _e164(country_code, _without_trunk(plan, digits))


def _without_trunk(plan: _NumberingPlan, number: str) -> str:
    """The number without its trunk prefix, unless only the prefixed form looks like a national number."""
    prefix = re.match(plan.trunk, number)
    if not prefix or prefix.end() == len(number):
        return number
    rest = number[prefix.end() :]
    if re.fullmatch(plan.national, number) and not re.fullmatch(plan.national, rest):
        return number
    return rest


def _e164(country_code: str, number: str) -> str | None:
    digits = country_code + number
    if digits.startswith("52") and re.fullmatch(r"1[0-9]{10}", digits[2:]):
        digits = "52" + digits[3:]  # Mexico's mobile `1`, abolished in 2019: the same line without it
    if digits.startswith("0") or len(digits) not in _E164_DIGITS:
        return None
    return "+" + digits
