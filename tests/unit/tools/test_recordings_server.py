"""tools/simulator/recordings_server.py over real HTTP: the bytes it serves are the ones the tests expect, and it
fails the way it is asked to."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
import requests

from tools.simulator.recordings_server import RecordingsServer, audio_bytes, audio_chunks, expected_sha256


@pytest.fixture(scope="module")
def server() -> Iterator[RecordingsServer]:
    with RecordingsServer() as running:
        yield running


def test_the_same_seed_and_size_give_the_same_wav_file(server: RecordingsServer) -> None:
    first = requests.get(server.url("s1", size=3_000_001), timeout=10)
    again = requests.get(server.url("s1", size=3_000_001), timeout=10)
    other = requests.get(server.url("s2", size=3_000_001), timeout=10)
    assert first.status_code == 200
    assert first.headers["Content-Type"] == "audio/wav"
    assert first.headers["Content-Length"] == "3000001"
    assert first.content == again.content != other.content
    assert first.content[:4] == b"RIFF" and first.content[8:12] == b"WAVE"
    assert first.content == audio_bytes("s1", 3_000_001)
    assert hashlib.sha256(first.content).hexdigest() == expected_sha256("s1", 3_000_001)


def test_no_two_megabytes_of_the_noise_are_alike() -> None:
    blocks = [piece for piece in audio_chunks("s", 4 * 1024 * 1024 + 44)][1:]
    assert len(blocks) == 4 and len(set(blocks)) == 4


@pytest.mark.parametrize("size", [0, 10, 44, 45])
def test_tiny_sizes_are_served_exactly(server: RecordingsServer, size: int) -> None:
    assert len(requests.get(server.url(f"tiny{size}", size=size), timeout=10).content) == size


def test_chunked_transfer_serves_the_same_bytes(server: RecordingsServer) -> None:
    answer = requests.get(server.url("c", size=1_500_000, chunked=True), timeout=10)
    assert "Content-Length" not in answer.headers and answer.headers["Transfer-Encoding"] == "chunked"
    assert answer.content == audio_bytes("c", 1_500_000)


def test_it_fails_the_first_n_requests_of_a_url_then_serves(server: RecordingsServer) -> None:
    url = server.url("f", size=100, fail=2, fail_status=502, retry_after=7)
    answers = [requests.get(url, timeout=10) for _ in range(3)]
    assert [a.status_code for a in answers] == [502, 502, 200]
    assert answers[0].headers["Retry-After"] == "7"
    assert server.hits("f") == 3


def test_status_redirect_and_hits(server: RecordingsServer) -> None:
    assert requests.get(server.url("gone", status=410), timeout=10).status_code == 410
    moved = requests.get(server.url("m", redirect="http://elsewhere/x"), allow_redirects=False, timeout=10)
    assert (moved.status_code, moved.headers["Location"]) == (302, "http://elsewhere/x")
    assert [h.seed for h in server.requests if h.seed in {"gone", "m"}] == ["gone", "m"]
    assert requests.get(f"{server.base_url}/nothing-here", timeout=10).status_code == 404


def test_a_slow_first_answer_times_a_client_out(server: RecordingsServer) -> None:
    url = server.url("slow", size=100, delay=1.5, slow=1)
    with pytest.raises(requests.Timeout):
        requests.get(url, timeout=(1, 0.3))
    assert requests.get(url, timeout=(1, 0.3)).status_code == 200


def test_a_truncated_body_breaks_the_transfer(server: RecordingsServer) -> None:
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(server.url("cut", size=2_000_000, truncate=True), timeout=10)


def test_seeds_with_any_characters_round_trip(server: RecordingsServer) -> None:
    seed = "a/b c?d#é"
    assert requests.get(server.url(seed, size=99), timeout=10).content == audio_bytes(seed, 99)
    assert server.hits(seed) == 1
