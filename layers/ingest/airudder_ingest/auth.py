"""Who may post: the per-deployment webhook token.

AIRUDDER can only be given a URL, so the token travels as the query parameter `token` (or, for
senders that can set headers, `X-Webhook-Token`). The secret holds up to two accepted values so it
can be rotated without a gap: {"current": "...", "previous": "..."}.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .errors import AuthUnavailable, Unauthorized

TOKEN_QUERY_PARAM = "token"  # noqa: S105 - a parameter name, not a secret
TOKEN_HEADER = "x-webhook-token"  # noqa: S105 - a header name
# After a mismatch, the secret is read again (rotation may just have happened), at most this often.
REFRESH_ON_MISMATCH_SECONDS = 30


def presented_token(query: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    return query.get(TOKEN_QUERY_PARAM) or headers.get(TOKEN_HEADER) or None


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
    from . import aws

    client = aws.client("secretsmanager")
    provider = _providers.get(id(client))
    if provider is None:
        # Imported on first use. The provider is bound to our client (timeouts, endpoint) rather than
        # Powertools' default one, so that it follows aws.reset_clients().
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        provider = _providers[id(client)] = SecretsProvider(boto3_client=client)
    return provider.get(name, max_age=max_age, force_fetch=force)


class TokenVerifier:
    """Checks a presented token against the secret, in constant time, with a cached secret."""

    def __init__(
        self,
        secret_name: str,
        cache_seconds: int = 300,
        fetch: Callable[[str, int, bool], Any] = fetch_secret,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_name = secret_name
        self._cache_seconds = cache_seconds
        self._fetch = fetch
        self._clock = clock
        self._last_forced = float("-inf")
        self._lock = threading.Lock()

    def _tokens(self, force: bool) -> tuple[str, ...]:
        try:
            return accepted_tokens(self._fetch(self._secret_name, self._cache_seconds, force))
        except Exception as exc:
            raise AuthUnavailable("the webhook token secret could not be read; retry later") from exc

    def verify(self, presented: str | None) -> None:
        """Returns when the token is accepted; raises Unauthorized (or AuthUnavailable) otherwise."""
        if not presented:
            raise Unauthorized("missing webhook token")
        if _matches(presented, self._tokens(force=False)):
            return
        with self._lock:
            now = self._clock()
            refresh = now - self._last_forced >= REFRESH_ON_MISMATCH_SECONDS
            if refresh:
                self._last_forced = now
        if refresh and _matches(presented, self._tokens(force=True)):
            return
        raise Unauthorized("invalid webhook token")


def _matches(presented: str, accepted: tuple[str, ...]) -> bool:
    given = presented.encode()
    # Compare against every accepted value, so the time taken does not tell which one matched.
    results = [hmac.compare_digest(given, token.encode()) for token in accepted]
    return any(results)
