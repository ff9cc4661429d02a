"""Settings of the deployed functions, read once per cold start from the environment.

Every behaviour that rests on a guess about AIRUDDER is a named setting here, with our best default.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The table's stream keeps records 24 hours; the archiver must read an event item before TTL removes it,
# and an outage longer than the stream is repaired from the table (`airudder-data rebuild-archive`):
# a TTL, when set, is at least this many days (README, "Archive").
MIN_EVENT_TTL_DAYS = 3


class EnvSettings(BaseModel):
    """Settings read from the environment (`from_env`) or given by field name: each field's environment
    variable is its alias. Every settings class of the layer is one of these."""

    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """The settings from `environ` (default: os.environ); a variable that is not set keeps the default."""
        env: Mapping[str, str] = os.environ if environ is None else environ
        names = {f.validation_alias for f in cls.model_fields.values() if isinstance(f.validation_alias, str)}
        return cls.model_validate({name: env[name] for name in names if name in env})


def split_list(value: Any, separators: str = r",") -> Any:
    """A list setting written as text ("a,b"): its non-empty parts, stripped; anything else as it is (for
    a `mode="before"` field validator)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in re.split(separators, value) if part.strip())
    return value


class StoreSettings(EnvSettings):
    """What records an event: the table, the bucket (claim checks), the recordings queue, the rules that
    normalise facts. The webhook functions, the sync and a replay share them."""

    table_name: str = Field(alias="EVENTS_TABLE")
    bucket_name: str = Field(alias="ARCHIVE_BUCKET")
    recordings_queue_url: str = Field(default="", alias="RECORDINGS_QUEUE_URL")
    # Days an event item lives before DynamoDB TTL removes it (the archive keeps it); 0 keeps events for
    # ever; anything from 1 to MIN_EVENT_TTL_DAYS - 1 is raised to MIN_EVENT_TTL_DAYS.
    event_ttl_days: int = Field(default=0, alias="EVENT_TTL_DAYS", ge=0)
    # Country code used to turn national numbers (leading 0) into E.164; empty leaves them as sent.
    default_country_code: str = Field(default="", alias="DEFAULT_COUNTRY_CODE")
    # Offset applied to timestamps sent without a zone (AIRUDDER does not document one), e.g. "+08:00".
    naive_time_offset: str = Field(default="+00:00", alias="NAIVE_TIME_OFFSET")
    # Write shards of the per-workflow/per-task indexes (see README, "DynamoDB keys").
    parent_shards: int = Field(default=8, alias="PARENT_INDEX_SHARDS", ge=1, le=256)

    @field_validator("event_ttl_days")
    @classmethod
    def _outlives_the_stream(cls, days: int) -> int:
        return max(days, MIN_EVENT_TTL_DAYS) if days else 0


class IngestSettings(StoreSettings):
    """The webhook functions': the store's, and the HTTP edge's (token, size, signatures, decryption)."""

    token_secret_name: str = Field(alias="WEBHOOK_TOKEN_SECRET")
    # How long a fetched token secret is trusted before Secrets Manager is asked again.
    token_cache_seconds: int = Field(default=300, alias="WEBHOOK_TOKEN_CACHE_SECONDS", ge=0)
    max_body_bytes: int = Field(default=1_048_576, alias="MAX_BODY_BYTES", gt=0)
    # Per-route callback signature checks and payload decryption: JSON objects keyed by webhook type or
    # route (patterns allowed), parsed once per cold start; empty = off everywhere (signing.py,
    # decryption.py, route_settings.py).
    signature_verification: str = Field(default="", alias="SIGNATURE_VERIFICATION")
    payload_decryption: str = Field(default="", alias="PAYLOAD_DECRYPTION")


@functools.cache
def get_settings() -> IngestSettings:
    return IngestSettings.from_env()
