"""Copy call recordings from AIRUDDER into the archive bucket (the logic of the recordings function).

In: a message of the recordings queue (see recording_queue.recording_request):
    {"url", "call_id", "entity", "event_id", "event_time", "event_sk", "webhook_type", "source", "request_id"}
Out: one object  recordings/<yyyy>/<mm>/<dd>/<call id>.<ext>  (the day of the event, UTC), and the call's
state item pointing at it (recording_status "archived", recording_s3_key, _size, _sha256, _content_type).
A message without a call id (a call notification naming only its case) is filed under its event instead:
recordings/<yyyy>/<mm>/<dd>/<entity kind>/<entity id>/<event id>.<ext>, the outcome on the event item.

The audio is streamed: read from the HTTP response a part at a time, hashed while the part goes up, and
uploaded by boto3's transfer manager as one PutObject when it is smaller than a part, else as a
multipart upload of `part_size` parts (equal parts of at most that size when Content-Length gives the
size), `upload_concurrency` at a time. At most about upload_concurrency + 2 parts are held in memory,
whatever the size of the recording.

Only http(s) links to hosts on an allow-list are fetched (exact host, or ".suffix" for subdomains; the
scheme's default port unless the entry names another, "host:port"), without user info, and every redirect
hop is checked the same way: a crafted payload cannot make the function fetch anything else. Names are
never resolved to check them; the host as written is what counts.

Each copy has a wall-clock deadline (RECORDING_COPY_TIMEOUT_SECONDS, and the invocation's time left):
every read waits at most the time left, and the copy's connections are shut down when it passes, so a
server dripping bytes cannot hold the function (CopyDeadline). The object's content type is the format
its first bytes show, else the declared type if it is an allowed audio type, else
application/octet-stream; a text document (an HTML page...) served as the recording is not archived.

Outcomes, recorded on the call as recording_status:
  archived       copied; a later message for the call is skipped without downloading
  refused        the link is not one we fetch (scheme, host, user info, redirect off the allow-list)
  link_expired   401/403/410: the signed link is no longer valid; a later sync can ask for a fresh one
  missing        404
  failed         another 4xx, a recording over the size limit, a text page instead of audio, or every
                 attempt failed (then the message goes to the dead-letter queue; `make redrive` brings
                 it back)
  retrying       an attempt failed (timeout, out of time, connection error, 408/425/429/5xx, truncated
                 transfer, storage error); SQS delivers the message again after a backoff
A failure never overwrites "archived". Logs carry the call id, the link's host and sizes: never the
link itself (signed links hold credentials), nor anything about the person called.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import ipaddress
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import SplitResult, quote, urljoin, urlsplit

import requests
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError
from urllib3.util import parse_url

from airudder_ingest.base import aws
from airudder_ingest.base.limits import key_part
from airudder_ingest.base.observability import delivery_log_keys
from airudder_ingest.base.settings import EnvSettings, split_list
from airudder_ingest.storage.store import EventStore, event_sort_key

logger = Logger(child=True)
metrics = Metrics()

RECORDINGS_PREFIX = "recordings"
MIB = 1024 * 1024
S3_MIN_PART_BYTES = 5 * MIB
S3_MAX_PART_BYTES = 5 * 1024 * MIB
S3_MAX_PARTS = 10_000
# Largest read from the HTTP response: a part up to this size is read in one go, into one buffer
# (what upload_fileobj does), instead of being joined from pieces.
READ_CHUNK_BYTES = 16 * MIB
MAX_URL_LENGTH = 4096
S3_READ_TIMEOUT_SECONDS = 120
# A presigned link lives at most 7 days (SigV4).
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
DEFAULT_ALLOWED_HOSTS = ("airudder.com", ".airudder.com", "127.0.0.1")
DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRYABLE_STATUSES = frozenset({408, 425, 429})
EXPIRED_STATUSES = frozenset({401, 403, 410})
MISSING_STATUSES = frozenset({404})

# Extension <-> content type of the audio formats a call platform may serve.
AUDIO_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "opus": "audio/opus",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "amr": "audio/amr",
    "webm": "audio/webm",
    "gsm": "audio/gsm",
    "au": "audio/basic",
    "wma": "audio/x-ms-wma",
    "aiff": "audio/aiff",
    "caf": "audio/x-caf",
}
_TYPE_EXTENSIONS: dict[str, str] = {
    **{content_type: ext for ext, content_type in AUDIO_TYPES.items() if ext not in {"oga"}},
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/mp3": "mp3",
    "audio/x-mpeg": "mp3",
    "audio/x-m4a": "m4a",
    "audio/x-flac": "flac",
    "audio/amr-wb": "amr",
    "audio/x-gsm": "gsm",
    "audio/x-aiff": "aiff",
}
# The content types an archived recording may have (what is served, mapped to one name per format);
# anything else is archived as application/octet-stream.
ALLOWED_AUDIO_TYPES: dict[str, str] = {served: AUDIO_TYPES[ext] for served, ext in _TYPE_EXTENSIONS.items()}
ARCHIVE_FALLBACK_TYPE = "application/octet-stream"
# Bytes looked at to tell what a file is (enough for every signature below).
SNIFF_BYTES = 512
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/unknown"})
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
# Whitespace, control characters and backslashes: parsers disagree about them, so links holding any
# of them are refused rather than interpreted.
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


# ---------------------------------------------------------------------------------------------- settings


def _parse_host_entry(raw: str) -> str:
    """One allow-list entry, normalised: "host.name", ".suffix.name" or an IP address, each optionally
    with ":port" ("[v6 address]:port"). Without a port an entry allows the scheme's default port only."""
    name, port = _entry_port(raw)
    host = _entry_host(name, raw)
    if port is None:
        return host
    return f"[{host}]:{int(port)}" if ":" in host else f"{host}:{int(port)}"  # a v6 address in brackets


def _entry_host(name: str, raw: str) -> str:
    """An allow-list entry's name, normalised: "host.name", ".suffix.name" or an IP address."""
    suffix = name.startswith(".")
    name = (name[1:] if suffix else name).rstrip(".")
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        if not name or not all(_HOST_LABEL.match(label) for label in name.split(".")):
            raise ValueError(f"not a host name, IP address or .suffix: {raw!r}") from None
        return f".{name}" if suffix else name
    if suffix:
        raise ValueError(f"an IP address cannot be a suffix: {raw!r}")
    return str(address)


def _entry_port(raw: str) -> tuple[str, str | None]:
    """An allow-list entry (lower case) as its name and its port (None when it names none)."""
    entry = raw.strip().lower()
    port: str | None = None
    if entry.startswith("["):  # [v6] or [v6]:port
        name, _, rest = entry[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"not a host name, IP address or .suffix: {raw!r}")
            port = rest[1:]
    elif entry.count(":") == 1:  # host:port (a bare v6 address has more colons)
        name, _, port = entry.partition(":")
    else:
        name = entry
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"not a port: {raw!r}")
    return name, port


def _split_entry(entry: str) -> tuple[str, int | None]:
    """A normalised allow-list entry as (host or .suffix, port or None)."""
    if entry.startswith("["):
        name, _, port = entry[1:].partition("]:")
        return name, int(port)
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        return name, int(port)
    return entry, None


class RecordingsSettings(EnvSettings):
    """Settings of the recordings function, from its environment (names are the aliases)."""

    table_name: str = Field(alias="EVENTS_TABLE")
    bucket_name: str = Field(alias="ARCHIVE_BUCKET")
    # Used to change a failed message's visibility; derived from the event's queue ARN when empty.
    queue_url: str = Field(default="", alias="RECORDINGS_QUEUE_URL")
    # Hosts links may point at, comma separated: "example.com" is that host only, ".example.com" any
    # subdomain of it; on the scheme's default port only, unless the entry names one ("example.com:8443").
    # Redirect targets must be on it too (add the storage host AIRUDDER redirects to).
    allowed_hosts: tuple[str, ...] = Field(default=DEFAULT_ALLOWED_HOSTS, alias="RECORDING_ALLOWED_HOSTS")
    # Recordings smaller than this go to S3 in one PutObject; larger ones in parts of at most this size
    # (as many parts, of equal size, when the size is known: balanced_part_size).
    part_size: int = Field(
        default=8 * MIB, alias="RECORDING_PART_SIZE_BYTES", ge=S3_MIN_PART_BYTES, le=S3_MAX_PART_BYTES
    )
    # Parts going up at once. A copy holds about this + 2 parts in memory (one read ahead, one being
    # read): 2 keeps a copy near 130 MiB at 8 MiB parts, within the function's MemorySize (>= 256).
    upload_concurrency: int = Field(default=2, alias="RECORDING_UPLOAD_CONCURRENCY", ge=1, le=10)
    # Larger recordings are not archived (status failed): a broken server cannot fill the bucket.
    max_bytes: int = Field(default=4 * 1024 * MIB, alias="RECORDING_MAX_BYTES", gt=0)
    connect_timeout: float = Field(default=5.0, alias="RECORDING_CONNECT_TIMEOUT_SECONDS", gt=0)
    # Longest wait for the next bytes of the response (not for the whole transfer).
    read_timeout: float = Field(default=30.0, alias="RECORDING_READ_TIMEOUT_SECONDS", gt=0)
    max_redirects: int = Field(default=3, alias="RECORDING_MAX_REDIRECTS", ge=0, le=10)
    # Deliveries of a message before it is given up (the queue's maxReceiveCount: keep them equal).
    max_attempts: int = Field(default=5, alias="RECORDING_MAX_ATTEMPTS", ge=1, le=1000)
    # Backoff after failed attempt n: base * 2^(n-1) seconds, at most max (SQS visibility timeout).
    retry_base_seconds: int = Field(default=30, alias="RECORDING_RETRY_BASE_SECONDS", ge=0, le=43_200)
    retry_max_seconds: int = Field(default=900, alias="RECORDING_RETRY_MAX_SECONDS", ge=0, le=43_200)
    # Wall-clock limit of one copy (connecting, headers and body): a server that drips its bytes is cut
    # here and the copy retried later. Each read waits at most the time left (and read_timeout).
    copy_timeout: float = Field(default=600.0, alias="RECORDING_COPY_TIMEOUT_SECONDS", gt=0)
    # A copy still running this close to the function's timeout is abandoned and retried.
    deadline_margin_seconds: float = Field(default=20.0, alias="RECORDING_DEADLINE_MARGIN_SECONDS", ge=0)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        value = split_list(value, r"[,\s]+")
        if isinstance(value, list | tuple):
            return tuple(_parse_host_entry(str(entry)) for entry in value)
        return value

    @model_validator(mode="after")
    def _parts_cover_max(self) -> RecordingsSettings:
        if self.part_size * S3_MAX_PARTS < self.max_bytes:
            raise ValueError("RECORDING_MAX_BYTES needs more than 10,000 parts of RECORDING_PART_SIZE_BYTES")
        return self


# ---------------------------------------------------------------------------------------------- links


class LinkRefused(Exception):
    """The link is not one this function fetches."""

    def __init__(self, reason: str, host: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.host = host


@dataclass(frozen=True)
class Link:
    url: str
    scheme: str
    host: str
    port: int


def _host_matches(host: str, name: str) -> bool:
    if name.startswith("."):
        return host.endswith(name) and len(host) > len(name)
    return host == name


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Exact match, or a subdomain of a ".suffix" entry, on any port of the entry; case-insensitive."""
    host = host.lower().rstrip(".")
    return any(_host_matches(host, _split_entry(entry)[0]) for entry in allowed)


def port_allowed(host: str, port: int, scheme: str, allowed: Iterable[str]) -> bool:
    """An entry of the host naming this port, or for the scheme's default port an entry without one."""
    host = host.lower().rstrip(".")
    default = port == DEFAULT_PORTS.get(scheme)
    return any(
        _host_matches(host, name) and (entry_port == port or (entry_port is None and default))
        for name, entry_port in map(_split_entry, allowed)
    )


def check_link(url: Any, allowed: Iterable[str]) -> Link:
    """The link, if it is one we fetch; LinkRefused otherwise. Nothing is resolved."""
    allowed = tuple(allowed)
    parts, port = _link_parts(url)
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise LinkRefused(f"scheme {scheme or '(none)'!r} is not fetched")
    host = _link_host(url, parts)
    if not host_allowed(host, allowed):
        raise LinkRefused(f"host {host[:100]} is not on the allow-list", host=host[:100])
    effective_port = port or DEFAULT_PORTS[scheme]
    # Never the Lambda runtime API, whatever the allow-list says (127.0.0.1 is on it for local runs).
    runtime_api = os.environ.get("AWS_LAMBDA_RUNTIME_API", "")
    if runtime_api and runtime_api.lower() in {f"{host}:{effective_port}", f"[{host}]:{effective_port}"}:
        raise LinkRefused("link points at the Lambda runtime API", host=host)
    if not port_allowed(host, effective_port, scheme, allowed):
        raise LinkRefused(f"port {effective_port} of {host[:100]} is not on the allow-list", host=host[:100])
    return Link(url=url, scheme=scheme, host=host, port=effective_port)


def _link_parts(url: Any) -> tuple[SplitResult, int | None]:
    """The link split into its parts, and its port; LinkRefused when it is not a plain, valid URL."""
    if not isinstance(url, str) or not url:
        raise LinkRefused("no link")
    if len(url) > MAX_URL_LENGTH:
        raise LinkRefused("link too long")
    if _UNSAFE_URL_CHARS.search(url):
        raise LinkRefused("link holds whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
        return parts, parts.port
    except ValueError as exc:
        raise LinkRefused(f"link is not a valid URL ({exc})") from None


def _link_host(url: str, parts: SplitResult) -> str:
    """The link's host (no trailing dot); LinkRefused when it has none, holds user info or is read
    differently by the HTTP client."""
    if not parts.netloc.isascii():
        raise LinkRefused("host is not ASCII")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise LinkRefused("link holds user info")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise LinkRefused("link has no host")
    _same_for_urllib3(url, host)
    return host


def _same_for_urllib3(url: str, host: str) -> None:
    """requests parses with urllib3: both must see the same host, or the check means nothing."""
    try:
        other = parse_url(url)
    except ValueError:
        raise LinkRefused("link is not a valid URL") from None
    if (other.host or "").lower().strip("[]").rstrip(".") != host or other.auth:
        raise LinkRefused("link is ambiguous")


# ---------------------------------------------------------------------------------------------- naming


def recording_day(event_time: str | None, fallback: datetime | None = None) -> datetime:
    """The UTC day a recording is filed under: its event's day."""
    if event_time:
        try:
            moment = datetime.fromisoformat(event_time.strip().replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    return fallback or datetime.now(UTC)


def recording_key(call_id: str, day: datetime, ext: str) -> str:
    """recordings/<yyyy>/<mm>/<dd>/<call id>.<ext>; the call id is percent-encoded where it must be."""
    return f"{RECORDINGS_PREFIX}/{day:%Y/%m/%d}/{_key_part(call_id)}.{ext}"


def event_recording_key(kind: str, entity_id: str, event_id: str, day: datetime, ext: str) -> str:
    """recordings/<yyyy>/<mm>/<dd>/<kind>/<entity id>/<event id>.<ext>: the recording of an event without
    a call id (e.g. recordings/2025/04/15/case/<case id>/<event id>.wav)."""
    folder = re.sub(r"[^a-z0-9_-]", "_", kind.lower()) or "_"
    return f"{RECORDINGS_PREFIX}/{day:%Y/%m/%d}/{folder}/{_key_part(entity_id)}/{_key_part(event_id)}.{ext}"


# Room for one id in an object key (S3 keys hold 1,024 bytes, and percent-encoding may triple an id):
# a longer id, or one that is not UTF-8, is named by its digest (limits.key_part), as in the table.
_KEY_PART_BYTES = 200


def _key_part(value: str) -> str:
    safe = quote(key_part(value, _KEY_PART_BYTES), safe="-_.~") or "_"
    return "%2E" + safe[1:] if safe.startswith(".") else safe


def media_type(header: str | None) -> str:
    """The media type of a Content-Type header, lower case without parameters ("" if unusable)."""
    value = (header or "").split(";", 1)[0].strip().lower()
    return value if _CONTENT_TYPE.match(value) else ""


def extension_and_type(url: str, content_type_header: str | None) -> tuple[str, str]:
    """The object's extension (from the link's path, else from the content type) and content type
    (from the response, else from the extension)."""
    path = urlsplit(url).path
    name = path.rsplit("/", 1)[-1]
    url_ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    served = media_type(content_type_header)
    ext = url_ext if url_ext in AUDIO_TYPES else _TYPE_EXTENSIONS.get(served, "bin")
    if served in _GENERIC_TYPES:
        served = AUDIO_TYPES.get(ext, "application/octet-stream")
    return ext, served


class NotARecording(Exception):
    """The first bytes of the response show a document (an HTML page, JSON...), not audio."""


# complexity: one test per audio signature, in the order they are tried; a flat list reads best
def audio_format(head: bytes) -> tuple[str, str] | None:
    """(extension, content type) of the audio file that starts with `head`, by its signature; None
    when none matches (a headerless format, or not audio)."""
    if head[:4] in {b"RIFF", b"RF64", b"BW64"} and head[8:12] == b"WAVE":
        return "wav", "audio/wav"
    if head[:3] == b"ID3":
        return "mp3", "audio/mpeg"
    if head[:4] == b"OggS":
        return ("opus", AUDIO_TYPES["opus"]) if b"OpusHead" in head[:128] else ("ogg", "audio/ogg")
    if head[:4] == b"fLaC":
        return "flac", "audio/flac"
    if head[:5] == b"#!AMR":  # "#!AMR\n" and "#!AMR-WB\n"
        return "amr", "audio/amr"
    if head[4:8] == b"ftyp":  # MP4 / M4A / 3GP family
        return "m4a", "audio/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: WebM / Matroska
        return "webm", "audio/webm"
    if head[:4] == b".snd":
        return "au", "audio/basic"
    if head[:4] == b"FORM" and head[8:12] in {b"AIFF", b"AIFC"}:
        return "aiff", "audio/aiff"
    if head[:4] == b"caff":
        return "caf", "audio/x-caf"
    if head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"):  # ASF
        return "wma", "audio/x-ms-wma"
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:  # ADTS sync word, layer 0
            return "aac", "audio/aac"
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06:  # MPEG audio frame sync, layer I-III
            return "mp3", "audio/mpeg"
    return None


def text_document(head: bytes) -> str | None:
    """What `head` is if it is text (an HTML page, XML, JSON, plain text), else None. Audio is never
    all printable text: headerless PCM or GSM has NUL and control bytes within its first bytes."""
    text = _printable_text(head)
    if text is None:
        return None
    start = text.lstrip("\ufeff \t\n\r\f").lower()
    if start.startswith(("<!doctype html", "<html", "<head", "<body", "<!--", "<script", "<title")):
        return "an HTML page"
    if start.startswith("<"):
        return "an XML document"
    if start.startswith(("{", "[")):
        return "a JSON document"
    return "text"


def _printable_text(head: bytes) -> str | None:
    """`head` as text when it is UTF-8 (but perhaps for a character cut at its end) without control
    characters; else None."""
    if not head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not merely a character cut at the end of the sample
            return None
        text = head[: exc.start].decode("utf-8")
    if any((ord(c) < 32 and c not in "\t\n\r\f") or ord(c) == 127 for c in text):
        return None
    return text


def archive_type(url: str, content_type_header: str | None, head: bytes) -> tuple[str, str]:
    """(extension, content type) a recording is archived with: the audio format its first bytes show
    (whatever the server declared); else the declared type if it is an allowed audio type; else
    application/octet-stream. NotARecording when the bytes are a text document (an error or login page
    served instead of the file)."""
    declared_ext, declared = extension_and_type(url, content_type_header)
    found = audio_format(head)
    if found is not None:
        ext, content_type = found
        if AUDIO_TYPES.get(declared_ext) == content_type:
            ext = declared_ext  # e.g. .oga for an Ogg file
        return ext, content_type
    document = text_document(head)
    if document is not None:
        served = media_type(content_type_header) or "no content type"
        raise NotARecording(f"not a recording: the server sent {document} ({served})")
    allowed = ALLOWED_AUDIO_TYPES.get(declared)
    if allowed is None:
        return "bin", ARCHIVE_FALLBACK_TYPE
    return (declared_ext if AUDIO_TYPES.get(declared_ext) == allowed else _TYPE_EXTENSIONS[declared]), allowed


def backoff_seconds(attempt: int, base: int, cap: int, retry_after: int | None = None) -> int:
    """Visibility timeout after failed attempt `attempt` (1-based): base * 2^(attempt-1), capped;
    at least what the server asked for with Retry-After (still capped)."""
    delay = min(cap, base * 2 ** max(attempt - 1, 0))
    if retry_after is not None:
        delay = max(delay, min(cap, retry_after))
    return int(delay)


# ---------------------------------------------------------------------------------------------- outcomes

_OUTCOME_METRICS = {
    "refused": "RecordingsRefused",
    "link_expired": "RecordingsLinkExpired",
    "missing": "RecordingsMissing",
    "failed": "RecordingsFailed",
}


class RetryableCopyError(Exception):
    """The copy failed in a way a later attempt may not: SQS delivers the message again."""

    def __init__(self, reason: str, *, http_status: int | None = None, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status
        self.retry_after = retry_after


class _Permanent(Exception):
    def __init__(self, status: str, reason: str, http_status: int | None = None, host: str | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.http_status = http_status
        self.host = host


class InvalidRecordingMessage(Exception):
    """The message is not a recording request (it goes to the dead-letter queue for inspection)."""


@dataclass(frozen=True)
class CopyResult:
    status: str  # archived, skipped, refused, link_expired, missing, failed
    call_id: str
    s3_key: str | None = None
    size: int | None = None
    sha256: str | None = None
    content_type: str | None = None
    http_status: int | None = None
    reason: str | None = None


class RecordingRequest(BaseModel):
    """The body of a recordings-queue message (recording_queue.recording_request).

    A recording is filed under its call when the message has a call id; otherwise (a call notification
    naming only its case, as AIRUDDER's call webhooks may) under the event that carried it and that
    event's entity (e.g. CASE#<case id>): one case has many calls, so the event, not the case, is what
    the recording belongs to."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str = Field(min_length=1)
    call_id: str | None = Field(default=None, min_length=1, max_length=512)
    entity: str | None = Field(default=None, max_length=600)
    event_id: str | None = Field(default=None, max_length=512)
    event_time: str | None = None
    # The event item's sort key (store.event_sort_key), where a recording without a call id is filed.
    event_sk: str | None = Field(default=None, max_length=1_024)
    webhook_type: str | None = None
    source: str | None = None
    request_id: str | None = None

    @model_validator(mode="after")
    def _names_where_to_file(self) -> RecordingRequest:
        if self.call_id is None and not (self.event_id and self.entity and "#" in self.entity.strip("#")):
            raise ValueError("neither a call id nor an event and its entity")
        return self

    @classmethod
    def from_body(cls, body: str | None) -> RecordingRequest:
        try:
            return cls.model_validate(json.loads(body or ""))
        except (ValueError, ValidationError) as exc:
            # The error names fields only: the message may hold a signed link.
            raise InvalidRecordingMessage(f"not a recording request: {type(exc).__name__}") from None

    @property
    def subject(self) -> str:
        """What the recording is filed under, for logs and results: the call id, else the event id."""
        return self.call_id or str(self.event_id)

    @property
    def event_key(self) -> tuple[str, str]:
        """The event item (pk, sk) of a recording filed under its event (no call id)."""
        sk = self.event_sk or event_sort_key(str(self.event_time or ""), str(self.event_id), True)
        return str(self.entity), sk

    def key(self, day: datetime, ext: str) -> str:
        if self.call_id is not None:
            return recording_key(self.call_id, day, ext)
        kind, _, entity_id = str(self.entity).partition("#")
        return event_recording_key(kind, entity_id, str(self.event_id), day, ext)


# ---------------------------------------------------------------------------------------------- S3


class _Body(Protocol):
    def read(self, limit: int = ...) -> bytes: ...


class RecordingStream:
    """The recording as a file for boto3's transfer manager: the bytes already sniffed, then the rest
    of the body, hashed and counted as they pass. Past `max_bytes` the copy fails (_Permanent); at the
    end the size must be `expected_size` (Content-Length, when given), else the transfer was cut short,
    and an empty body is an error too (RetryableCopyError): the upload is then aborted, never completed.

    read(n) returns n bytes unless the body ends first: the transfer manager makes a part of each read.
    A part is hashed at the next read (or when the digest is asked for), while it goes up: the hash
    (which releases the GIL) runs beside the upload instead of holding the part back."""

    def __init__(
        self, head: bytes, body: _Body, *, max_bytes: int, expected_size: int | None, host: str | None = None
    ) -> None:
        self._head = head
        self._body = body
        self._max_bytes = max_bytes
        self._expected_size = expected_size
        self._host = host
        self._sha = hashlib.sha256()
        self._unhashed = b""
        self._ended = False
        self._stop: Callable[[], bool] = lambda: False
        self.size = 0

    @property
    def sha256(self) -> str:
        self._hash_pending()
        return self._sha.hexdigest()

    @property
    def expected_size(self) -> int | None:
        return self._expected_size

    def stop_when(self, stop: Callable[[], bool]) -> None:
        """Stop reading (raise) as soon as `stop()` is true: the upload failed, nothing more to fetch."""
        self._stop = stop

    def read(self, amount: int = -1) -> bytes:
        self._hash_pending()
        wanted = amount if amount >= 0 else self._max_bytes + 1
        pieces: list[bytes] = []
        held = 0
        while held < wanted and not self._ended:
            if self._stop():
                raise RetryableCopyError("the upload to storage failed")
            if self._head:
                chunk, self._head = self._head[: wanted - held], self._head[wanted - held :]
            else:
                # The rest of the part in one read where it fits; never more than a byte past the limit.
                chunk = self._body.read(min(READ_CHUNK_BYTES, wanted - held, self._max_bytes + 1 - self.size))
            if not chunk:
                self._end()
                break
            self.size += len(chunk)
            if self.size > self._max_bytes:
                raise _Permanent("failed", "recording is over the size limit", host=self._host)
            pieces.append(chunk)
            held += len(chunk)
        self._unhashed = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        return self._unhashed

    def _hash_pending(self) -> None:
        if self._unhashed:
            self._sha.update(self._unhashed)
            self._unhashed = b""

    def _end(self) -> None:
        self._ended = True
        if self._expected_size is not None and self.size != self._expected_size:
            raise RetryableCopyError(f"transfer ended after {self.size} of {self._expected_size} bytes")
        if self.size == 0:
            raise RetryableCopyError("the recording server sent no bytes")


def _abort_failed(http_response: Any = None, exception: BaseException | None = None, **_: Any) -> None:
    """The transfer manager aborts a failed multipart upload, and says nothing if that fails."""
    status = getattr(http_response, "status_code", 200)
    if exception is not None or status >= 300:
        # The bucket's lifecycle rule removes incomplete uploads after two days.
        error = repr(exception) if exception is not None else f"http {status}"
        logger.warning("could not abort a multipart upload", extra={"error": error})


def balanced_part_size(size: int | None, part_size: int) -> int:
    """The parts' size for a recording of `size` bytes (Content-Length): as many parts as `part_size`
    makes, but of equal size (at least S3's 5 MiB) instead of full ones and a short last one. A 10 MiB
    recording goes up as two parts of 5 MiB side by side rather than 8 MiB then 2 MiB: the same
    requests, less held, and the slowest part (what the upload waits for) smaller. `part_size` when
    the size is unknown or within one part (then it is one PutObject)."""
    if size is None or size <= part_size:
        return part_size
    count = -(-size // part_size)
    return max(S3_MIN_PART_BYTES, -(-size // count))


class _KnownSize:
    """A transfer subscriber telling the transfer manager the recording's size (Content-Length): it then
    chooses between PutObject and a multipart upload without reading a part ahead first, and opens the
    multipart upload while the first part is being read. The HTTP client never delivers more than
    Content-Length, and fewer fails the stream, so the choice cannot be wrong for a recording archived."""

    def __init__(self, size: int) -> None:
        self._size = size

    def on_queued(self, future: Any, **_: Any) -> None:
        future.meta.provide_transfer_size(self._size)


def upload_recording(
    s3: Any,
    stream: RecordingStream,
    bucket: str,
    key: str,
    *,
    content_type: str,
    metadata: Mapping[str, str],
    part_size: int,
    concurrency: int,
) -> None:
    """boto3's managed upload of the stream (what s3.upload_fileobj does, keeping the transfer's future
    so that the stream stops reading once a part failed): one PutObject when it is smaller than a part,
    else a multipart upload of `part_size` parts (balanced_part_size when its size is known),
    `concurrency` of them going up at once. On failure an open multipart upload is aborted and the first
    error raised (ClientError, or the stream's)."""
    from boto3.s3.transfer import TransferConfig, create_transfer_manager

    config = TransferConfig(
        multipart_threshold=part_size,
        multipart_chunksize=balanced_part_size(stream.expected_size, part_size),
        max_concurrency=concurrency,
        # Only the classic manager honours these settings and streams a file of unknown size.
        preferred_transfer_client="classic",
    )
    # Parts read ahead wait in memory: at most `concurrency` of them, besides the one being read, so
    # memory does not grow with the recording (boto3's default holds 10).
    config.max_in_memory_upload_chunks = concurrency
    for event in ("after-call.s3.AbortMultipartUpload", "after-call-error.s3.AbortMultipartUpload"):
        s3.meta.events.register(event, _abort_failed, unique_id=f"recordings-{event}")
    subscribers = [] if stream.expected_size is None else [_KnownSize(stream.expected_size)]
    with create_transfer_manager(s3, config) as manager:
        future = manager.upload(
            stream,
            bucket,
            key,
            extra_args={"ContentType": content_type, "Metadata": dict(metadata)},
            subscribers=subscribers,
        )
        stream.stop_when(future.done)
        future.result()


# ---------------------------------------------------------------------------------------------- the deadline


class CopyDeadline:
    """The wall-clock end of one copy. Every read of the recording server waits at most the time left
    (see _BoundedBody); and a timer shuts down, when the time is up, every connection to it the copy
    opened or reused, so that no step (a server dripping its headers one byte at a time, a slow TLS
    handshake) outlasts the deadline: a blocked read then ends at once."""

    def __init__(self, at: float) -> None:
        self.at = at
        self._expired = False
        self._lock = threading.Lock()
        # Duplicates of the connections' descriptors: shutting one down ends the TCP connection under
        # every descriptor (also a TLS socket's); they are ours to close, so no descriptor is reused.
        self._sockets: list[socket.socket] = []
        self._timer: threading.Timer | None = None
        self._token: Token[CopyDeadline | None] | None = None

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def passed(self) -> bool:
        return self._expired or time.monotonic() >= self.at

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        try:
            duplicate = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError:
            return
        with self._lock:
            self._sockets.append(duplicate)
            if self._expired:
                _shut(duplicate)

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            for sock in self._sockets:
                _shut(sock)

    def __enter__(self) -> CopyDeadline:
        self._token = _ACTIVE_DEADLINE.set(self)
        self._timer = threading.Timer(max(self.remaining(), 0.0), self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._token is not None:
            _ACTIVE_DEADLINE.reset(self._token)
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_ACTIVE_DEADLINE: ContextVar[CopyDeadline | None] = ContextVar("recording_copy_deadline", default=None)


def _watch(sock: socket.socket | None) -> None:
    deadline = _ACTIVE_DEADLINE.get()
    if deadline is not None:
        deadline.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    """Puts its socket under the running copy's deadline: when connected, and when a response is read
    on it (a kept-alive connection of an earlier copy)."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def getresponse(self) -> Any:
        _watch(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    """The same over TLS (the MRO puts HTTPSConnection's _new_conn and getresponse under ours)."""


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPConnectionPool,
            "https": _WatchedHTTPSConnectionPool,
        }


class _BoundedBody:
    """The response body, each receive waiting at most the time left before the deadline (and
    read_timeout); out of time, RetryableCopyError. A read that outlasts the deadline while bytes still
    trickle in is cut by CopyDeadline's timer, which shuts the connection down."""

    def __init__(self, response: requests.Response, deadline: CopyDeadline, read_timeout: float) -> None:
        self._raw = response.raw
        self._deadline = deadline
        self._read_timeout = read_timeout
        connection = getattr(self._raw, "connection", None)
        self._sock: socket.socket | None = getattr(connection, "sock", None)

    def read(self, limit: int = READ_CHUNK_BYTES) -> bytes:
        """`limit` bytes, fewer only at the end of the body (b"" there): a whole part is one read, into
        one buffer, as upload_fileobj reads it."""
        remaining = self._deadline.remaining()
        if remaining <= 0:
            raise RetryableCopyError("out of time before the copy finished")
        if self._sock is not None and remaining < self._read_timeout:
            with contextlib.suppress(OSError):
                self._sock.settimeout(remaining)
        try:
            data = self._raw.read(limit, decode_content=True)
        except (Urllib3Error, http.client.HTTPException, OSError, requests.RequestException) as exc:
            if self._deadline.passed:
                raise RetryableCopyError("out of time before the copy finished") from None
            if isinstance(exc, ReadTimeoutError | TimeoutError):
                raise RetryableCopyError("timeout reading the recording") from None
            raise RetryableCopyError(f"transfer interrupted ({_root_cause(exc)})") from None
        if self._deadline.passed:
            raise RetryableCopyError("out of time before the copy finished")
        return data or b""

    def head(self, size: int) -> bytes:
        """The first `size` bytes (fewer if the body is shorter), to tell what the file is."""
        pieces: list[bytes] = []
        held = 0
        while held < size:
            piece = self.read(size - held)
            if not piece:
                break
            pieces.append(piece)
            held += len(piece)
        return b"".join(pieces)


# ---------------------------------------------------------------------------------------------- copying


def _retry_after(response: requests.Response) -> int | None:
    value = response.headers.get("Retry-After", "").strip()
    return int(value) if value.isdigit() else None


def _status_error(response: requests.Response, link: Link) -> Exception:
    """What a link's answer that is neither 200 nor a redirect means: expired, missing, worth a retry
    (429 and the like, 5xx) or failed."""
    status = response.status_code
    if status in EXPIRED_STATUSES:
        return _Permanent("link_expired", f"http {status}", http_status=status, host=link.host)
    if status in MISSING_STATUSES:
        return _Permanent("missing", f"http {status}", http_status=status, host=link.host)
    if status in RETRYABLE_STATUSES or status >= 500:
        return RetryableCopyError(f"http {status}", http_status=status, retry_after=_retry_after(response))
    return _Permanent("failed", f"unexpected http {status}", http_status=status, host=link.host)


class RecordingCopier:
    """Copies one recording into the bucket and records the outcome on the call (or on the event, for a
    recording without a call id: see RecordingRequest)."""

    def __init__(
        self,
        settings: RecordingsSettings,
        store: EventStore,
        s3: Any,
        *,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._s3 = s3
        self._session = session or self._new_session()

    @staticmethod
    def _new_session() -> requests.Session:
        session = requests.Session()
        # No proxies, .netrc credentials or CA bundles from the environment; no retries inside requests.
        session.trust_env = False
        session.headers.update(
            {"User-Agent": "airudder-ingest-recordings/1", "Accept": "*/*", "Accept-Encoding": "identity"}
        )
        adapter = _WatchedAdapter(max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    def copy(
        self,
        request: RecordingRequest,
        *,
        deadline: float | None = None,
        fallback_day: datetime | None = None,
        attempt: int = 1,
    ) -> CopyResult:
        """Archive the recording unless it already is. Permanent outcomes (refused, expired, missing,
        failed) are recorded and returned; RetryableCopyError is raised for the others. `deadline`
        (time.monotonic()) bounds the copy as well as RECORDING_COPY_TIMEOUT_SECONDS does."""
        ends = time.monotonic() + self.settings.copy_timeout
        if deadline is not None:
            ends = min(ends, deadline)
        try:
            return self._copy_unless_archived(request, ends=ends, fallback_day=fallback_day, attempt=attempt)
        except (ClientError, BotoCoreError) as exc:  # DynamoDB (S3 errors are handled while streaming)
            raise RetryableCopyError(f"storage error ({_aws_error(exc)})") from None

    def _state(self, request: RecordingRequest) -> dict[str, Any]:
        if request.call_id is not None:
            return self.store.recording_state(request.call_id)
        state = self.store.event_recording_state(*request.event_key)
        if state is None:
            raise InvalidRecordingMessage("the message names an event that is not stored")
        return state

    def _copy_unless_archived(
        self, request: RecordingRequest, *, ends: float, fallback_day: datetime | None, attempt: int
    ) -> CopyResult:
        subject = request.subject
        state = self._state(request)
        if state.get("recording_status") == "archived":
            metrics.add_metric(name="RecordingsSkipped", unit=MetricUnit.Count, value=1)
            logger.info("recording already archived", extra=_ids(request))
            return CopyResult(
                "skipped",
                subject,
                s3_key=state.get("recording_s3_key"),
                size=_int_or_none(state.get("recording_size")),
                sha256=state.get("recording_sha256"),
                content_type=state.get("recording_content_type"),
            )
        try:
            with CopyDeadline(ends) as deadline:
                return self._copy(request, deadline=deadline, fallback_day=fallback_day, attempt=attempt)
        except LinkRefused as refused:
            outcome = _Permanent("refused", refused.reason, host=refused.host)
        except _Permanent as permanent:
            outcome = permanent
        self.mark_failure(
            request, status=outcome.status, reason=outcome.reason, http_status=outcome.http_status, attempt=attempt
        )
        metrics.add_metric(
            name=_OUTCOME_METRICS.get(outcome.status, "RecordingsFailed"), unit=MetricUnit.Count, value=1
        )
        logger.info(
            "recording not archived",
            extra={
                **_ids(request),
                "recording_status": outcome.status,
                "reason": outcome.reason,
                "http_status": outcome.http_status,
                "host": outcome.host,
            },
        )
        return CopyResult(outcome.status, subject, http_status=outcome.http_status, reason=outcome.reason)

    def mark_failure(
        self,
        request: RecordingRequest | str,
        *,
        status: str,
        reason: str,
        http_status: int | None = None,
        attempt: int | None = None,
    ) -> bool:
        """Record why the recording is not archived, unless it is archived by now (returns False then).
        `request`: the request, or a call id."""
        fields: dict[str, Any] = {
            "unless_status": "archived",
            "remove": () if http_status is not None else ("http_status",),
            "status": status,
            "error": reason[:500],
            "http_status": http_status,
            "attempts": attempt,
        }
        if isinstance(request, str):
            return self.store.update_recording(request, **fields)
        if request.call_id is not None:
            return self.store.update_recording(request.call_id, **fields)
        return self.store.update_event_recording(*request.event_key, **fields)

    # ------------------------------------------------------------------ the transfer

    def _copy(
        self, request: RecordingRequest, *, deadline: CopyDeadline, fallback_day: datetime | None, attempt: int
    ) -> CopyResult:
        started = time.monotonic()
        response, link = self._open(request.url, deadline)
        with response:
            body = _BoundedBody(response, deadline, self.settings.read_timeout)
            head = body.head(SNIFF_BYTES)
            try:
                ext, content_type = archive_type(link.url, response.headers.get("Content-Type"), head)
            except NotARecording as exc:
                raise _Permanent("failed", str(exc), http_status=response.status_code, host=link.host) from None
            key = request.key(recording_day(request.event_time, fallback_day), ext)
            size, digest = self._stream(response, body, head, key, content_type, request, link)
        archived: dict[str, Any] = {
            "remove": ("error", "http_status"),
            "status": "archived",
            "s3_bucket": self.settings.bucket_name,
            "s3_key": key,
            "size": size,
            "sha256": digest,
            "content_type": content_type,
            "attempts": attempt,
            "archived_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        if request.call_id is not None:
            self.store.update_recording(request.call_id, **archived)
        else:
            self.store.update_event_recording(*request.event_key, **archived)
        seconds = time.monotonic() - started
        metrics.add_metric(name="RecordingsArchived", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="RecordingBytes", unit=MetricUnit.Bytes, value=size)
        logger.info(
            "recording archived",
            extra={
                **_ids(request),
                "host": link.host,
                "s3_key": key,
                "size": size,
                "seconds": round(seconds, 3),
                "attempt": attempt,
            },
        )
        return CopyResult("archived", request.subject, s3_key=key, size=size, sha256=digest, content_type=content_type)

    def _open(self, url: str, deadline: CopyDeadline) -> tuple[requests.Response, Link]:
        """GET the link, following at most max_redirects redirects, each checked like the link."""
        current = url
        for hop in range(self.settings.max_redirects + 1):
            try:
                link = check_link(current, self.settings.allowed_hosts)
            except LinkRefused as refused:
                if hop:
                    raise LinkRefused(f"redirect refused: {refused.reason}", host=refused.host) from None
                raise
            response = self._get(link, deadline)
            status = response.status_code
            if status in REDIRECT_STATUSES:
                location = response.headers.get("Location")
                response.close()
                if not location:
                    raise _Permanent("failed", f"redirect {status} without a Location", http_status=status)
                current = urljoin(current, location)
                continue
            if status == 200:
                return response, link
            response.close()
            raise _status_error(response, link)
        raise _Permanent("failed", f"more than {self.settings.max_redirects} redirects")

    def _get(self, link: Link, deadline: CopyDeadline) -> requests.Response:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise RetryableCopyError("out of time before the copy finished")
        try:
            return self._session.get(
                link.url,
                stream=True,
                allow_redirects=False,
                timeout=(min(self.settings.connect_timeout, remaining), min(self.settings.read_timeout, remaining)),
            )
        except requests.RequestException as exc:
            if deadline.passed:
                raise RetryableCopyError("out of time before the copy finished") from None
            if isinstance(exc, requests.Timeout):
                raise RetryableCopyError("timeout waiting for the recording server") from None
            if isinstance(exc, requests.ConnectionError):
                raise RetryableCopyError(f"connection failed ({_root_cause(exc)})") from None
            raise RetryableCopyError(f"request failed ({type(exc).__name__})") from None

    def _stream(
        self,
        response: requests.Response,
        body: _BoundedBody,
        head: bytes,
        key: str,
        content_type: str,
        request: RecordingRequest,
        link: Link,
    ) -> tuple[int, str]:
        announced = _int_or_none(response.headers.get("Content-Length"))
        encoded = response.headers.get("Content-Encoding", "identity").strip().lower() not in {"", "identity"}
        if announced is not None and announced > self.settings.max_bytes:
            raise _Permanent("failed", f"recording of {announced} bytes is over the limit", host=link.host)
        metadata = {"source-host": link.host}
        if request.call_id is not None:
            metadata["call-id"] = quote(request.call_id, safe="")
        elif request.entity:
            metadata["entity"] = quote(request.entity, safe="")
        if request.event_id:
            metadata["event-id"] = quote(request.event_id, safe="")
        stream = RecordingStream(
            head,
            body,
            max_bytes=self.settings.max_bytes,
            expected_size=None if encoded else announced,
            host=link.host,
        )
        try:
            upload_recording(
                self._s3,
                stream,
                self.settings.bucket_name,
                key,
                content_type=content_type,
                metadata=metadata,
                part_size=self.settings.part_size,
                concurrency=self.settings.upload_concurrency,
            )
        except (ClientError, BotoCoreError) as exc:
            raise RetryableCopyError(f"storage error ({_aws_error(exc)})") from None
        return stream.size, stream.sha256


def _ids(request: RecordingRequest) -> dict[str, Any]:
    """What a log line says about the recording: the call id, or the event id and the entity's kind."""
    if request.call_id is not None:
        return {"call_id": request.call_id}
    return {"event_id": request.event_id, "entity_kind": str(request.entity).partition("#")[0]}


def _root_cause(exc: BaseException) -> str:
    """The innermost exception's type name, e.g. ReadTimeoutError, NewConnectionError."""
    seen = exc
    while True:
        inner = seen.__cause__ or seen.__context__
        if inner is None and seen.args and isinstance(seen.args[0], BaseException):
            inner = seen.args[0]
        if inner is None or inner is seen:
            return type(seen).__name__
        seen = inner


def _aws_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------- the queue


def queue_url_from_arn(arn: str) -> str:
    """https://sqs.<region>.amazonaws.com/<account>/<name> for arn:aws:sqs:<region>:<account>:<name>."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {arn}")
    partition, region, account, name = parts[1], parts[3], parts[4], parts[5]
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{name}"


class RecordingsConsumer:
    """The SQS batch handler: each message is one copy; failures are reported per message
    (ReportBatchItemFailures) and delayed by changing their visibility timeout."""

    def __init__(self, settings: RecordingsSettings, copier: RecordingCopier, sqs: Any) -> None:
        self.settings = settings
        self.copier = copier
        self._sqs = sqs
        self._processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._deadline: float | None = None

    @classmethod
    def from_settings(cls, settings: RecordingsSettings) -> RecordingsConsumer:
        """Clients of its own (endpoint from the environment as it is now), not aws.client's cache."""
        store = EventStore(settings.table_name, _client("dynamodb"))
        copier = RecordingCopier(settings, store, _client("s3", read_timeout=S3_READ_TIMEOUT_SECONDS))
        return cls(settings, copier, _client("sqs"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RecordingsConsumer:
        return cls.from_settings(RecordingsSettings.from_env(environ))

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """An SQS event in, {"batchItemFailures": [...]} out."""
        self._deadline = None
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if callable(remaining):
            self._deadline = time.monotonic() + remaining() / 1000 - self.settings.deadline_margin_seconds
        return dict(
            process_partial_response(
                event=event, record_handler=self.handle_record, processor=self._processor, context=context
            )
        )

    def handle_record(self, record: SQSRecord) -> str:
        """One message. Returns the outcome; raises to report the message as failed."""
        attempt = _int_or_none(record.attributes.approximate_receive_count) or 1
        delivery_log_keys(None, None)  # nothing of the previous message's delivery on this one's lines
        try:
            request = RecordingRequest.from_body(record.body)
            delivery_log_keys(request.event_id, request.request_id)
            if self._deadline is not None and time.monotonic() > self._deadline:
                self._delay(record, 0)
                raise RetryableCopyError("no time left in this invocation")
            try:
                result = self.copier.copy(
                    request, deadline=self._deadline, fallback_day=_sent_day(record), attempt=attempt
                )
            except RetryableCopyError as error:
                self._failed_attempt(record, request, attempt, error)
                raise
        except InvalidRecordingMessage as exc:
            metrics.add_metric(name="RecordingMessagesInvalid", unit=MetricUnit.Count, value=1)
            logger.error("invalid recordings message", extra={"message_id": record.message_id, "error": str(exc)})
            # Nothing to retry: straight on to the dead-letter queue, where it can be inspected.
            self._delay(record, 0)
            raise
        return result.status

    def _failed_attempt(
        self, record: SQSRecord, request: RecordingRequest, attempt: int, error: RetryableCopyError
    ) -> None:
        last = attempt >= self.settings.max_attempts
        status = "failed" if last else "retrying"
        reason = f"{error.reason} (attempt {attempt} of {self.settings.max_attempts})"
        try:
            self.copier.mark_failure(
                request, status=status, reason=reason, http_status=error.http_status, attempt=attempt
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("could not record a failed attempt", extra={**_ids(request), "error": repr(exc)})
        delay = (
            0
            if last
            else backoff_seconds(
                attempt, self.settings.retry_base_seconds, self.settings.retry_max_seconds, error.retry_after
            )
        )
        metrics.add_metric(name="RecordingsGaveUp" if last else "RecordingsRetried", unit=MetricUnit.Count, value=1)
        logger.warning(
            "recording copy failed" + ("; giving up" if last else "; will retry"),
            extra={
                **_ids(request),
                "reason": error.reason,
                "http_status": error.http_status,
                "attempt": attempt,
                "retry_in_seconds": None if last else delay,
            },
        )
        self._delay(record, delay)

    def _delay(self, record: SQSRecord, seconds: int) -> None:
        """Make the failed message visible again in `seconds` (0: at once, so that a message past its
        last attempt moves to the dead-letter queue without waiting for the queue's timeout)."""
        try:
            queue_url = self.settings.queue_url or queue_url_from_arn(record.event_source_arn)
            self._sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds
            )
        except (ClientError, BotoCoreError, ValueError) as exc:
            # The message then comes back after the queue's own visibility timeout.
            logger.warning("could not change a message's visibility", extra={"error": repr(exc)})


def _sent_day(record: SQSRecord) -> datetime | None:
    sent = _int_or_none(record.attributes.sent_timestamp)
    return datetime.fromtimestamp(sent / 1000, UTC) if sent else None


# ---------------------------------------------------------------------------------------------- wiring


def _client(service: str, *, read_timeout: float = aws.READ_TIMEOUT_SECONDS, **options: Any) -> Any:
    """A boto3 client from a session of its own (safe to build from any thread). S3 gets a longer read
    timeout than the shared clients': parts of several MiB take longer than small writes."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=aws.CONNECT_TIMEOUT_SECONDS, read_timeout=read_timeout, **options)
    return boto3.session.Session().client(service, config=config)


def presign_client() -> Any:
    """An S3 client for presigned_recording_url: it signs with SigV4 (X-Amz-Expires), which every
    region accepts; botocore may otherwise presign S3 links with the legacy SigV2."""
    return _client("s3", signature_version="s3v4")


# ---------------------------------------------------------------------------------------------- reading


def presigned_recording_url(
    store: EventStore, s3: Any, bucket: str, call_id: str, *, expires_in: int = 3600
) -> str | None:
    """A time-limited GET link to the call's archived recording, or None when it is not archived.
    The link carries the signer's credentials: it lives no longer than they do, nor than `expires_in`.
    `s3`: e.g. presign_client() (SigV4); the caller needs s3:GetObject on recordings/*."""
    if not 0 < expires_in <= MAX_PRESIGN_SECONDS:
        raise ValueError(f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds")
    state = store.recording_state(call_id)
    key = state.get("recording_s3_key")
    if state.get("recording_status") != "archived" or not key:
        return None
    url: str = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in, HttpMethod="GET"
    )
    return url
