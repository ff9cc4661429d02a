"""Callback signature verification (HMAC-SHA256 over the raw body) and per-route settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from airudder_ingest.base.errors import AuthUnavailable, Unauthorized
from airudder_ingest.base.secret_values import SecretValues
from airudder_ingest.edge.apigw import WebhookRequest
from airudder_ingest.edge.route_settings import RouteSettings, RouteSettingsError
from airudder_ingest.edge.signing import HmacSha256Verifier, SignatureRule, SignatureVerification

KEY = "s3cr3t-signing-key"
BODY = b'{"call_id":"s1","status":"closed","timestamp":1744791160}'


class FakeSecrets:
    """Stands in for Powertools Parameters: a cached value, renewed only by a forced read."""

    def __init__(self, value: Any) -> None:
        self.value = value  # what Secrets Manager holds now
        self.cached: Any = None
        self.reads: list[bool] = []

    def __call__(self, name: str, max_age: int, force: bool) -> Any:
        self.reads.append(force)
        if isinstance(self.value, Exception):
            raise self.value
        if force or self.cached is None:
            self.cached = self.value
        return self.cached


def signed(body: bytes, key: str = KEY, encoding: str = "hex") -> str:
    digest = hmac.new(key.encode(), body, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def verifier(secret: Any = KEY, **rule: Any) -> tuple[HmacSha256Verifier, FakeSecrets]:
    fetch = FakeSecrets(secret)
    parsed = SignatureRule.model_validate({"mode": "hmac-sha256", "secret": "airudder/signing", **rule})
    return HmacSha256Verifier(parsed, SecretValues(parsed.secret, "signing secret", fetch=fetch)), fetch


def test_a_correctly_signed_body_is_accepted_and_a_tampered_one_is_not() -> None:
    check, _ = verifier()
    check.verify(BODY, {"x-airudder-sign": signed(BODY)})
    tampered = BODY.replace(b"closed", b"opened")
    with pytest.raises(Unauthorized, match="invalid signature"):
        check.verify(tampered, {"x-airudder-sign": signed(BODY)})
    with pytest.raises(Unauthorized, match="invalid signature"):
        check.verify(BODY, {"x-airudder-sign": signed(BODY, key="another-key")})


def test_even_whitespace_changes_the_signature() -> None:
    check, _ = verifier()
    with pytest.raises(Unauthorized):
        check.verify(BODY + b"\n", {"x-airudder-sign": signed(BODY)})


def test_hex_is_read_in_either_case_and_base64_when_configured() -> None:
    check, _ = verifier()
    check.verify(BODY, {"x-airudder-sign": signed(BODY).upper()})
    b64, _ = verifier(encoding="base64", header="X-Signature")
    b64.verify(BODY, {"x-signature": signed(BODY, encoding="base64")})
    with pytest.raises(Unauthorized, match="missing signature header X-Signature"):
        b64.verify(BODY, {"x-airudder-sign": signed(BODY, encoding="base64")})
    url, _ = verifier(encoding="base64url")
    digest = hmac.new(KEY.encode(), BODY, hashlib.sha256).digest()
    url.verify(BODY, {"x-airudder-sign": base64.urlsafe_b64encode(digest).decode().rstrip("=")})


def test_a_prefix_and_a_key_in_hex() -> None:
    check, _ = verifier(secret=KEY.encode().hex(), secret_encoding="hex", prefix="sha256=")
    check.verify(BODY, {"x-airudder-sign": "sha256=" + signed(BODY)})
    with pytest.raises(Unauthorized, match="malformed"):
        check.verify(BODY, {"x-airudder-sign": signed(BODY)})


@pytest.mark.parametrize("header", [None, "", "   ", "zz-not-hex", "abcd", signed(BODY) + "00"])
def test_a_missing_or_malformed_signature_is_refused(header: str | None) -> None:
    check, _ = verifier()
    headers = {} if header is None else {"x-airudder-sign": header}
    with pytest.raises(Unauthorized):
        check.verify(BODY, headers)


def test_rotation_accepts_the_previous_key_and_rereads_the_secret_after_a_mismatch() -> None:
    check, fetch = verifier(secret=json.dumps({"current": "new-key", "previous": KEY}))
    check.verify(BODY, {"x-airudder-sign": signed(BODY)})
    check.verify(BODY, {"x-airudder-sign": signed(BODY, key="new-key")})
    assert fetch.reads == [False, False]
    # A key the cached secret does not know: read again (forced) once, then refused
    fetch.value = json.dumps({"current": "newest-key"})
    check.verify(BODY, {"x-airudder-sign": signed(BODY, key="newest-key")})
    assert fetch.reads[-2:] == [False, True]
    with pytest.raises(Unauthorized):
        check.verify(BODY, {"x-airudder-sign": signed(BODY, key="unknown")})
    assert fetch.reads[-1] is False  # no second forced read within the refresh interval


def test_an_unreadable_secret_is_a_retryable_503() -> None:
    check, _ = verifier(secret=RuntimeError("throttled"))
    with pytest.raises(AuthUnavailable) as caught:
        check.verify(BODY, {"x-airudder-sign": signed(BODY)})
    assert caught.value.status == 503


# ------------------------------------------------------------------------------------------ per-route settings


def request(route: str, body: bytes = BODY, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(body=body, headers=headers or {}, query={}, route_path=route, raw_path=route)


def test_only_configured_routes_are_checked() -> None:
    fetch = FakeSecrets(KEY)
    checks = SignatureVerification.from_json(
        json.dumps({"chatbot.*": {"mode": "hmac-sha256", "secret": "airudder/signing"}, "chatbot.inbound": None}),
        fetch=fetch,
    )
    checks.verify(request("/webhooks/workflow/call"), "workflow.call")  # not configured: no header needed
    checks.verify(request("/webhooks/chatbot/inbound"), "chatbot.inbound")  # switched off by null
    with pytest.raises(Unauthorized):
        checks.verify(request("/webhooks/chatbot/session-ended"), "chatbot.session_ended")
    good = request("/webhooks/chatbot/session-ended", headers={"x-airudder-sign": signed(BODY)})
    checks.verify(good, "chatbot.session_ended")
    assert fetch.reads  # the secret was read only for the signed route


def test_an_empty_setting_checks_nothing_and_reads_no_secret() -> None:
    fetch = FakeSecrets(RuntimeError("must not be read"))
    for text in ("", "  ", None, "{}"):
        checks = SignatureVerification.from_json(text, fetch=fetch)
        assert not checks.rules
        checks.verify(request("/webhooks/chatbot/inbound"), "chatbot.inbound")
    assert fetch.reads == []


def test_which_key_wins() -> None:
    rules = {
        "chatbot.*": "pattern-type",
        "/webhooks/chatbot/*": "pattern-route",
        "/webhooks/chatbot/session-*": "longer-pattern",
        "/webhooks/chatbot/inbound": "exact-route",
        "chatbot.inbound": "exact-type",
        "*.call": "any-call",
    }
    settings = RouteSettings({k: SignatureRule(mode="hmac-sha256", secret=v) for k, v in rules.items()})

    def secret_for(webhook_type: str, route: str) -> str | None:
        rule = settings.for_route(webhook_type, route)
        return None if rule is None else rule.secret

    assert secret_for("chatbot.inbound", "/webhooks/chatbot/inbound") == "exact-type"
    assert secret_for("chatbot.other", "/webhooks/chatbot/inbound") == "exact-route"
    assert secret_for("chatbot.session_ended", "/webhooks/chatbot/session-ended") == "longer-pattern"
    assert secret_for("chatbot.user_message", "/webhooks/chatbot/user-message") == "pattern-route"
    assert secret_for("collection.call", "/webhooks/{product}/call") == "any-call"
    assert secret_for("workflow.dialer", "/webhooks/workflow/dialer") is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not valid JSON"),
        ('["chatbot.*"]', "must be a JSON object"),
        ('{"chatbot.*": {"mode": "md5", "secret": "x"}}', "mode"),
        ('{"chatbot.*": {"mode": "hmac-sha256"}}', "secret"),
        ('{"chatbot.*": {"mode": "hmac-sha256", "secret": "x", "encodng": "hex"}}', "encodng"),
        ('{"chatbot.*": {"mode": "hmac-sha256", "secret": "x", "encoding": "base32"}}', "encoding"),
        ('{"": {"mode": "hmac-sha256", "secret": "x"}}', "empty key"),
    ],
)
def test_a_bad_setting_fails_at_parse_time(text: str, problem: str) -> None:
    with pytest.raises(RouteSettingsError, match=problem) as caught:
        SignatureVerification.from_json(text)
    assert "SIGNATURE_VERIFICATION" in str(caught.value)
