"""Generated call recordings: a WAV file of a chosen size, the same bytes for the same call id."""

from __future__ import annotations

import hashlib
import math
import struct
from array import array
from collections.abc import Iterator

SAMPLE_RATE = 8000
HEADER_BYTES = 44


def wav_header(data_bytes: int, sample_rate: int = SAMPLE_RATE) -> bytes:
    """RIFF header of a 16-bit mono PCM file holding `data_bytes` of samples."""
    byte_rate = sample_rate * 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, byte_rate, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def _tone(call_id: str) -> bytes:
    """One second of a sine tone whose pitch depends on the call id."""
    freq = 300 + int(hashlib.sha256(call_id.encode()).hexdigest()[:4], 16) % 600
    samples = array("h", (int(8000 * math.sin(2 * math.pi * freq * n / SAMPLE_RATE)) for n in range(SAMPLE_RATE)))
    return samples.tobytes()


def recording_chunks(call_id: str, total_bytes: int, chunk_bytes: int = 64 * 1024) -> Iterator[bytes]:
    """The file in chunks: exactly max(total_bytes, 44) bytes, header first."""
    data_bytes = max(total_bytes - HEADER_BYTES, 0)
    yield wav_header(data_bytes)
    tone = _tone(call_id)
    sent = 0
    while sent < data_bytes:
        start = sent % len(tone)
        piece = tone[start : start + min(chunk_bytes, data_bytes - sent)]
        yield piece
        sent += len(piece)


def recording_size(total_bytes: int) -> int:
    return max(total_bytes, HEADER_BYTES)
