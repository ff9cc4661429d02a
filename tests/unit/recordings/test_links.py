"""Which links the recordings function fetches, how it names what it archives, and its settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from airudder_ingest.recordings.copier import (
    DEFAULT_ALLOWED_HOSTS,
    InvalidRecordingMessage,
    LinkRefused,
    NotARecording,
    RecordingRequest,
    RecordingsSettings,
    archive_type,
    audio_format,
    backoff_seconds,
    check_link,
    event_recording_key,
    extension_and_type,
    host_allowed,
    queue_url_from_arn,
    recording_day,
    recording_key,
    text_document,
)

# Non-default ports are named (issue 11): a bare entry allows the scheme's default port only.
ALLOWED = ("airudder.com", ".airudder.com", "127.0.0.1", "127.0.0.1:8082", "airudder.com:8443")
BASE_ENV = {"EVENTS_TABLE": "t", "ARCHIVE_BUCKET": "b"}


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("airudder.com", True),
        ("AIRUDDER.COM", True),
        ("airudder.com.", True),
        ("recordings.airudder.com", True),
        ("a.b.airudder.com", True),
        ("127.0.0.1", True),
        ("evilairudder.com", False),
        ("airudder.com.evil.net", False),
        ("airudder.co", False),
        ("localhost", False),
        ("127.0.0.2", False),
        ("", False),
    ],
)
def test_hosts_match_exactly_or_as_subdomains_of_a_suffix(host: str, allowed: bool) -> None:
    assert host_allowed(host, ALLOWED) is allowed


def test_a_bare_suffix_entry_does_not_allow_the_domain_itself() -> None:
    assert host_allowed("airudder.com", (".airudder.com",)) is False
    assert host_allowed("x.airudder.com", (".airudder.com",)) is True


@pytest.mark.parametrize(
    "url",
    [
        "https://recordings.airudder.com/workflow/abc/def.wav",
        "http://127.0.0.1:8082/audio/x.wav?size=10",
        "HTTPS://Recordings.AIRudder.com/a.mp3",
        "https://airudder.com:8443/a.wav#fragment",
    ],
)
def test_http_links_to_allowed_hosts_are_accepted(url: str) -> None:
    link = check_link(url, ALLOWED)
    assert link.url == url
    assert link.scheme in {"http", "https"}
    assert host_allowed(link.host, ALLOWED)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://airudder.com/a.wav", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://127.0.0.1:6379/_INFO", "scheme"),
        ("//airudder.com/a.wav", "scheme"),
        ("https://user:pw@airudder.com/a.wav", "user info"),
        ("https://airudder.com@evil.net/a.wav", "user info"),
        ("https://evil.net#@airudder.com/a.wav", "not on the allow-list"),
        ("https://evil.net\\@airudder.com/a.wav", "backslash"),
        ("https://airudder.com\\.evil.net/a.wav", "backslash"),
        ("http://169.254.169.254/latest/meta-data/", "not on the allow-list"),
        ("http://[::1]/a.wav", "not on the allow-list"),
        ("http://localhost/a.wav", "not on the allow-list"),
        ("http://2130706433/a.wav", "not on the allow-list"),  # 127.0.0.1 as one number: not the same text
        ("http://127.1/a.wav", "not on the allow-list"),
        ("https://air\u00fcdder.com/a.wav", "ASCII"),
        ("https://airudder.com:99999/a.wav", "valid URL"),
        ("https://airudder.com /a.wav", "whitespace"),
        ("https://airudder.com/a.wav\r\nX: y", "whitespace"),
        ("https:///a.wav", "no host"),
        ("", "no link"),
        (None, "no link"),
        ("https://airudder.com/" + "a" * 5000, "too long"),
    ],
)
def test_other_links_are_refused_with_a_reason(url: str | None, reason: str) -> None:
    with pytest.raises(LinkRefused) as refused:
        check_link(url, ALLOWED)
    assert reason in refused.value.reason


def test_the_lambda_runtime_api_is_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    with pytest.raises(LinkRefused, match="runtime API"):
        check_link("http://127.0.0.1:9001/2018-06-01/runtime/invocation/next", ALLOWED)
    assert check_link("http://127.0.0.1:8082/a.wav", ALLOWED).port == 8082


# ---------------------------------------------------------------------------------------------- settings


def test_settings_come_from_the_environment_with_airudder_and_loopback_by_default() -> None:
    settings = RecordingsSettings.from_env(BASE_ENV)
    assert settings.allowed_hosts == DEFAULT_ALLOWED_HOSTS == ("airudder.com", ".airudder.com", "127.0.0.1")
    assert settings.part_size == 8 * 1024 * 1024
    assert settings.max_attempts == 5


def test_the_allow_list_setting_is_a_normalised_comma_separated_list() -> None:
    env = {**BASE_ENV, "RECORDING_ALLOWED_HOSTS": " Airudder.com, .CDN.airudder.com. ,[::1] 10.0.0.5"}
    settings = RecordingsSettings.from_env(env)
    assert settings.allowed_hosts == ("airudder.com", ".cdn.airudder.com", "::1", "10.0.0.5")
    assert check_link("http://[::1]/a.wav", settings.allowed_hosts).host == "::1"


@pytest.mark.parametrize("entry", [".", "*.airudder.com", ".127.0.0.1", "airudder.com/x", "user@airudder.com", "a..b"])
def test_allow_list_entries_that_are_not_hosts_are_rejected(entry: str) -> None:
    with pytest.raises(ValidationError):
        RecordingsSettings.from_env({**BASE_ENV, "RECORDING_ALLOWED_HOSTS": entry})


def test_numeric_settings_are_validated() -> None:
    with pytest.raises(ValidationError):
        RecordingsSettings.from_env({**BASE_ENV, "RECORDING_PART_SIZE_BYTES": str(4 * 1024 * 1024)})  # under S3's 5 MiB
    with pytest.raises(ValidationError):  # 10,000 parts of 5 MiB cannot hold 100 GiB
        RecordingsSettings.from_env(
            {**BASE_ENV, "RECORDING_PART_SIZE_BYTES": str(5 * 1024 * 1024), "RECORDING_MAX_BYTES": str(100 * 1024**3)}
        )
    settings = RecordingsSettings.from_env(
        {**BASE_ENV, "RECORDING_READ_TIMEOUT_SECONDS": "0.5", "RECORDING_MAX_ATTEMPTS": "3"}
    )
    assert (settings.read_timeout, settings.max_attempts) == (0.5, 3)


# ---------------------------------------------------------------------------------------------- naming


def test_the_day_is_the_events_utc_day() -> None:
    assert recording_day("2024-05-01T23:30:00+07:00") == datetime(2024, 5, 1, 16, 30, tzinfo=UTC)
    assert recording_day("2024-05-01T23:30:00.123Z").day == 1
    assert recording_day("2024-05-01 10:00:00").tzinfo is not None  # naive: taken as UTC
    fallback = datetime(2023, 1, 2, tzinfo=UTC)
    assert recording_day("yesterday", fallback) == fallback
    assert recording_day(None, fallback) == fallback


@pytest.mark.parametrize(
    ("call_id", "key"),
    [
        ("84e761298ef4394273900e00a2fc0127", "recordings/2024/05/01/84e761298ef4394273900e00a2fc0127.wav"),
        ("a/b", "recordings/2024/05/01/a%2Fb.wav"),
        ("..", "recordings/2024/05/01/%2E..wav"),
        ("call 1?#", "recordings/2024/05/01/call%201%3F%23.wav"),
    ],
)
def test_the_key_is_derived_from_the_call_and_its_day(call_id: str, key: str) -> None:
    assert recording_key(call_id, datetime(2024, 5, 1, 16, tzinfo=UTC), "wav") == key


@pytest.mark.parametrize(
    ("url", "header", "expected"),
    [
        ("https://r.airudder.com/x/rec.wav", "audio/x-wav", ("wav", "audio/x-wav")),
        ("https://r.airudder.com/x/rec.MP3?sig=1", None, ("mp3", "audio/mpeg")),
        ("https://r.airudder.com/x/rec.wav", "application/octet-stream", ("wav", "audio/wav")),
        ("https://r.airudder.com/download?id=1", "audio/mpeg; charset=x", ("mp3", "audio/mpeg")),
        ("https://r.airudder.com/download?id=1", "text/html", ("bin", "text/html")),
        ("https://r.airudder.com/download", None, ("bin", "application/octet-stream")),
        ("https://r.airudder.com/rec.ogg", "bad\r\nheader", ("ogg", "audio/ogg")),
    ],
)
def test_extension_from_the_link_and_type_from_the_response(
    url: str, header: str | None, expected: tuple[str, str]
) -> None:
    assert extension_and_type(url, header) == expected


def test_backoff_doubles_up_to_the_cap_and_honours_retry_after() -> None:
    assert [backoff_seconds(n, 30, 900) for n in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]
    assert backoff_seconds(1, 30, 900, retry_after=200) == 200
    assert backoff_seconds(1, 30, 900, retry_after=5000) == 900
    assert backoff_seconds(3, 0, 900) == 0


def test_the_queue_url_is_derived_from_the_event_source_arn() -> None:
    assert (
        queue_url_from_arn("arn:aws:sqs:ap-southeast-1:123456789012:stack-RecordingsQueue-X")
        == "https://sqs.ap-southeast-1.amazonaws.com/123456789012/stack-RecordingsQueue-X"
    )
    with pytest.raises(ValueError):
        queue_url_from_arn("arn:aws:sns:us-east-1:1:topic")


# ---------------------------------------------------------------------------------------------- messages


def test_a_message_of_the_ingest_pipeline_is_a_recording_request() -> None:
    body = (
        '{"url": "https://r.airudder.com/a.wav", "call_id": "c1", "entity": "CALL#c1", "event_id": "e",'
        ' "event_time": "2024-05-01T10:00:00.000Z", "webhook_type": "workflow.call", "source": "webhook", "new": 1}'
    )
    request = RecordingRequest.from_body(body)
    assert (request.call_id, request.event_time, request.url) == (
        "c1",
        "2024-05-01T10:00:00.000Z",
        "https://r.airudder.com/a.wav",
    )


@pytest.mark.parametrize(
    "body",
    ["", "not json", "[]", '{"url": "https://r.airudder.com/secret-token/a.wav"}', '{"url": null, "call_id": "c"}'],
)
def test_other_messages_are_invalid_and_the_error_does_not_repeat_the_link(body: str) -> None:
    with pytest.raises(InvalidRecordingMessage) as invalid:
        RecordingRequest.from_body(body)
    assert "secret-token" not in str(invalid.value)


def test_a_message_naming_a_case_but_no_call_is_filed_under_its_event() -> None:
    body = (
        '{"url": "https://r.airudder.com/a.wav", "call_id": null, "entity": "CASE#case/7", "event_id": "e1",'
        ' "event_time": "2024-05-01T10:00:00.000Z", "webhook_type": "workflow.call", "source": "webhook"}'
    )
    request = RecordingRequest.from_body(body)
    assert (request.call_id, request.subject) == (None, "e1")
    assert request.key(datetime(2024, 5, 1, tzinfo=UTC), "wav") == "recordings/2024/05/01/case/case%2F7/e1.wav"
    assert event_recording_key("CASE", "..", "e", datetime(2024, 5, 1, tzinfo=UTC), "mp3") == (
        "recordings/2024/05/01/case/%2E./e.mp3"
    )
    with pytest.raises(InvalidRecordingMessage):  # neither a call nor an event and its entity
        RecordingRequest.from_body('{"url": "https://r.airudder.com/a.wav", "event_id": "e1"}')


# ---------------------------------------------------------------------------------------------- ports


@pytest.mark.parametrize(
    ("url", "allowed", "accepted"),
    [
        ("https://r.airudder.com/a.wav", (".airudder.com",), True),
        ("https://r.airudder.com:443/a.wav", (".airudder.com",), True),  # the default port, written out
        ("http://r.airudder.com/a.wav", (".airudder.com",), True),
        ("https://r.airudder.com:8443/a.wav", (".airudder.com",), False),
        ("http://r.airudder.com:443/a.wav", (".airudder.com",), False),  # 443 is not http's default
        ("https://r.airudder.com:8443/a.wav", (".airudder.com:8443",), True),
        ("https://r.airudder.com/a.wav", (".airudder.com:8443",), False),  # a port entry names that port only
        ("http://127.0.0.1:8082/a.wav", ("127.0.0.1:8082",), True),
        ("http://127.0.0.1:8083/a.wav", ("127.0.0.1:8082",), False),
        ("http://[::1]:8080/a.wav", ("[::1]:8080",), True),
        ("http://[::1]:8081/a.wav", ("[::1]:8080", "::1"), False),
    ],
)
def test_only_the_default_port_unless_the_allow_list_names_another(
    url: str, allowed: tuple[str, ...], accepted: bool
) -> None:
    if accepted:
        assert check_link(url, allowed).url == url
    else:
        with pytest.raises(LinkRefused, match="port"):
            check_link(url, allowed)


def test_allow_list_entries_may_name_a_port() -> None:
    env = {**BASE_ENV, "RECORDING_ALLOWED_HOSTS": "Airudder.com:8443, .cdn.airudder.com:80,[::1]:8080,10.0.0.5:9000"}
    assert RecordingsSettings.from_env(env).allowed_hosts == (
        "airudder.com:8443",
        ".cdn.airudder.com:80",
        "[::1]:8080",
        "10.0.0.5:9000",
    )
    for bad in ("airudder.com:0", "airudder.com:65536", "airudder.com:x", "[::1]x", "airudder.com:"):
        with pytest.raises(ValidationError):
            RecordingsSettings.from_env({**BASE_ENV, "RECORDING_ALLOWED_HOSTS": bad})


# ---------------------------------------------------------------------------------------------- content type

NOISE = bytes(range(256)) * 2


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + NOISE, ("wav", "audio/wav")),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + NOISE, ("mp3", "audio/mpeg")),
        (b"\xff\xfb\x90\x64" + NOISE, ("mp3", "audio/mpeg")),
        (b"\xff\xf1\x50\x80" + NOISE, ("aac", "audio/aac")),
        (b"OggS\x00\x02" + b"\x00" * 22 + b"\x01vorbis" + NOISE, ("ogg", "audio/ogg")),
        (b"OggS\x00\x02" + b"\x00" * 22 + b"OpusHead" + NOISE, ("opus", "audio/opus")),
        (b"fLaC\x00\x00\x00\x22" + NOISE, ("flac", "audio/flac")),
        (b"#!AMR\n" + NOISE, ("amr", "audio/amr")),
        (b"#!AMR-WB\n" + NOISE, ("amr", "audio/amr")),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + NOISE, ("m4a", "audio/mp4")),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm" + NOISE, ("webm", "audio/webm")),
        (b".snd\x00\x00\x00\x18" + NOISE, ("au", "audio/basic")),
        (b"FORM\x00\x00\x10\x00AIFF" + NOISE, ("aiff", "audio/aiff")),
        (b"\x00\x00\x00\x00" + NOISE, None),  # headerless (PCM, GSM): not recognised
        (b"<!DOCTYPE html><html>", None),
    ],
)
def test_the_audio_format_is_told_by_the_first_bytes(head: bytes, expected: tuple[str, str] | None) -> None:
    assert audio_format(head) == expected


@pytest.mark.parametrize(
    ("head", "what"),
    [
        (b"<!DOCTYPE html>\n<html><head><title>Login</title>", "an HTML page"),
        (b"\xef\xbb\xbf  \r\n<HTML><body>Access denied</body></html>", "an HTML page"),
        (b'<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>', "an XML document"),
        (b'{"code": 401, "msg": "token expired"}', "a JSON document"),
        (b"Service temporarily unavailable\n", "text"),
        ("<html>caf\u00e9".encode()[:-1], "an HTML page"),  # a character cut at the end of the sample
        (b"\x00\x00\x00\x00" + NOISE, None),
        (bytes([0x80]) * 512, None),  # 8-bit PCM silence is not UTF-8
        (b"", None),
    ],
)
def test_a_text_document_is_recognised(head: bytes, what: str | None) -> None:
    assert text_document(head) == what


@pytest.mark.parametrize(
    ("url", "header", "head", "expected"),
    [
        # The bytes decide, whatever the server declared: a real recording is never dropped for a header.
        ("https://r.airudder.com/rec.wav", "text/html", b"RIFF\x24\x00\x00\x00WAVE" + NOISE, ("wav", "audio/wav")),
        ("https://r.airudder.com/dl?id=1", "audio/mpeg", b"RIFF\x24\x00\x00\x00WAVE" + NOISE, ("wav", "audio/wav")),
        ("https://r.airudder.com/rec.oga", None, b"OggS\x00\x02" + NOISE, ("oga", "audio/ogg")),
        # Unknown bytes: the declared type if it is an allowed audio type, else application/octet-stream.
        ("https://r.airudder.com/rec.gsm", None, b"\x00\x01" + NOISE, ("gsm", "audio/gsm")),
        ("https://r.airudder.com/dl?id=1", "audio/x-wav", b"\x00\x01" + NOISE, ("wav", "audio/wav")),
        ("https://r.airudder.com/dl?id=1", "text/html", b"\x00\x01" + NOISE, ("bin", "application/octet-stream")),
        ("https://r.airudder.com/rec.wav", "text/html", b"\x00\x01" + NOISE, ("bin", "application/octet-stream")),
        (
            "https://r.airudder.com/dl",
            "application/x-msdownload",
            b"MZ\x90\x00" + NOISE,
            ("bin", "application/octet-stream"),
        ),
    ],
)
def test_the_archived_type_is_from_the_bytes_or_the_audio_allow_list(
    url: str, header: str | None, head: bytes, expected: tuple[str, str]
) -> None:
    assert archive_type(url, header, head) == expected


@pytest.mark.parametrize("header", ["audio/wav", "text/html", None])
def test_a_page_served_as_a_recording_is_not_archived(header: str | None) -> None:
    with pytest.raises(NotARecording, match="HTML page"):
        archive_type("https://r.airudder.com/rec.wav", header, b"<!doctype html><html><body>Sign in</body></html>")


def test_the_copy_deadline_is_a_setting() -> None:
    assert RecordingsSettings.from_env(BASE_ENV).copy_timeout == 600
    assert RecordingsSettings.from_env({**BASE_ENV, "RECORDING_COPY_TIMEOUT_SECONDS": "2.5"}).copy_timeout == 2.5
    with pytest.raises(ValidationError):
        RecordingsSettings.from_env({**BASE_ENV, "RECORDING_COPY_TIMEOUT_SECONDS": "0"})


def test_a_long_or_non_utf8_call_id_names_its_recording_by_a_digest() -> None:
    from datetime import UTC, datetime

    from airudder_ingest.recordings.copier import recording_key

    day = datetime(2025, 4, 15, tzinfo=UTC)
    long_key = recording_key("c" * 3_000, day, "wav")
    assert len(long_key.encode()) < 1_024 and long_key == recording_key("c" * 3_000, day, "wav")
    assert long_key != recording_key("c" * 2_999, day, "wav")
    assert "sha256" in recording_key("a\ud800", day, "wav")
    assert recording_key("call-1", day, "wav") == "recordings/2025/04/15/call-1.wav"  # ordinary ids unchanged
