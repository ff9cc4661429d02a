"""Local parts that run on a daemon thread of their own until stopped: the local HTTP servers (gateway,
fault proxy, recordings server, AIRUDDER simulator) and the pollers that play Lambda's event source
mappings. One way to start and stop them, and to use them as context managers.
"""

from __future__ import annotations

import logging
import socketserver
import threading
from typing import Self

log = logging.getLogger(__name__)


class Background:
    """Runs `_loop` on a daemon thread from `start` until `stop`; `_interrupt` makes `_loop` return.
    Starting a started part, or stopping a stopped one, does nothing."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        raise NotImplementedError

    def _interrupt(self) -> None:
        self._stopping.set()

    def start(self) -> Self:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._interrupt()
            thread.join(timeout=timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BackgroundServer(Background):
    """A socketserver server answering on its own thread; its socket is closed when it stops."""

    def __init__(self, server: socketserver.TCPServer, name: str) -> None:
        super().__init__(name)
        self._server = server

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    def _loop(self) -> None:
        self._server.serve_forever(poll_interval=0.05)

    def _interrupt(self) -> None:
        super()._interrupt()
        self._server.shutdown()

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        self._server.server_close()


class Poller(Background):
    """Calls `_poll` on its thread until stopped. After a poll that found nothing it waits `idle_seconds`;
    after a failure (the endpoint went away, or a transient error) a second, and goes on polling."""

    idle_seconds = 0.0

    def _poll(self) -> bool:
        """One poll; True when it found work."""
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                found = self._poll()
            except Exception as exc:
                log.warning("%s: polling failed: %s", self.name, exc)
                self._stopping.wait(1.0)
                continue
            if not found:
                self._stopping.wait(self.idle_seconds)
