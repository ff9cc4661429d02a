"""tools/background.py: one lifecycle for the local servers and the pollers."""

from __future__ import annotations

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tools.background import BackgroundServer, Poller


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        return


def _server() -> BackgroundServer:
    return BackgroundServer(ThreadingHTTPServer(("127.0.0.1", 0), _Hello), "test-server")


def test_a_server_answers_between_start_and_stop_and_its_socket_is_closed_after() -> None:
    # Given a server on a free port
    server = _server()
    # When it runs as a context manager
    with server, urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=10) as answer:
        body = answer.read()
    # Then it answered, and its socket is closed once stopped
    assert body == b"hello"
    assert server._server.socket.fileno() == -1


def test_stopping_a_server_that_never_started_returns_and_closes_it() -> None:
    server = _server()
    # socketserver's shutdown() alone would wait for ever for a serve_forever that never ran
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(timeout=30)
    assert not stopper.is_alive()
    assert server._server.socket.fileno() == -1


def test_starting_twice_runs_one_thread() -> None:
    server = _server()
    try:
        first = server.start()._thread
        assert server.start()._thread is first
    finally:
        server.stop()
    assert server._thread is None


class _Scripted(Poller):
    """Fails on its first poll, then finds work, then finds none and signals."""

    idle_seconds = 60.0  # a poll that found nothing waits on the stop event: stop() must cut it short

    def __init__(self) -> None:
        super().__init__("scripted")
        self.polls = 0
        self.idle = threading.Event()

    def _poll(self) -> bool:
        self.polls += 1
        if self.polls == 1:
            raise ConnectionError("the endpoint went away")
        if self.polls == 2:
            return True
        self.idle.set()
        return False


def test_a_poller_goes_on_after_a_failure_and_stop_ends_its_idle_wait(caplog: pytest.LogCaptureFixture) -> None:
    # Given a poller whose first poll fails
    poller = _Scripted()
    # When it runs until it finds nothing to do
    with poller:
        assert poller.idle.wait(timeout=30)
    # Then it logged the failure, polled again at once after finding work, and stop() returned
    # without waiting out the 60 s idle pause
    assert poller.polls == 3
    assert poller._thread is None
    assert any("polling failed: the endpoint went away" in r.getMessage() for r in caplog.records)
