"""What every webhook model shares: tolerant parsing and the facts the store needs.

A model validates a delivery just enough to know what it is about (its identifiers, its time, its
state). It never decides what is stored: the stored event is the body as received, unknown fields
and all, and no field of any model is required. `read_facts` is the one way the ingest path reads a
body: a value a field cannot take is left out of the facts (and named in `unreadable`), never a
reason to refuse the delivery.
"""

from __future__ import annotations

import math
import re
import sys
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any, ClassVar, TypeVar, cast

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from airudder_ingest.models.record import FactFields

# The entity of an event that names none of what its callback is about: the event itself, keyed by
# its event id (store.STATELESS_KINDS: no state item).
FALLBACK_KIND = "DELIVERY"
# A body whose fields still fail after this many rounds of dropping them is read as naming nothing.
MAX_READ_ROUNDS = 3


def _scalar_text(value: Any) -> str | None:
    """An identifier or label as text. Numbers become their digits (no float ".0"); anything that
    is not a string or a finite number raises ValueError, which leaves the fact unread."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        raise ValueError("a boolean is not an identifier or a label")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return str(int(value)) if value.is_integer() else repr(value)
    raise ValueError(f"a JSON {type(value).__name__} is not an identifier or a label")


# An identifier or label: text, numbers accepted as text, blank treated as absent.
Text = Annotated[str | None, BeforeValidator(_scalar_text)]

_INTEGER = re.compile(r"[+-]?\d+")


def _whole_number(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _INTEGER.fullmatch(text):
            return int(text)  # ValueError past Python's 4300-digit limit: unread, as any other
        value = float(text)  # ValueError for "abc"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise ValueError("not a whole number")


# A whole number that may arrive as a digit string.
Int = Annotated[int | None, BeforeValidator(_whole_number)]

# Where a number hides when `callee` (or the like) is an object, as in the Custom API push.
_NUMBER_KEYS = ("callee_number", "phone_number", "phoneNumber", "number", "mainNumber")


def _phone_text(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = next((value[k] for k in _NUMBER_KEYS if value.get(k) not in (None, "")), None)
    return _scalar_text(value)


# A phone number as sent (the pipeline normalises it): text or digits, or an object holding one.
Phone = Annotated[str | None, BeforeValidator(_phone_text)]


def _null_as_absent(value: Any) -> Any:
    return {} if value is None else value


# Before a nested object's model: JSON null reads as an absent (empty) object, not an unreadable one.
NullAsEmpty = BeforeValidator(_null_as_absent)


def alias(*names: str) -> Any:
    """A field that accepts any of AIRUDDER's spellings of one name."""
    return Field(default=None, validation_alias=AliasChoices(*names))


@dataclass(frozen=True)
class EventFacts(FactFields):
    """What a delivery is about, as far as the store is concerned: its entity and time, and the facts
    (FactFields, phone as sent; the pipeline normalises them into an EventRecord)."""

    entity_kind: str
    entity_id: str | None  # None: the event is its own entity (keyed by its event id)
    event_time: Any = None  # raw value as sent; normalised by the pipeline
    # Facts the model looks for but could not read: the id of what the callback is about when the body
    # lacks it (the event is then filed under a fallback entity), and fields whose value it could not take.
    unreadable: tuple[str, ...] = ()


class IdentifierMissing(ValueError):
    """A delivery that names none of the entities its callback is filed under. `facts` are the facts
    it does carry, filed under the event itself; `read_facts` stores it that way."""

    def __init__(self, message: str, facts: EventFacts | None = None) -> None:
        super().__init__(message)
        self.facts = facts or EventFacts(FALLBACK_KIND, None)


class WebhookModel(BaseModel):
    """Base of every webhook body: unknown fields are kept, numbers-as-strings accepted."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, str_strip_whitespace=True, defer_build=True)

    webhook_type: ClassVar[str]
    # AIRUDDER's name for the callback, for README and logs.
    title: ClassVar[str] = ""
    # False: only a JSON object is a delivery of this callback (anything else is quarantined).
    accepts_any_json: ClassVar[bool] = False

    def facts(self) -> EventFacts:
        raise NotImplementedError


Model = TypeVar("Model", bound=WebhookModel)


def variant(body: type[Model], name: str, webhook_type: str, title: str, doc: str | None = None) -> type[Model]:
    """The model `body` under a webhook type and title of its own: the same fields read the same way,
    filed as another callback. A subclass named `name` in the calling module (where ROUTES finds it)."""
    namespace = {
        "__module__": sys._getframe(1).f_globals["__name__"],
        "__qualname__": name,
        "__doc__": doc,
        "webhook_type": webhook_type,
        "title": title,
    }
    return cast(type[Model], types.new_class(name, (body,), exec_body=lambda ns: ns.update(namespace)))


def file_under(*chain: tuple[str, str, str | None], unreadable: tuple[str, ...] = (), **facts: Any) -> EventFacts:
    """Facts filed under the first (entity kind, fact name, id) of `chain` whose id the body carries.

    The first entry is what the callback is about: when the body lacks its id, its fact name is
    recorded as unreadable and the event goes to the next entry the body does carry. With none,
    IdentifierMissing (read_facts then files the event under itself, keeping `facts`).
    """
    about = chain[0][1]
    for position, (kind, _name, entity_id) in enumerate(chain):
        if entity_id:
            return EventFacts(kind, entity_id, unreadable=(*unreadable, about) if position else unreadable, **facts)
    names = " or ".join(name for _kind, name, _id in chain)
    kept = EventFacts(FALLBACK_KIND, None, unreadable=(*unreadable, about), **facts)
    raise IdentifierMissing(f"the body names no {names}", kept)


def read_facts(model: type[WebhookModel], value: Any) -> EventFacts:
    """What `value` is about, as far as `model` can tell; never raises for any JSON value.

    A field whose value the model cannot take (a number field holding "abc", an object where text
    is expected) is dropped from a copy of the body and the body validated again, a few rounds at
    most; each such field is named in `unreadable`. The stored event is the body as received either
    way. A body that names none of its callback's entities is filed under the event itself.
    """
    data: Any = value
    unreadable: list[str] = []
    for _ in range(MAX_READ_ROUNDS):
        try:
            parsed = model.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            locs = [tuple(err["loc"]) for err in errors]
            data, dropped = _without(data, locs)
            unreadable.extend(_field_name(model, loc) for loc in dropped)
            if not dropped:
                break
            continue
        try:
            facts = parsed.facts()
        except IdentifierMissing as missing:
            facts = missing.facts
        return replace(facts, unreadable=_unique(*unreadable, *facts.unreadable))
    return EventFacts(FALLBACK_KIND, None, unreadable=_unique(*unreadable) or ("body",))


def _unique(*names: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def _without(data: Any, locs: list[tuple[Any, ...]]) -> tuple[Any, list[tuple[Any, ...]]]:
    """A copy of `data` without the values at `locs` (error locations), and the locs dropped."""
    dropped: list[tuple[Any, ...]] = []
    # Last first, so that removing a list item leaves the other locations valid.
    for loc in sorted(set(locs), key=lambda loc: [(str(type(p)), p) for p in loc], reverse=True):
        if loc and _holds(data, loc):
            data = _removed(data, list(loc))
            dropped.append(loc)
    return data, dropped


def _holds(value: Any, path: tuple[Any, ...]) -> bool:
    for part in path:
        in_object = isinstance(value, dict) and part in value
        if in_object or (isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)):
            value = value[part]
        else:
            return False
    return True


def _removed(value: Any, path: list[Any]) -> Any:
    """`value` without the item at `path`, copying only the containers on the way."""
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        if not rest:
            return {k: v for k, v in value.items() if k != head}
        return {**value, head: _removed(value[head], rest)}
    items = list(value)
    if not rest:
        del items[head]
    else:
        items[head] = _removed(items[head], rest)
    return items


def _field_name(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """The model's name for the field at an error location (its last named part)."""
    current: type[BaseModel] | None = model
    name = "body"
    for part in loc:
        if isinstance(part, int):
            continue
        found = _field_of(current, str(part)) if current is not None else None
        name = found[0] if found else str(part)
        current = _model_in(found[1].annotation) if found else None
    return name


def _field_of(model: type[BaseModel], key: str) -> tuple[str, Any] | None:
    for name, info in model.model_fields.items():
        spelled = info.validation_alias
        choices = spelled.choices if isinstance(spelled, AliasChoices) else [spelled]
        if key == name or key in choices:
            return name, info
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (directly, optionally, or as list items), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def http_link(value: Any) -> str | None:
    """A recording link worth queueing: a non-empty http(s) URL."""
    if isinstance(value, str) and value.strip().lower().startswith(("http://", "https://")):
        return value.strip()
    return None


def text_or_none(value: Any) -> str | None:
    """Text of a scalar read from a free-form part of a body (e.g. a message object); None for
    anything that is not a string or a finite number."""
    try:
        return _scalar_text(value)
    except ValueError:
        return None


def result_labels(*shapes: Any) -> dict[str, str]:
    """An agent's custom results as title -> value, from either shape AIRUDDER sends
    `customizeResults` in: an object (dialer AgentStatus push) or a list of {title, groupName,
    value} (PDS call record) [3P]. Blank values are left out; other shapes give nothing."""
    labels: dict[str, str] = {}
    for shape in shapes:
        if isinstance(shape, Mapping):
            pairs = [(k, v) for k, v in shape.items()]
        elif isinstance(shape, list):
            pairs = [(item.get("title"), item.get("value")) for item in shape if isinstance(item, Mapping)]
        else:
            continue
        for title, value in pairs:
            key, text = text_or_none(title), text_or_none(value)
            if key and text:
                labels.setdefault(key, text)
    return labels
