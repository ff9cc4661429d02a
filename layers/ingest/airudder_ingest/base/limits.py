"""What a value must fit before it is written: DynamoDB's key, item and number limits, and UTF-8.

Everything we derive from a delivery (ids, keys, facts, numbers) passes through here on its way to
DynamoDB, so that no value AIRUDDER sends can make a write fail for good (which would answer 5xx on
every retry). Pure functions only: no AWS, no I/O.

  partition key   2,048 bytes   (the table's pk, and every index's partition key)
  sort key        1,024 bytes   (the table's sk, and every index's sort key: gsk, day_sort, member)
  item            400 KB        (names and values; we stay under MAX_ITEM_BYTES)
  number          38 significant digits, magnitude 1e-130 to 9.99...e125 (else written as text)
  string          UTF-8 (a lone surrogate is written as its JSON escape, events.utf8_text)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from airudder_ingest.base.events import utf8_bytes, utf8_text

MAX_PARTITION_KEY_BYTES = 2_048
MAX_SORT_KEY_BYTES = 1_024
DYNAMODB_ITEM_BYTES = 400 * 1_024
# What we let an item reach: room for DynamoDB's per-attribute overhead that `item_bytes` estimates.
MAX_ITEM_BYTES = 380 * 1_024
# A fact (status, phone, an id...) longer than this is left out of the items: it stays in the body.
MAX_FACT_BYTES = 16 * 1_024
# An id whose key would not fit is keyed by this prefix and its digest (the id itself stays in the body).
DIGEST_PREFIX = "sha256:"
MAX_NUMBER_DIGITS = 38
_NUMBER_MAX = Decimal("9.9999999999999999999999999999999999999E+125")
_NUMBER_MIN = Decimal("1E-130")


def fits_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def key_part(value: str, room: int) -> str:
    """`value` as part of a key with `room` bytes for it: itself when it fits and is UTF-8, else a stable
    digest of it (`sha256:` and 64 hex digits). The same value always gives the same part."""
    if fits_utf8(value) and len(value.encode()) <= room:
        return value
    return DIGEST_PREFIX + hashlib.sha256(utf8_bytes(value)).hexdigest()


def storable_number(value: int | float | Decimal) -> Decimal | str:
    """A number DynamoDB can hold as a number (Decimal), or its text when it cannot (too many digits,
    out of range, infinite or NaN)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        number = Decimal(repr(value))
    else:
        try:
            number = Decimal(value)
        except (InvalidOperation, ValueError):
            return str(value)
    if not number.is_finite():
        return str(value)
    if number.is_zero():
        return number
    digits = len(number.as_tuple().digits)
    magnitude = abs(number)
    if digits > MAX_NUMBER_DIGITS or magnitude > _NUMBER_MAX or magnitude < _NUMBER_MIN:
        return str(value) if not isinstance(value, int) else _int_text(value)
    return number


def _int_text(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # more digits than Python converts by default (4,300)
        return f"int of {value.bit_length()} bits"


# complexity: one branch per kind of value DynamoDB stores; split, the kinds would hide each other
def storable(value: Any) -> Any:
    """`value` as DynamoDB can take it: strings UTF-8, numbers in range (else text), floats as Decimal;
    inside lists and maps too."""
    if isinstance(value, str):
        return utf8_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, bytes | bytearray):
        return value
    if isinstance(value, int | float | Decimal):
        return storable_number(value)
    if isinstance(value, Mapping):
        return {utf8_text(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [storable(v) for v in value]
        return set(items) if isinstance(value, set | frozenset) else items
    return value


def value_bytes(value: Any) -> int:
    """DynamoDB's size of a value (an upper estimate for numbers and containers)."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes | bytearray):
        return len(value)
    if isinstance(value, int | float | Decimal):
        return 22
    if isinstance(value, Mapping):
        return 3 + sum(len(str(k).encode("utf-8", "surrogatepass")) + 1 + value_bytes(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return 3 + sum(1 + value_bytes(v) for v in value)
    return len(str(value))


def item_bytes(values: Mapping[str, Any]) -> int:
    return sum(len(name.encode()) + value_bytes(value) for name, value in values.items() if value is not None)


def fact_fits(value: Any) -> bool:
    """A fact small enough to be written as an attribute (bigger ones stay in the body only)."""
    return value is None or value_bytes(value) <= MAX_FACT_BYTES
