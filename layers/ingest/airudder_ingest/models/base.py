"""What every webhook model shares: tolerant parsing and the facts the store needs.

A model validates a delivery just enough to know what it is about (its identifiers, its time, its
state). It never decides what is stored: the stored event is the body as received, unknown fields
and all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        # Ids and names sent as numbers are kept as text, without a float's trailing ".0".
        return str(int(value)) if float(value).is_integer() else str(value)
    return value


# An identifier or label: text, numbers accepted as text, blank treated as absent.
Text = Annotated[str | None, BeforeValidator(_blank_to_none)]


def _lenient_int(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(float(text))
        except ValueError:
            return value
    return value


# A whole number that may arrive as a digit string.
Int = Annotated[int | None, BeforeValidator(_lenient_int)]


def alias(*names: str) -> Any:
    """A field that accepts any of AIRUDDER's spellings of one name."""
    return Field(default=None, validation_alias=AliasChoices(*names))


# Names seen, or likely, for the same thing across AIRUDDER payloads.
CALL_ID = ("call_id", "callid", "callId", "CallID", "callID")
TASK_ID = ("task_id", "taskId", "TaskID", "taskID", "taskid")
CASE_ID = ("case_id", "caseId", "caseid", "CaseID")
RECORDING = (
    "recLink", "rec_link", "record_url", "recording_url", "recordingUrl", "RecordingUrl",
    "record_link", "recording_link", "recordUrl", "recording",
)


@dataclass(frozen=True)
class EventFacts:
    """What a delivery is about, as far as the store is concerned."""

    entity_kind: str
    entity_id: str | None  # None: the event is its own entity (keyed by its event id)
    event_time: Any = None  # raw value as sent; normalised by the pipeline
    status: str | None = None
    phone: str | None = None  # as sent; normalised by the pipeline
    case_id: str | None = None
    workflow_id: str | None = None
    nodetask_id: str | None = None
    task_id: str | None = None
    call_id: str | None = None
    recording_url: str | None = None


class IdentifierMissing(ValueError):
    """A delivery that names nothing we can file it under."""


class WebhookModel(BaseModel):
    """Base of every webhook body: unknown fields are kept, numbers-as-strings accepted."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, str_strip_whitespace=True, defer_build=True)

    webhook_type: ClassVar[str]
    # AIRUDDER's name for the callback, for README and logs.
    title: ClassVar[str] = ""

    def facts(self) -> EventFacts:
        raise NotImplementedError


def first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def http_link(value: Any) -> str | None:
    """A recording link worth queueing: a non-empty http(s) URL."""
    if isinstance(value, str) and value.strip().lower().startswith(("http://", "https://")):
        return value.strip()
    return None
