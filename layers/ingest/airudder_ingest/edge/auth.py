"""Who may post: the per-deployment webhook token.

AIRUDDER can only be given a URL, so the token travels as the query parameter `token` (or, for
senders that can set headers, `X-Webhook-Token`). The secret holds up to two accepted values so it
can be rotated without a gap: {"current": "...", "previous": "..."}.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping

from airudder_ingest.base.errors import Unauthorized
from airudder_ingest.base.secret_values import Fetch, SecretValues, fetch_secret

TOKEN_QUERY_PARAM = "token"  # noqa: S105 - a parameter name, not a secret
TOKEN_HEADER = "x-webhook-token"  # noqa: S105 - a header name


def presented_token(query: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    return query.get(TOKEN_QUERY_PARAM) or headers.get(TOKEN_HEADER) or None


class TokenVerifier:
    """Checks a presented token against the secret, in constant time, with a cached secret."""

    def __init__(
        self,
        secret_name: str,
        cache_seconds: int = 300,
        fetch: Fetch = fetch_secret,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret = SecretValues(secret_name, "webhook token secret", cache_seconds, fetch, clock)

    def verify(self, presented: str | None) -> None:
        """Returns when the token is accepted; raises Unauthorized (or AuthUnavailable) otherwise."""
        if not presented:
            raise Unauthorized("missing webhook token")
        if _matches(presented, self._secret.values()):
            return
        # A mismatch may follow a rotation this container has not seen yet: read the secret again.
        if self._secret.may_refresh() and _matches(presented, self._secret.values(force=True)):
            return
        raise Unauthorized("invalid webhook token")


def _matches(presented: str, accepted: tuple[str, ...]) -> bool:
    given = presented.encode()
    # Compare against every accepted value, so the time taken does not tell which one matched.
    results = [hmac.compare_digest(given, token.encode()) for token in accepted]
    return any(results)
