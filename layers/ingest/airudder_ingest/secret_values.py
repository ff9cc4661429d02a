"""Values kept in Secrets Manager for the callback checks (signing secret, decryption key).

Read through Powertools Parameters (cached for `cache_seconds`), like the webhook token in auth.py,
and in the same forms: plain text, a JSON list, or {"current": "...", "previous": "..."} so that a
value can be rotated without a gap (both are tried). After a mismatch the secret may be read again
(rotation may just have happened), at most once per REFRESH_AFTER_MISMATCH_SECONDS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .auth import accepted_tokens, fetch_secret
from .errors import AuthUnavailable

REFRESH_AFTER_MISMATCH_SECONDS = 30

Fetch = Callable[[str, int, bool], Any]


def fetch_with_powertools(name: str, max_age: int, force: bool) -> Any:
    return fetch_secret(name, max_age, force)


class SecretValues:
    def __init__(
        self,
        name: str,
        purpose: str,
        cache_seconds: int = 300,
        fetch: Fetch = fetch_with_powertools,
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
