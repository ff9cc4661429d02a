"""A moto server in this process, and boto3 clients pointed at it.

Moto keeps its state in module globals: every moto server of one process shares it.
"""

from __future__ import annotations

import logging
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_REGION = "us-east-1"
DEFAULT_STACK_NAME = "airudder-local"
DEFAULT_TOKEN = "local-dev-token"
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def quiet_werkzeug() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


class MotoServer:
    """moto's ThreadedMotoServer on 127.0.0.1 (port 0 picks a free port)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        from moto.server import ThreadedMotoServer

        quiet_werkzeug()
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._started = False
        self.host = host
        self.port = port

    def start(self) -> MotoServer:
        self._server.start()
        self._started = True
        self.host, self.port = self._server.get_host_and_port()
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Forget every resource and item (moto's state is per process, not per server)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def stop(self) -> None:
        if self._started:
            self._server.stop()
            self._started = False


def aws_client(service: str, endpoint_url: str, region: str = DEFAULT_REGION) -> Any:
    """A boto3 client with fake credentials pointed at ``endpoint_url`` (own session: thread-safe)."""
    session = boto3.session.Session(region_name=region, **FAKE_CREDENTIALS)
    config = Config(retries={"max_attempts": 2, "mode": "standard"})
    return session.client(service, endpoint_url=endpoint_url, config=config)
