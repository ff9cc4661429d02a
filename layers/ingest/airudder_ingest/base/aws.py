"""boto3 clients, created once per container on first use.

Endpoints, region and retries come from the standard AWS environment (AWS_ENDPOINT_URL,
AWS_MAX_ATTEMPTS, AWS_RETRY_MODE), so the same code talks to AWS or to a local moto server.
"""

from __future__ import annotations

import threading
from typing import Any

_clients: dict[str, Any] = {}
_lock = threading.Lock()
# Short timeouts: the sender retries a failed delivery a minute later, a hung call helps nobody.
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 5


def client(service: str) -> Any:
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:  # boto3's default session is not safe to build clients from several threads at once
        if service not in _clients:
            import boto3
            from botocore.config import Config

            config = Config(connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS)
            _clients[service] = boto3.client(service, config=config)
        return _clients[service]


def reset_clients() -> None:
    """Forget the cached clients (tests and local tools that change the endpoint)."""
    with _lock:
        _clients.clear()
