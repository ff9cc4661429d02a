"""upload_recording and RecordingStream: how the recording's bytes become S3 calls. boto3's transfer manager
runs against moto in-process, which refuses what S3 refuses (a part under 5 MiB that is not the last, gaps
in part numbers); the calls are recorded from botocore's events (tests/integration/recordings/test_archive.py
checks the same over HTTP)."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from airudder_ingest.recordings.copier import (
    READ_CHUNK_BYTES,
    S3_MIN_PART_BYTES,
    RecordingStream,
    RetryableCopyError,
    _Permanent,
    balanced_part_size,
    upload_recording,
)

MIB = 1024 * 1024
PART = 5 * MIB
BUCKET = "bucket"
KEY = "recordings/k.wav"


class RecordedS3:
    """A boto3 S3 client on moto whose calls are recorded (operation, parameters without the body, body
    size) with their answers; UploadPart of part `fail_part` answers 500 InternalError, and so does
    AbortMultipartUpload when `fail_abort`."""

    def __init__(self, fail_part: int | None = None, *, fail_abort: bool = False) -> None:
        self.client = boto3.client("s3", region_name="us-east-1")
        self.client.create_bucket(Bucket=BUCKET)
        self.fail_part = fail_part
        self.fail_abort = fail_abort
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[int, dict[str, Any]] = {}
        events = self.client.meta.events
        events.register("provide-client-params.s3", self._record)
        events.register("before-call.s3.UploadPart", self._fail)
        events.register("before-call.s3.AbortMultipartUpload", self._fail_abort)
        events.register("after-call.s3.UploadPart", self._answer)

    def _record(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        call = {k: v for k, v in params.items() if k != "Body"}
        if "Body" in params:
            call["size"] = len(params["Body"])
        self.calls.append((model.name, call))
        context["part_number"] = params.get("PartNumber")

    def _fail(self, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if context.get("part_number") != self.fail_part:
            return None
        error = {"Error": {"Code": "InternalError", "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": 500}}
        return AWSResponse("https://s3", 500, {}, None), error

    def _fail_abort(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not self.fail_abort:
            return None
        error = {"Error": {"Code": "InternalError", "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": 500}}
        return AWSResponse("https://s3", 500, {}, None), error

    def _answer(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        self.answers[context["part_number"]] = parsed

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def object(self) -> bytes:
        data: bytes = self.client.get_object(Bucket=BUCKET, Key=KEY)["Body"].read()
        return data


# Every test runs on an empty in-process AWS (conftest.py); the bucket is made by the test.
pytestmark = pytest.mark.usefixtures("moto")


class Pieces:
    """A response body that gives at most `piece` bytes a read, as a network does."""

    def __init__(self, data: bytes, piece: int) -> None:
        self.data = data
        self.piece = piece
        self.offset = 0

    def read(self, limit: int = READ_CHUNK_BYTES) -> bytes:
        chunk = self.data[self.offset : self.offset + min(limit, self.piece)]
        self.offset += len(chunk)
        return chunk


def sample(total: int) -> bytes:
    return (bytes(range(256)) * (total // 256 + 1))[:total]


def stream_of(data: bytes, piece: int = 64 * 1024, **options: Any) -> RecordingStream:
    settings: dict[str, Any] = {"max_bytes": 1024 * MIB, "expected_size": len(data), **options}
    return RecordingStream(data[:512], Pieces(data[512:], piece), **settings)


def upload_all(s3: RecordedS3, total: int, piece: int) -> bytes:
    data = sample(total)
    stream = stream_of(data, piece)
    upload_recording(
        s3.client,
        stream,
        BUCKET,
        KEY,
        content_type="audio/wav",
        metadata={"a": "b"},
        part_size=PART,
        concurrency=2,
    )
    assert (stream.size, stream.sha256) == (total, hashlib.sha256(data).hexdigest())
    return data


def test_a_recording_smaller_than_a_part_is_one_put_object() -> None:
    s3 = RecordedS3()
    data = upload_all(s3, PART - 1, 64 * 1024)
    assert s3.names() == ["PutObject"]
    assert s3.calls[0][1] == {
        "Bucket": BUCKET,
        "Key": KEY,
        "ContentType": "audio/wav",
        "Metadata": {"a": "b"},
        "ChecksumAlgorithm": "CRC32",  # what botocore adds to every PutObject, named by the transfer manager
        "size": PART - 1,
    }
    assert s3.object() == data


@pytest.mark.parametrize("total", [PART, 2 * PART, 2 * PART + 1, 3 * PART - 7])
def test_larger_ones_go_up_in_parts_of_at_least_the_part_size(total: int) -> None:
    s3 = RecordedS3()
    data = upload_all(s3, total, 1024 * 1024 - 3)
    names = s3.names()
    assert names[0] == "CreateMultipartUpload" and names[-1] == "CompleteMultipartUpload"
    assert s3.calls[0][1]["ContentType"] == "audio/wav" and s3.calls[0][1]["Metadata"] == {"a": "b"}
    parts = sorted((c["PartNumber"], c["size"]) for name, c in s3.calls if name == "UploadPart")
    sizes = [size for _, size in parts]
    assert [number for number, _ in parts] == list(range(1, len(parts) + 1))
    assert sum(sizes) == total
    assert all(PART <= size < PART + MIB for size in sizes[:-1])  # a part holds at most one piece more
    completed = s3.calls[-1][1]["MultipartUpload"]["Parts"]
    assert s3.object() == data
    first = s3.answers[1]
    # Checksums repeated, not the type.
    assert completed[0] == {"PartNumber": 1, "ETag": first["ETag"], "ChecksumCRC32": first["ChecksumCRC32"]}


def test_a_failed_part_aborts_the_upload() -> None:
    s3 = RecordedS3(fail_part=2)
    with pytest.raises(ClientError):
        upload_all(s3, 3 * PART, MIB)
    assert s3.names()[-1] == "AbortMultipartUpload"
    assert "CompleteMultipartUpload" not in s3.names()
    assert s3.names().count("AbortMultipartUpload") == 1
    assert s3.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_an_abort_that_fails_is_logged_and_the_part_error_raised(caplog: pytest.LogCaptureFixture) -> None:
    s3 = RecordedS3(fail_part=2, fail_abort=True)
    with caplog.at_level(logging.WARNING), pytest.raises(ClientError, match="UploadPart"):
        upload_all(s3, 3 * PART, MIB)
    assert s3.names().count("AbortMultipartUpload") == 1
    assert "could not abort a multipart upload" in caplog.text
    # Left for the bucket's lifecycle rule.
    assert len(s3.client.list_multipart_uploads(Bucket=BUCKET)["Uploads"]) == 1


# ---------------------------------------------------------------------------------------------- the stream


def read_all(stream: RecordingStream, amount: int) -> list[bytes]:
    reads = []
    while chunk := stream.read(amount):
        reads.append(chunk)
    return reads


def test_the_stream_gives_whole_reads_and_hashes_what_passes() -> None:
    data = sample(3 * MIB + 5)
    stream = stream_of(data, piece=100_003)
    reads = read_all(stream, MIB)
    assert [len(r) for r in reads] == [MIB, MIB, MIB, 5]
    assert b"".join(reads) == data
    assert (stream.size, stream.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def test_a_recording_over_the_limit_fails_once_the_limit_is_passed() -> None:
    data = sample(2 * MIB)
    stream = stream_of(data, max_bytes=MIB, expected_size=None, host="h")
    with pytest.raises(_Permanent, match="over the size limit") as caught:
        read_all(stream, 4 * MIB)
    assert (caught.value.status, caught.value.host) == ("failed", "h")
    assert stream.size <= MIB + 64 * 1024  # stopped within a read of the limit


@pytest.mark.parametrize(
    ("data", "expected", "reason"),
    [
        (sample(1000), 2000, "transfer ended after 1000 of 2000 bytes"),
        (b"", None, "the recording server sent no bytes"),
    ],
)
def test_a_short_or_empty_body_is_an_error_at_its_end(data: bytes, expected: int | None, reason: str) -> None:
    stream = stream_of(data, expected_size=expected)
    with pytest.raises(RetryableCopyError, match=reason):
        read_all(stream, MIB)


def test_the_stream_stops_once_told_to() -> None:
    stream = stream_of(sample(MIB))
    stream.stop_when(lambda: True)
    with pytest.raises(RetryableCopyError, match="upload to storage failed"):
        stream.read(1000)


# ---------------------------------------------------------------------------------------------- part sizes


@pytest.mark.parametrize(
    ("size", "part_size", "expected"),
    [
        (None, 8 * MIB, 8 * MIB),  # size unknown (chunked, encoded): the setting
        (8 * MIB - 1, 8 * MIB, 8 * MIB),  # one PutObject
        (8 * MIB, 8 * MIB, 8 * MIB),  # one part
        (10 * MIB, 8 * MIB, 5 * MIB),  # two equal parts, not 8 + 2
        (12 * MIB + 1, 8 * MIB, 6 * MIB + 1),
        (200 * MIB, 8 * MIB, 8 * MIB),  # 25 full parts stay as they are
        (5 * MIB + 1, 5 * MIB, 5 * MIB),  # never under S3's minimum: 5 MiB and 1 byte
    ],
)
def test_a_known_size_is_cut_into_equal_parts(size: int | None, part_size: int, expected: int) -> None:
    assert balanced_part_size(size, part_size) == expected


@pytest.mark.parametrize("part_size", [5 * MIB, 8 * MIB, 8 * MIB + 3])
def test_equal_parts_are_as_many_as_full_ones_and_no_larger(part_size: int) -> None:
    for size in [part_size + 1, 2 * part_size - 1, 2 * part_size + 1, 7 * part_size + 12_345, 10_000 * part_size]:
        balanced = balanced_part_size(size, part_size)
        assert S3_MIN_PART_BYTES <= balanced <= part_size
        assert -(-size // balanced) == -(-size // part_size)


def test_a_recording_of_known_size_goes_up_in_equal_parts() -> None:
    s3 = RecordedS3()
    data = sample(10 * MIB)
    stream = stream_of(data, 1024 * 1024 - 3)
    upload_recording(
        s3.client, stream, BUCKET, KEY, content_type="audio/wav", metadata={}, part_size=8 * MIB, concurrency=2
    )
    parts = sorted((c["PartNumber"], c["size"]) for name, c in s3.calls if name == "UploadPart")
    assert parts == [(1, 5 * MIB), (2, 5 * MIB)]
    assert s3.object() == data
    assert stream.sha256 == hashlib.sha256(data).hexdigest()


def test_a_recording_of_unknown_size_goes_up_in_parts_of_the_setting() -> None:
    s3 = RecordedS3()
    data = sample(2 * PART + 1)
    stream = stream_of(data, 1024 * 1024 - 3, expected_size=None)
    upload_recording(
        s3.client, stream, BUCKET, KEY, content_type="audio/wav", metadata={}, part_size=PART, concurrency=2
    )
    parts = sorted((c["PartNumber"], c["size"]) for name, c in s3.calls if name == "UploadPart")
    assert parts == [(1, PART), (2, PART), (3, 1)]
    assert s3.object() == data
    assert stream.sha256 == hashlib.sha256(data).hexdigest()


class AskedPieces(Pieces):
    """Pieces that remember how much each read asked for."""

    def __init__(self, data: bytes, piece: int) -> None:
        super().__init__(data, piece)
        self.asked: list[int] = []

    def read(self, limit: int = READ_CHUNK_BYTES) -> bytes:
        self.asked.append(limit)
        return super().read(limit)


def test_the_stream_asks_the_body_for_the_rest_of_a_part_at_once() -> None:
    data = sample(3 * MIB)
    body = AskedPieces(data[512:], 10 * MIB)
    stream = RecordingStream(data[:512], body, max_bytes=1024 * MIB, expected_size=len(data))
    assert [len(r) for r in read_all(stream, 2 * MIB)] == [2 * MIB, MIB]
    # After the sniffed head: the rest of the first part, then the second part, then the end.
    assert body.asked[:2] == [2 * MIB - 512, 2 * MIB]
    assert stream.sha256 == hashlib.sha256(data).hexdigest()


def test_the_stream_never_asks_for_more_than_a_byte_past_the_limit() -> None:
    data = sample(4 * MIB)
    body = AskedPieces(data[512:], 10 * MIB)
    stream = RecordingStream(data[:512], body, max_bytes=MIB, expected_size=None)
    with pytest.raises(_Permanent, match="over the size limit"):
        read_all(stream, 4 * MIB)
    assert body.asked == [MIB + 1 - 512]
    assert stream.size == MIB + 1
