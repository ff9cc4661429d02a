"""Per-route settings held in one environment variable as a JSON object.

Keys name a webhook type (`chatbot.session_ended`) or a route as in template.yaml
(`/webhooks/chatbot/session-ended`, `/webhooks/{product}/call`), exactly or as a shell-style pattern
(`chatbot.*`, `/webhooks/chatbot/*`). The value is the route's settings, or null to switch a route
off that a pattern would otherwise cover:

    {"chatbot.*": {...}, "chatbot.inbound": null}

Which key wins: the webhook type exactly, then the route exactly, then the most specific pattern
(most literal characters; ties broken by the key's text, so the choice never depends on key order).
The text is parsed and validated once, when the pipeline is built (once per cold start): a typo
fails the cold start instead of passing deliveries unchecked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import ClassVar, Generic, Self, TypeVar, cast

from pydantic import BaseModel, ValidationError

from airudder_ingest.base.secret_values import Fetch, fetch_secret

Rule = TypeVar("Rule", bound=BaseModel)
Worker = TypeVar("Worker")
_WILDCARDS = re.compile(r"[*?\[\]]")


class RouteSettingsError(ValueError):
    """The setting's text is not a JSON object of valid per-route settings."""


def _route_rule(key: str, value: object, rule: type[Rule], setting: str) -> Rule | None:
    """One entry of the setting: its rule, or None (off)."""
    if not key.strip():
        raise RouteSettingsError(f"{setting} has an empty key")
    try:
        return None if value is None else rule.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(value)'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise RouteSettingsError(f"{setting}[{key!r}] is not valid: {problems}") from None


class RouteSettings(Generic[Rule]):
    def __init__(self, rules: Mapping[str, Rule | None]) -> None:
        self._exact = {k: v for k, v in rules.items() if not _WILDCARDS.search(k)}
        patterns = [k for k in rules if _WILDCARDS.search(k)]
        patterns.sort(key=lambda k: (-len(_WILDCARDS.sub("", k)), k))
        self._patterns = [(k, rules[k]) for k in patterns]

    @classmethod
    def parse(cls, text: str | None, rule: type[Rule], setting: str) -> RouteSettings[Rule]:
        """Read `text` (the environment variable `setting`); blank means no route has settings."""
        if not text or not text.strip():
            return cls({})
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise RouteSettingsError(f"{setting} is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise RouteSettingsError(f"{setting} must be a JSON object keyed by webhook type or route")
        return cls({key: _route_rule(key, value, rule, setting) for key, value in raw.items()})

    def __bool__(self) -> bool:
        return any(v is not None for v in self._exact.values()) or any(v is not None for _, v in self._patterns)

    def for_route(self, webhook_type: str, route: str) -> Rule | None:
        """The settings of a delivery of `webhook_type` received on `route`, or None (off)."""
        for name in (webhook_type, route):
            if name in self._exact:
                return self._exact[name]
        for pattern, value in self._patterns:
            if fnmatchcase(webhook_type, pattern) or fnmatchcase(route, pattern):
                return value
        return None


class RouteWorkers(Generic[Rule, Worker]):
    """What applies each route's rule (a signature verifier, a decryptor): one per distinct rule, built on
    first use, so the routes that share a rule share its cached secret. A subclass names its setting and
    rule type, and says how a rule and the secret fetcher make a worker (`build`)."""

    setting: ClassVar[str]
    rule_type: ClassVar[type[BaseModel]]

    def __init__(self, rules: RouteSettings[Rule], fetch: Fetch = fetch_secret) -> None:
        self.rules = rules
        self._fetch = fetch
        self._workers: dict[Rule, Worker] = {}

    @classmethod
    def from_json(cls, text: str | None, fetch: Fetch = fetch_secret) -> Self:
        """The workers of the setting's text (see RouteSettings.parse)."""
        return cls(cast("RouteSettings[Rule]", RouteSettings.parse(text, cls.rule_type, cls.setting)), fetch)

    def build(self, rule: Rule, fetch: Fetch) -> Worker:
        raise NotImplementedError

    def for_route(self, webhook_type: str, route: str) -> Worker | None:
        rule = self.rules.for_route(webhook_type, route)
        if rule is None:
            return None
        found = self._workers.get(rule)
        if found is None:
            found = self._workers.setdefault(rule, self.build(rule, self._fetch))
        return found
