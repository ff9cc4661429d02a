"""Callback signature verification, per route (off unless configured).

AIRUDDER's newest callbacks carry an `X-AIRudder-Sign` header whose scheme was not recovered
(../shared/airudder-api/encryption.md). The one verifier offered is the common one: HMAC-SHA256
over the raw body exactly as received, with a secret kept in Secrets Manager, the digest sent as hex
or base64 in a configurable header. A route enables it in SIGNATURE_VERIFICATION (see
route_settings.py for the keys):

    {"chatbot.*": {"mode": "hmac-sha256", "secret": "airudder/callback-signing",
                   "encoding": "hex", "header": "X-AIRudder-Sign"}}

A missing, malformed or wrong signature is answered 401 and nothing is stored, like a bad token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from airudder_ingest.base.errors import Unauthorized
from airudder_ingest.base.secret_values import Fetch, SecretValues
from airudder_ingest.edge.apigw import WebhookRequest
from airudder_ingest.edge.route_settings import RouteWorkers

SETTING = "SIGNATURE_VERIFICATION"
DEFAULT_HEADER = "X-AIRudder-Sign"

Encoding = Literal["hex", "base64", "base64url"]


class SignatureRule(BaseModel):
    """How one route's deliveries are signed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["hmac-sha256"]
    # Secrets Manager name or ARN; the value is the key as text, a JSON list, or {"current", "previous"}.
    secret: str = Field(min_length=1)
    # How the secret's text becomes key bytes.
    secret_encoding: Literal["utf-8", "hex", "base64"] = "utf-8"  # noqa: S105 - an encoding name
    header: str = Field(default=DEFAULT_HEADER, min_length=1)
    encoding: Encoding = "hex"
    # Text before the digest in the header (e.g. "sha256="), removed before decoding; "" for none.
    prefix: str = ""
    cache_seconds: int = Field(default=300, ge=0)


def hmac_sha256(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()


def encode_digest(digest: bytes, encoding: Encoding) -> str:
    """The header text for a digest (what a sender puts in the header; used by tests and tools)."""
    if encoding == "hex":
        return digest.hex()
    if encoding == "base64":
        return base64.b64encode(digest).decode()
    return base64.urlsafe_b64encode(digest).decode()


def decode_text(text: str, encoding: str) -> bytes:
    """Bytes of `text` in one of the encodings settings name: utf-8, hex, base64, base64url.
    Raises ValueError when the text is not in that encoding."""
    if encoding == "utf-8":
        return text.encode()
    compact = "".join(text.split())
    try:
        if encoding == "hex":
            return bytes.fromhex(compact)
        if encoding in ("base64", "base64url"):
            altchars = b"-_" if encoding == "base64url" else None
            padded = compact + "=" * (-len(compact) % 4)
            return base64.b64decode(padded, altchars=altchars, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"not {encoding} text") from exc
    raise ValueError(f"unknown encoding {encoding!r}")


def secret_keys(secret: SecretValues, encoding: str, force: bool) -> list[bytes]:
    """The secret's values (one, or several while a key rotates) as key bytes. A value not in `encoding`
    is left out: it matches nothing, and the other values still work."""
    keys = []
    for value in secret.values(force):
        try:
            keys.append(decode_text(value, encoding))
        except ValueError:
            continue
    return keys


class HmacSha256Verifier:
    """Checks one route's signature header against the HMAC-SHA256 of the body, in constant time."""

    def __init__(self, rule: SignatureRule, secret: SecretValues) -> None:
        self.rule = rule
        self._secret = secret
        self._header = rule.header.lower()

    def _keys(self, force: bool) -> list[bytes]:
        return secret_keys(self._secret, self.rule.secret_encoding, force)

    def _presented(self, headers: Mapping[str, str]) -> bytes:
        text = headers.get(self._header) or next((v for k, v in headers.items() if k.lower() == self._header), None)
        if not text or not text.strip():
            raise Unauthorized(f"missing signature header {self.rule.header}")
        text = text.strip()
        if self.rule.prefix:
            if not text.startswith(self.rule.prefix):
                raise Unauthorized(f"malformed signature in {self.rule.header}")
            text = text[len(self.rule.prefix) :]
        try:
            digest = decode_text(text, self.rule.encoding)
        except ValueError:
            raise Unauthorized(f"malformed signature in {self.rule.header}") from None
        if len(digest) != hashlib.sha256().digest_size:
            raise Unauthorized(f"malformed signature in {self.rule.header}")
        return digest

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Returns when the signature matches; raises Unauthorized (or AuthUnavailable) otherwise."""
        presented = self._presented(headers)
        if self._matches(presented, body, self._keys(force=False)):
            return
        if self._secret.may_refresh() and self._matches(presented, body, self._keys(force=True)):
            return
        raise Unauthorized(f"invalid signature in {self.rule.header}")

    @staticmethod
    def _matches(presented: bytes, body: bytes, keys: list[bytes]) -> bool:
        # Every key is tried, so the time taken does not tell which one matched.
        results = [hmac.compare_digest(presented, hmac_sha256(key, body)) for key in keys]
        return any(results)


class SignatureVerification(RouteWorkers[SignatureRule, HmacSha256Verifier]):
    """The signature checks of every route, from SIGNATURE_VERIFICATION."""

    setting = SETTING
    rule_type = SignatureRule

    def build(self, rule: SignatureRule, fetch: Fetch) -> HmacSha256Verifier:
        return HmacSha256Verifier(rule, SecretValues(rule.secret, "signing secret", rule.cache_seconds, fetch))

    def verify(self, request: WebhookRequest, webhook_type: str) -> None:
        """Nothing when the route is not signed or the signature matches; Unauthorized otherwise."""
        verifier = self.for_route(webhook_type, request.route_path)
        if verifier is not None:
            verifier.verify(request.body, request.headers)
