"""S3StreamUpload: how written pieces become S3 calls (moto checks the same against real S3 rules in
tests/integration/test_recordings_archive.py). The S3 stand-in below enforces S3's part rules."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from airudder_ingest.recordings import S3StreamUpload

MIB = 1024 * 1024
PART = 5 * MIB


class StrictS3:
    """Records calls; refuses what S3 refuses (a part under 5 MiB that is not the last, gaps in numbers)."""

    def __init__(self, fail_part: int | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.parts: dict[int, int] = {}
        self.fail_part = fail_part
        self.objects: dict[str, bytes] = {}
        self._data: dict[int, bytes] = {}

    def put_object(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("put_object", {k: v for k, v in kw.items() if k != "Body"}))
        self.objects[kw["Key"]] = kw["Body"]
        return {}

    def create_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("create_multipart_upload", kw))
        return {"UploadId": "u1"}

    def upload_part(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("upload_part", {"PartNumber": kw["PartNumber"], "size": len(kw["Body"])}))
        if kw["PartNumber"] == self.fail_part:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "x"}}, "UploadPart")
        self.parts[kw["PartNumber"]] = len(kw["Body"])
        self._data[kw["PartNumber"]] = kw["Body"]
        return {"ETag": f'"e{kw["PartNumber"]}"', "ChecksumCRC32": f"c{kw['PartNumber']}", "ChecksumType": "COMPOSITE"}

    def complete_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("complete_multipart_upload", kw))
        numbers = [p["PartNumber"] for p in kw["MultipartUpload"]["Parts"]]
        assert numbers == list(range(1, len(numbers) + 1))
        assert all(self.parts[n] >= PART for n in numbers[:-1]), "EntityTooSmall"
        self.objects[kw["Key"]] = b"".join(self._data[n] for n in numbers)
        return {}

    def abort_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("abort_multipart_upload", kw))
        return {}

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def write_all(upload: S3StreamUpload, total: int, piece: int) -> bytes:
    data = bytes(range(256)) * (total // 256 + 1)
    data = data[:total]
    for start in range(0, total, piece):
        upload.write(data[start : start + piece])
    upload.complete()
    return data


def new_upload(s3: StrictS3) -> S3StreamUpload:
    return S3StreamUpload(
        s3, "bucket", "recordings/k.wav", content_type="audio/wav", part_size=PART, metadata={"a": "b"}
    )


def test_a_recording_smaller_than_a_part_is_one_put_object() -> None:
    s3 = StrictS3()
    data = write_all(new_upload(s3), PART - 1, 64 * 1024)
    assert s3.names() == ["put_object"]
    assert s3.calls[0][1] == {
        "Bucket": "bucket",
        "Key": "recordings/k.wav",
        "ContentType": "audio/wav",
        "Metadata": {"a": "b"},
    }
    assert s3.objects["recordings/k.wav"] == data


@pytest.mark.parametrize("total", [PART, 2 * PART, 2 * PART + 1, 3 * PART - 7])
def test_larger_ones_go_up_in_parts_of_at_least_the_part_size(total: int) -> None:
    s3 = StrictS3()
    data = write_all(new_upload(s3), total, 1024 * 1024 - 3)
    names = s3.names()
    assert names[0] == "create_multipart_upload" and names[-1] == "complete_multipart_upload"
    sizes = [c[1]["size"] for c in s3.calls if c[0] == "upload_part"]
    assert sum(sizes) == total
    assert all(PART <= size < PART + MIB for size in sizes[:-1])  # a part holds at most one piece more
    assert s3.objects["recordings/k.wav"] == data
    parts = s3.calls[-1][1]["MultipartUpload"]["Parts"]
    assert parts[0] == {"PartNumber": 1, "ETag": '"e1"', "ChecksumCRC32": "c1"}  # checksums repeated, not the type


def test_a_failed_part_aborts_the_upload() -> None:
    s3 = StrictS3(fail_part=2)
    upload = new_upload(s3)
    with pytest.raises(ClientError):
        write_all(upload, 3 * PART, MIB)
    upload.abort()
    assert s3.names()[-1] == "abort_multipart_upload"
    assert "complete_multipart_upload" not in s3.names()
    upload.abort()  # twice is harmless
    assert s3.names().count("abort_multipart_upload") == 1
