"""Values kept in Secrets Manager: the webhook token, the signing secret, the decryption key.

Read through Powertools Parameters (cached for `cache_seconds`), in these forms: plain text, a JSON
list, or {"current": "...", "previous": "..."} so that a value can be rotated without a gap (both are
tried). After a mismatch the secret may be read again
(rotation may just have happened), at most once per REFRESH_AFTER_MISMATCH_SECONDS.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from airudder_ingest.base.errors import AuthUnavailable

REFRESH_AFTER_MISMATCH_SECONDS = 30

Fetch = Callable[[str, int, bool], Any]


def accepted_tokens(secret_value: Any) -> tuple[str, ...]:
    """The token values a secret accepts: a JSON object's `current`/`previous`, a list, or plain text."""
    if isinstance(secret_value, bytes):
        secret_value = secret_value.decode()
    if isinstance(secret_value, str):
        text = secret_value.strip()
        try:
            secret_value = json.loads(text)
        except ValueError:
            return (text,) if text else ()
    if isinstance(secret_value, Mapping):
        values: list[Any] = [secret_value.get("current"), secret_value.get("previous")]
    elif isinstance(secret_value, list):
        values = secret_value
    else:
        values = [secret_value]
    return tuple(v for v in values if isinstance(v, str) and v)


_providers: dict[int, Any] = {}


def fetch_secret(name: str, max_age: int, force: bool) -> Any:
    """A secret's value through Powertools Parameters, cached for `max_age` seconds."""
    from airudder_ingest.base import aws

    client = aws.client("secretsmanager")
    provider = _providers.get(id(client))
    if provider is None:
        # Imported on first use. The provider is bound to our client (timeouts, endpoint) rather than
        # Powertools' default one, so that it follows aws.reset_clients().
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        provider = _providers[id(client)] = SecretsProvider(boto3_client=client)
    return provider.get(name, max_age=max_age, force_fetch=force)


class SecretValues:
    def __init__(
        self,
        name: str,
        purpose: str,
        cache_seconds: int = 300,
        fetch: Fetch = fetch_secret,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._purpose = purpose  # for the error message only, e.g. "signing secret"
        self._cache_seconds = cache_seconds
        self._fetch = fetch
        self._clock = clock
        self._last_forced = float("-inf")
        self._lock = threading.Lock()

    def values(self, force: bool = False) -> tuple[str, ...]:
        """The accepted values; raises AuthUnavailable (503, the sender retries) when unreadable."""
        try:
            found = accepted_tokens(self._fetch(self.name, self._cache_seconds, force))
        except Exception as exc:
            raise AuthUnavailable(f"the {self._purpose} could not be read; retry later") from exc
        if not found:
            raise AuthUnavailable(f"the {self._purpose} is empty; retry later")
        return found

    def may_refresh(self) -> bool:
        """True at most once per REFRESH_AFTER_MISMATCH_SECONDS: the caller may read again with force."""
        with self._lock:
            now = self._clock()
            if now - self._last_forced >= REFRESH_AFTER_MISMATCH_SECONDS:
                self._last_forced = now
                return True
        return False
