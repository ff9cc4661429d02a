"""A local recordings server: generated audio of any size, streamed, with the faults a real one has.

    with RecordingsServer() as server:
        url = server.url("call-1", size=200 * 1024 * 1024)          # 200 MB, never held in memory
        url = server.url("call-2", size=1_000_000, fail=2)           # 503 twice, then the file
        url = server.url("call-3", delay=2, slow=1)                  # first answer 2 s late
        url = server.url("call-4", status=404)                       # always 404
        expected = expected_sha256("call-1", 200 * 1024 * 1024)      # computed streaming too
        server.hits("call-1")                                        # GETs of that recording so far
        server.answers("call-1")                                     # each finished GET: bytes, complete?

GET /audio/<seed>.<ext>?<options> (the seed picks the bytes: the same seed, size and format, the same file):
  size=N            bytes of the file (a header of its format then noise; default 1 MiB)
  type=T            Content-Type (default from the extension; "none" sends none)
  format=F          what the bytes are: wav, mp3, ogg, m4a, flac, raw (noise only, no header), or html
                    (a web page, e.g. a login page
                    served instead of the file); default from `type` if it names one of them, else from
                    the extension, else wav
  chunked=1         Transfer-Encoding: chunked instead of Content-Length
  rate=B            at most B bytes per second
  status=S          always answer S (e.g. 403, 404, 410) with a small body
  fail=N            the first N requests answer fail_status (default 503), later ones the file
  retry_after=S     Retry-After header on those failures
  delay=S           wait S seconds before answering (the first `slow` requests, default all)
  stall=S           stop S seconds halfway through the body (the first `slow` requests, default all)
  truncate=1        close the connection halfway through the body (the first `slow` requests)
  redirect=URL      answer redirect_status (default 302) with Location: URL ("self": its own path, a loop)
  drip=S            send the body one byte every S seconds (the first `slow` requests, default all)
  drip_headers=S    send the status line and headers one byte every S seconds (likewise)
Requests are counted per path and query, so every distinct URL has its own "first N".

``python -m tools.simulator.recordings_server [--port 8082]`` serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import random
import struct
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from tools.background import BackgroundServer

BLOCK_BYTES = 1024 * 1024
WAV_HEADER_BYTES = 44
SAMPLE_RATE = 8000
TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "m4a": "audio/mp4", "bin": ""}
FORMATS = ("wav", "mp3", "ogg", "m4a", "flac", "raw", "html")
_FORMAT_OF_TYPE = {
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "audio/ogg": "ogg",
    "audio/mp4": "m4a",
    "audio/flac": "flac",
}
_HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form action=/login method=post>"
    b"<input name=user><input name=password type=password></form></body></html>\n"
)


def _wav_header(total: int) -> bytes:
    data = max(total - WAV_HEADER_BYTES, 0)
    return (
        b"RIFF"
        + struct.pack("<I", min(36 + data, 0xFFFFFFFF))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16)
        + b"data"
        + struct.pack("<I", min(data, 0xFFFFFFFF))
    )


def _header(fmt: str, size: int) -> bytes:
    """The first bytes of a file of that format (what a player, or the copier, recognises it by)."""
    if fmt == "wav":
        return _wav_header(size)
    if fmt == "mp3":
        return b"ID3\x04\x00\x00\x00\x00\x00\x00"
    if fmt == "ogg":
        return b"OggS\x00\x02" + bytes(20) + b"\x01\x1e\x01vorbis"
    if fmt == "m4a":
        return b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom\x00\x00\x00\x00"
    if fmt == "flac":
        return b"fLaC\x00\x00\x00\x22"
    if fmt == "raw":  # headerless audio (PCM, GSM): nothing tells what it is
        return b""
    raise ValueError(f"unknown format {fmt!r}")


@functools.lru_cache(maxsize=16)
def _noise_block(seed: str) -> bytes:
    return random.Random(seed).randbytes(BLOCK_BYTES)


def audio_chunks(seed: str, size: int, fmt: str = "wav") -> Iterator[bytes]:
    """The file of `seed`, `size` and format in pieces of at most 1 MiB: a header of the format, then
    noise (block i of the noise is the seed's block with i in its first 8 bytes, so no two blocks are
    alike); for "html", a web page repeated to the size."""
    if fmt == "html":
        page = _HTML_PAGE * (size // len(_HTML_PAGE) + 1)
        yield page[:size]
        return
    header = _header(fmt, size)[:size]
    if header:
        yield header
    remaining = size - len(header)
    base = _noise_block(seed)
    index = 0
    while remaining > 0:
        block = index.to_bytes(8, "big") + base[8:]
        piece = block[:remaining] if remaining < len(block) else block
        yield piece
        remaining -= len(piece)
        index += 1


def audio_bytes(seed: str, size: int, fmt: str = "wav") -> bytes:
    """The whole file (for small sizes)."""
    return b"".join(audio_chunks(seed, size, fmt))


def expected_sha256(seed: str, size: int, fmt: str = "wav") -> str:
    """SHA-256 of the file, computed piece by piece (any size, little memory)."""
    digest = hashlib.sha256()
    for piece in audio_chunks(seed, size, fmt):
        digest.update(piece)
    return digest.hexdigest()


@dataclass(frozen=True)
class Hit:
    """One request the server received."""

    method: str
    path: str
    query: str
    seed: str | None
    host: str
    count: int  # the how-manieth request for this path and query


@dataclass(frozen=True)
class Answer:
    """How the server's answer to one request ended."""

    body_bytes: int  # body bytes written (0 for a dripped answer, which is written byte by byte)
    complete: bool  # False: the client went away before the whole answer was written


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's default (5) overflows when many clients connect at once
    owner: RecordingsServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that gave up (timed out) and closed the connection
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        try:
            self.server.owner.serve(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (e.g. it timed out)

    def do_HEAD(self) -> None:
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


class RecordingsServer(BackgroundServer):
    """The server on 127.0.0.1 (port 0: a free one), in a thread of this process."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        server = _Server((host, port), _Handler)
        server.owner = self
        super().__init__(server, "recordings-server")
        self._lock = threading.Lock()
        self._finished = threading.Condition(self._lock)
        self._counts: dict[str, int] = {}
        self._hits: list[Hit] = []
        self._open: dict[str | None, int] = {}  # requests of a seed still being answered
        self._answers: dict[str | None, list[Answer]] = {}  # per finished request of a seed

    # ------------------------------------------------------------------ addresses and counters

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, seed: str, *, ext: str = "wav", host: str = "127.0.0.1", **options: Any) -> str:
        """Link to the recording of `seed` with the given options (see the module docstring)."""
        query = {k: ("1" if v is True else v) for k, v in options.items() if v is not None and v is not False}
        suffix = f"?{urlencode(query)}" if query else ""
        return f"http://{host}:{self.port}/audio/{quote(seed, safe='')}.{ext}{suffix}"

    def hits(self, seed: str | None = None) -> int:
        """Requests received so far (for one recording's seed, or in all)."""
        with self._lock:
            return sum(1 for hit in self._hits if seed is None or hit.seed == seed)

    def answers(self, seed: str, timeout: float = 60.0) -> list[Answer]:
        """How each request of `seed` ended, once none is still being answered (a client that gave up is
        noticed at the next write). Waits for the server, never guesses a time: a test asks whether a
        client cut a download midway here, rather than how long the client took."""
        with self._finished:
            if not self._finished.wait_for(lambda: not self._open.get(seed), timeout=timeout):
                raise TimeoutError(f"a request for {seed!r} is still being answered after {timeout} s")
            return list(self._answers.get(seed, []))

    def body_bytes_sent(self, seed: str, timeout: float = 60.0) -> list[int]:
        """Body bytes written for each request of `seed` (see `answers`)."""
        return [answer.body_bytes for answer in self.answers(seed, timeout)]

    @property
    def requests(self) -> list[Hit]:
        with self._lock:
            return list(self._hits)

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()
            self._counts.clear()
            self._answers.clear()

    # ------------------------------------------------------------------ answering

    def serve(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        options = {k: v[-1] for k, v in parse_qs(split.query).items()}
        seed, ext = _seed_and_ext(split.path)
        with self._lock:
            count = self._counts.get(handler.path, 0) + 1
            self._counts[handler.path] = count
            self._hits.append(Hit("GET", split.path, split.query, seed, handler.headers.get("Host", ""), count))
            self._open[seed] = self._open.get(seed, 0) + 1
        sent = [0]
        complete = False
        try:
            self._answer(handler, seed, ext, options, count, sent)
            complete = True
        finally:
            with self._finished:
                self._open[seed] -= 1
                self._answers.setdefault(seed, []).append(Answer(sent[0], complete))
                self._finished.notify_all()

    def _answer(
        self, handler: _Handler, seed: str | None, ext: str, options: dict[str, str], count: int, sent: list[int]
    ) -> None:
        if seed is None:
            return _small(handler, 404, "no such recording")
        slow = int(options.get("slow", "0"))
        faulty = slow == 0 or count <= slow
        if float(options.get("delay", "0")) and faulty:
            time.sleep(float(options["delay"]))
        if "status" in options:
            return _small(handler, int(options["status"]), "as asked")
        if count <= int(options.get("fail", "0")):
            extra = {"Retry-After": options["retry_after"]} if "retry_after" in options else {}
            return _small(handler, int(options.get("fail_status", "503")), "failing as asked", extra)
        if "redirect" in options:
            location = handler.path if options["redirect"] == "self" else options["redirect"]
            return _small(handler, int(options.get("redirect_status", "302")), "moved", {"Location": location})
        size = int(options.get("size", str(1024 * 1024)))
        content_type = options.get("type", TYPES.get(ext, "application/octet-stream"))
        fmt = options.get("format") or file_format(content_type, ext)
        chunked = options.get("chunked") == "1"
        handler.send_response(200)
        if content_type and content_type != "none":
            handler.send_header("Content-Type", content_type)
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(size))
        drip_headers = float(options.get("drip_headers", "0")) if faulty else 0.0
        if drip_headers:
            _drip(handler, b"".join(handler._headers_buffer) + b"\r\n", drip_headers)  # type: ignore[attr-defined]
            handler._headers_buffer = []  # type: ignore[attr-defined]
        else:
            handler.end_headers()
        drip = float(options.get("drip", "0")) if faulty else 0.0
        if drip:
            for piece in audio_chunks(seed, size, fmt):
                _drip(handler, piece, drip)
            return
        interrupt = None
        if faulty and float(options.get("stall", "0")):
            interrupt = "stall"
        if faulty and options.get("truncate") == "1":
            interrupt = "truncate"
        self._body(
            handler,
            seed,
            size,
            chunked,
            int(options.get("rate", "0")),
            interrupt,
            float(options.get("stall", "0")),
            fmt,
            sent,
        )

    @staticmethod
    def _body(
        handler: _Handler,
        seed: str,
        size: int,
        chunked: bool,
        rate: int,
        interrupt: str | None,
        stall: float,
        fmt: str = "wav",
        progress: list[int] | None = None,
    ) -> None:
        out = handler.wfile
        half = size // 2
        sent = 0
        started = time.monotonic()
        step = max(1024, rate // 20) if rate else BLOCK_BYTES

        def write(data: bytes) -> None:
            nonlocal sent
            for start in range(0, len(data), step):
                piece = data[start : start + step]
                if chunked:
                    out.write(f"{len(piece):X}\r\n".encode() + piece + b"\r\n")
                else:
                    out.write(piece)
                sent += len(piece)
                if progress is not None:
                    progress[0] = sent
                if rate:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)

        for piece in audio_chunks(seed, size, fmt):
            if interrupt is not None and sent + len(piece) > half:
                cut = half - sent
                write(piece[:cut])
                out.flush()
                if interrupt == "truncate":
                    handler.close_connection = True
                    return
                time.sleep(stall)
                interrupt = None
                write(piece[cut:])
                continue
            write(piece)
        if chunked:
            out.write(b"0\r\n\r\n")
        out.flush()


def file_format(content_type: str | None, ext: str) -> str:
    """The format of the bytes served for a content type and extension (see `format=`)."""
    declared = _FORMAT_OF_TYPE.get((content_type or "").split(";", 1)[0].strip().lower())
    return declared or (ext if ext in FORMATS else "wav")


def _drip(handler: _Handler, data: bytes, every: float) -> None:
    """`data` one byte at a time, `every` seconds apart (a client that gives up ends it: a broken pipe)."""
    for index in range(len(data)):
        handler.wfile.write(data[index : index + 1])
        handler.wfile.flush()
        time.sleep(every)


def _seed_and_ext(path: str) -> tuple[str | None, str]:
    if not path.startswith("/audio/") or len(path) <= len("/audio/"):
        return None, ""
    name = path[len("/audio/") :]
    seed, dot, ext = name.rpartition(".")
    if not dot or "/" in ext:
        return unquote(name), "bin"
    return unquote(seed), ext.lower()


def _small(handler: _Handler, status: int, text: str, headers: dict[str, str] | None = None) -> None:
    body = f"{status} {text}\n".encode()
    handler.send_response(status)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Type", "text/plain")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.simulator.recordings_server", description="local recordings server"
    )
    parser.add_argument("--port", type=int, default=8082)
    args = parser.parse_args(argv)
    with RecordingsServer(args.port) as server:
        print(f"Recordings on {server.base_url}/audio/<seed>.wav?size=<bytes>  (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
