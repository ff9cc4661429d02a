"""Callback payload decryption, per route (off unless configured).

AIRUDDER publishes an AES integration guide ("API接口使用AES加解密对接") whose content was not recovered
(../shared/airudder-api/encryption.md): mode, key size, IV handling, padding and encoding are all
settings here. A route enables it in PAYLOAD_DECRYPTION (see route_settings.py for the keys):

    {"chatbot.*": {"mode": "aes-cbc", "key_secret": "airudder/callback-key", "key_encoding": "utf-8",
                   "iv": "0123456789abcdef", "iv_encoding": "utf-8", "encoding": "base64"}}

The pipeline applies it before JSON parsing: the ciphertext is archived as received, the plaintext
is what gets parsed and stored. A body that cannot be decrypted is quarantined and answered 400.

Settings of a rule:
  mode          aes-cbc | aes-ecb | aes-gcm ("CBC", "cbc" ... are read the same)
  key_secret    Secrets Manager name or ARN of the key (text, a JSON list, or {"current", "previous"})
  key_encoding  utf-8 | hex | base64: how the secret's text becomes 16, 24 or 32 key bytes
  iv            the CBC IV / GCM nonce, when it is fixed (iv_encoding: utf-8 | hex | base64)
  iv_source     setting (the `iv` above) | prefix (the first bytes of the decoded ciphertext)
                | key (CBC only: the IV is the key's first 16 bytes); default: setting when `iv`
                is given, else prefix
  nonce_length  GCM nonce bytes taken by iv_source=prefix (default 12)
  tag_length    GCM tag bytes at the end of the ciphertext (default 16)
  aad           GCM associated data (UTF-8 text), if any
  padding       pkcs7 | zero | none (CBC and ECB)
  encoding      base64 | base64url | hex | binary: how the ciphertext travels
  field         when the body is a JSON object wrapping the ciphertext, the name of that field

`cryptography` is imported only when a body is decrypted, so routes without decryption never load it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from airudder_ingest.base.secret_values import Fetch, SecretValues
from airudder_ingest.edge.apigw import WebhookRequest
from airudder_ingest.edge.route_settings import RouteWorkers
from airudder_ingest.edge.signing import decode_text, secret_keys

SETTING = "PAYLOAD_DECRYPTION"
AES_BLOCK_BYTES = 16
AES_KEY_BYTES = (16, 24, 32)

Mode = Literal["aes-cbc", "aes-ecb", "aes-gcm"]


class DecryptionFailed(ValueError):
    """The body is not a ciphertext the route's settings can open."""


class DecryptionRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode
    key_secret: str = Field(min_length=1)
    key_encoding: Literal["utf-8", "hex", "base64"] = "utf-8"
    iv: str | None = None
    iv_encoding: Literal["utf-8", "hex", "base64"] = "utf-8"
    iv_source: Literal["setting", "prefix", "key"] = "prefix"
    nonce_length: int = Field(default=12, ge=8, le=16)
    tag_length: int = Field(default=16, ge=12, le=16)
    aad: str | None = None
    padding: Literal["pkcs7", "zero", "none"] = "pkcs7"
    encoding: Literal["base64", "base64url", "hex", "binary"] = "base64"
    field: str | None = Field(default=None, min_length=1)
    cache_seconds: int = Field(default=300, ge=0)

    @field_validator("mode", mode="before")
    @classmethod
    def _mode_spellings(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip().lower().replace("_", "-")
            return text if text.startswith("aes-") else f"aes-{text}"
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_iv_source(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("iv_source") is None:
            return {**data, "iv_source": "setting" if data.get("iv") is not None else "prefix"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> DecryptionRule:
        if self.mode == "aes-ecb":
            if self.iv is not None:
                raise ValueError("aes-ecb takes no iv")
            return self
        self._check_iv()
        if self.mode == "aes-gcm" and self.padding != "pkcs7":
            raise ValueError("padding does not apply to aes-gcm")
        if self.field is not None and self.encoding == "binary":
            raise ValueError("a ciphertext inside a JSON field cannot be binary")
        return self

    def _check_iv(self) -> None:
        """The IV (or nonce) of aes-cbc and aes-gcm: where it comes from, and its size when it is a setting."""
        if self.iv_source == "key" and self.mode != "aes-cbc":
            raise ValueError("iv_source 'key' is only for aes-cbc")
        if self.iv_source != "setting":
            return
        if self.iv is None:
            raise ValueError("iv_source 'setting' needs an iv")
        size = len(decode_text(self.iv, self.iv_encoding))  # not in iv_encoding: a setting error
        if self.mode == "aes-cbc" and size != AES_BLOCK_BYTES:
            raise ValueError(f"iv is {size} bytes; aes-cbc needs {AES_BLOCK_BYTES}")
        if self.mode == "aes-gcm" and not 8 <= size <= 16:
            raise ValueError(f"nonce is {size} bytes; aes-gcm takes 8 to 16 (12 is usual)")


def _ciphertext(body: bytes, rule: DecryptionRule) -> bytes:
    if rule.field is not None:
        try:
            wrapper = json.loads(body.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError):
            raise DecryptionFailed(f"body is not a JSON object with a {rule.field!r} field") from None
        text = wrapper.get(rule.field) if isinstance(wrapper, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise DecryptionFailed(f"body has no ciphertext in {rule.field!r}")
    elif rule.encoding == "binary":
        return body
    else:
        try:
            text = body.decode("ascii").strip().strip('"')
        except UnicodeDecodeError:
            raise DecryptionFailed(f"body is not {rule.encoding} text") from None
    try:
        return decode_text(text, rule.encoding)
    except ValueError:
        raise DecryptionFailed(f"ciphertext is not {rule.encoding} text") from None


def _unpad(data: bytes, padding: str) -> bytes:
    if padding == "none":
        return data
    if padding == "zero":
        return data.rstrip(b"\x00")
    size = data[-1] if data else 0
    if not 1 <= size <= AES_BLOCK_BYTES or data[-size:] != bytes([size]) * size:
        raise DecryptionFailed("bad padding (wrong key or iv?)")
    return data[:-size]


def aes_decrypt(ciphertext: bytes, key: bytes, rule: DecryptionRule) -> bytes:
    """Plaintext of `ciphertext` under `key` with the rule's mode, IV and padding."""
    if len(key) not in AES_KEY_BYTES:
        raise DecryptionFailed(f"the key is {len(key)} bytes; AES needs 16, 24 or 32")
    if rule.mode == "aes-gcm":
        return _gcm_decrypt(ciphertext, key, rule)
    return _block_decrypt(ciphertext, key, rule)


def _gcm_decrypt(data: bytes, key: bytes, rule: DecryptionRule) -> bytes:
    # Imported here so that only routes that decrypt load the library.
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if rule.iv_source == "prefix":
        nonce, data = data[: rule.nonce_length], data[rule.nonce_length :]
    else:
        nonce = decode_text(rule.iv or "", rule.iv_encoding)
    if (len(nonce) < rule.nonce_length and rule.iv_source == "prefix") or len(data) < rule.tag_length:
        raise DecryptionFailed("ciphertext is shorter than its nonce and tag")
    data, tag = data[: -rule.tag_length], data[-rule.tag_length :]
    decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, tag, min_tag_length=rule.tag_length)).decryptor()
    if rule.aad:
        decryptor.authenticate_additional_data(rule.aad.encode())
    try:
        return decryptor.update(data) + decryptor.finalize()
    except InvalidTag:
        raise DecryptionFailed("authentication tag does not match (wrong key, nonce or data)") from None


def _block_decrypt(data: bytes, key: bytes, rule: DecryptionRule) -> bytes:
    """aes-cbc or aes-ecb: whole blocks, then the rule's padding removed."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    mode: modes.ModeWithInitializationVector | modes.ECB
    if rule.mode == "aes-cbc":
        iv, data = _cbc_iv(data, key, rule)
        mode = modes.CBC(iv)
    else:
        # ECB is AIRUDDER's choice to make, not ours: supported because their guide may use it.
        mode = modes.ECB()  # noqa: S305
    if not data or len(data) % AES_BLOCK_BYTES:
        raise DecryptionFailed(f"ciphertext is {len(data)} bytes, not whole {AES_BLOCK_BYTES}-byte blocks")
    block = Cipher(algorithms.AES(key), mode).decryptor()
    return _unpad(block.update(data) + block.finalize(), rule.padding)


def _cbc_iv(data: bytes, key: bytes, rule: DecryptionRule) -> tuple[bytes, bytes]:
    """The IV of an aes-cbc ciphertext, and the ciphertext without it."""
    if rule.iv_source == "prefix":
        if len(data) < 2 * AES_BLOCK_BYTES:
            raise DecryptionFailed("ciphertext is shorter than its iv and one block")
        return data[:AES_BLOCK_BYTES], data[AES_BLOCK_BYTES:]
    if rule.iv_source == "key":
        return key[:AES_BLOCK_BYTES], data
    return decode_text(rule.iv or "", rule.iv_encoding), data


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return False
    return True


class PayloadDecryptor:
    """Opens one route's ciphertext; with several keys (rotation) the one giving JSON wins."""

    def __init__(self, rule: DecryptionRule, key: SecretValues) -> None:
        self.rule = rule
        self._key = key

    def _keys(self, force: bool) -> list[bytes]:
        return secret_keys(self._key, self.rule.key_encoding, force)

    def _open(self, ciphertext: bytes, keys: list[bytes]) -> tuple[bytes | None, str]:
        fallback: bytes | None = None
        reason = "no key in the key secret is in the configured key_encoding"
        for key in keys:
            try:
                plain = aes_decrypt(ciphertext, key, self.rule)
            except DecryptionFailed as exc:
                reason = str(exc)
                continue
            if _is_json(plain):
                return plain, ""
            fallback = fallback if fallback is not None else plain
        return fallback, reason

    def decrypt(self, body: bytes) -> bytes:
        """The plaintext; raises DecryptionFailed (or AuthUnavailable when the key cannot be read)."""
        ciphertext = _ciphertext(body, self.rule)
        plain, reason = self._open(ciphertext, self._keys(force=False))
        if (plain is None or not _is_json(plain)) and self._key.may_refresh():
            fresh, fresh_reason = self._open(ciphertext, self._keys(force=True))
            if fresh is not None and (plain is None or _is_json(fresh)):
                plain, reason = fresh, fresh_reason
        if plain is None:
            raise DecryptionFailed(reason)
        # Plaintext that is not JSON goes on to the JSON step, which quarantines it as such.
        return plain


class PayloadDecryption(RouteWorkers[DecryptionRule, PayloadDecryptor]):
    """The decryption settings of every route, from PAYLOAD_DECRYPTION."""

    setting = SETTING
    rule_type = DecryptionRule

    def build(self, rule: DecryptionRule, fetch: Fetch) -> PayloadDecryptor:
        return PayloadDecryptor(rule, SecretValues(rule.key_secret, "decryption key", rule.cache_seconds, fetch))

    def open(self, request: WebhookRequest, webhook_type: str) -> bytes | None:
        """The plaintext of an encrypted route's body; None when the route is not encrypted."""
        decryptor = self.for_route(webhook_type, request.route_path)
        return None if decryptor is None else decryptor.decrypt(request.body)
