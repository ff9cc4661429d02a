"""Callback payload decryption: every supported AES mode round-trips a payload encrypted the way the
settings describe; what cannot be opened is refused; nothing is loaded when no route decrypts."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from airudder_ingest.base.errors import AuthUnavailable
from airudder_ingest.base.secret_values import SecretValues
from airudder_ingest.edge.apigw import WebhookRequest
from airudder_ingest.edge.decryption import DecryptionFailed, DecryptionRule, PayloadDecryption, PayloadDecryptor
from airudder_ingest.edge.route_settings import RouteSettingsError

ROOT = Path(__file__).resolve().parents[3]
PLAINTEXT = json.dumps({"call_id": "s1", "status": "closed", "text": "Terima kasih ✓"}, ensure_ascii=False).encode()
KEY16 = "0123456789abcdef"  # AES-128 key as text (key_encoding utf-8)
KEY32 = bytes(range(32))
IV = "fedcba9876543210"


# ------------------------------------------------------------------------------------------ the sender's side


def pkcs7(data: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    return padder.update(data) + padder.finalize()


def cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def ecb(key: bytes, data: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def decryptor(key_secret: Any, **rule: Any) -> PayloadDecryptor:
    parsed = DecryptionRule.model_validate({"key_secret": "airudder/callback-key", **rule})
    fetch = (lambda name, age, force: key_secret) if not callable(key_secret) else key_secret
    return PayloadDecryptor(parsed, SecretValues(parsed.key_secret, "decryption key", fetch=fetch))


# ------------------------------------------------------------------------------------------ round trips


def test_cbc_with_the_iv_in_the_settings() -> None:
    body = b64(cbc(KEY16.encode(), IV.encode(), pkcs7(PLAINTEXT)))
    opened = decryptor(KEY16, mode="aes-cbc", iv=IV).decrypt(body)
    assert opened == PLAINTEXT


def test_cbc_with_a_random_iv_sent_before_the_ciphertext_hex_encoded() -> None:
    iv = os.urandom(16)
    body = (iv + cbc(KEY32, iv, pkcs7(PLAINTEXT))).hex().encode()
    rule = {"mode": "CBC", "key_encoding": "base64", "encoding": "hex"}  # no iv: it travels as a prefix
    assert decryptor(base64.b64encode(KEY32).decode(), **rule).decrypt(body) == PLAINTEXT


def test_cbc_with_the_key_as_iv_and_zero_padding() -> None:
    key = KEY16.encode()
    zero_padded = PLAINTEXT + b"\x00" * (-len(PLAINTEXT) % 16)
    body = b64(cbc(key, key, zero_padded))
    assert decryptor(KEY16, mode="aes_cbc", iv_source="key", padding="zero").decrypt(body) == PLAINTEXT


def test_ecb() -> None:
    body = b64(ecb(KEY16.encode(), pkcs7(PLAINTEXT)))
    assert decryptor(KEY16, mode="ecb").decrypt(body) == PLAINTEXT


def test_gcm_with_the_nonce_sent_before_the_ciphertext_and_tag() -> None:
    nonce = os.urandom(12)
    body = base64.urlsafe_b64encode(nonce + AESGCM(KEY32).encrypt(nonce, PLAINTEXT, None))
    rule = {"mode": "aes-gcm", "key_encoding": "hex", "encoding": "base64url"}
    assert decryptor(KEY32.hex(), **rule).decrypt(body) == PLAINTEXT


def test_gcm_with_a_fixed_nonce_and_associated_data() -> None:
    nonce = b"airudder-12b"
    body = b64(AESGCM(KEY16.encode()).encrypt(nonce, PLAINTEXT, b"callback"))
    rule = {"mode": "GCM", "iv": nonce.hex(), "iv_encoding": "hex", "aad": "callback"}
    assert decryptor(KEY16, **rule).decrypt(body) == PLAINTEXT


def test_a_ciphertext_wrapped_in_a_json_field_and_a_binary_body() -> None:
    ciphertext = cbc(KEY16.encode(), IV.encode(), pkcs7(PLAINTEXT))
    wrapped = json.dumps({"data": b64(ciphertext).decode(), "version": 1}).encode()
    assert decryptor(KEY16, mode="aes-cbc", iv=IV, field="data").decrypt(wrapped) == PLAINTEXT
    assert decryptor(KEY16, mode="aes-cbc", iv=IV, encoding="binary").decrypt(ciphertext) == PLAINTEXT


def test_the_previous_key_still_opens_during_rotation() -> None:
    secret = json.dumps({"current": "ffffffffffffffff", "previous": KEY16})
    body = b64(cbc(KEY16.encode(), IV.encode(), pkcs7(PLAINTEXT)))
    assert decryptor(secret, mode="aes-cbc", iv=IV).decrypt(body) == PLAINTEXT


def test_without_padding_the_key_giving_json_wins() -> None:
    # With padding "none" every key "decrypts"; the one whose plaintext is JSON is chosen.
    block_aligned = PLAINTEXT + b" " * (-len(PLAINTEXT) % 16)
    body = b64(cbc(KEY16.encode(), IV.encode(), block_aligned))
    secret = json.dumps(["ffffffffffffffff", KEY16])
    assert decryptor(secret, mode="aes-cbc", iv=IV, padding="none").decrypt(body) == block_aligned


# ------------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"%%% not base64 %%%", "not base64"),
        (b64(b"short"), "whole 16-byte blocks"),
        (b64(cbc(b"ffffffffffffffff", IV.encode(), pkcs7(PLAINTEXT))), "padding"),  # another key
        (PLAINTEXT, "not base64"),  # a plaintext body on an encrypted route
        (b"", "whole 16-byte blocks"),
    ],
)
def test_what_cannot_be_decrypted_is_refused(body: bytes, problem: str) -> None:
    with pytest.raises(DecryptionFailed, match=problem):
        decryptor(KEY16, mode="aes-cbc", iv=IV).decrypt(body)


def test_a_tampered_gcm_body_is_refused() -> None:
    nonce = os.urandom(12)
    sealed = bytearray(nonce + AESGCM(KEY32).encrypt(nonce, PLAINTEXT, None))
    sealed[20] ^= 1
    with pytest.raises(DecryptionFailed, match="tag"):
        decryptor(KEY32.hex(), mode="aes-gcm", key_encoding="hex").decrypt(b64(bytes(sealed)))


def test_a_key_of_the_wrong_size_or_a_missing_field_is_refused() -> None:
    body = b64(cbc(KEY16.encode(), IV.encode(), pkcs7(PLAINTEXT)))
    with pytest.raises(DecryptionFailed, match="16, 24 or 32"):
        decryptor("too-short", mode="aes-cbc", iv=IV).decrypt(body)
    with pytest.raises(DecryptionFailed, match="'data'"):
        decryptor(KEY16, mode="aes-cbc", iv=IV, field="data").decrypt(b'{"payload": "x"}')


def test_an_unreadable_key_is_a_retryable_503() -> None:
    def broken(name: str, age: int, force: bool) -> Any:
        raise RuntimeError("AccessDenied")

    with pytest.raises(AuthUnavailable, match="decryption key"):
        decryptor(broken, mode="ecb").decrypt(b64(ecb(KEY16.encode(), pkcs7(PLAINTEXT))))


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"mode": "aes-ctr"}, "mode"),
        ({"mode": "aes-ecb", "iv": IV}, "takes no iv"),
        ({"mode": "aes-cbc", "iv": "short"}, "needs 16"),
        ({"mode": "aes-cbc", "iv": "zz", "iv_encoding": "hex"}, "hex"),
        ({"mode": "aes-cbc", "iv_source": "setting"}, "needs an iv"),
        ({"mode": "aes-gcm", "iv_source": "key"}, "only for aes-cbc"),
        ({"mode": "aes-cbc", "field": "data", "encoding": "binary"}, "binary"),
        ({"mode": "aes-cbc", "key": "inline keys are not accepted"}, "key"),
    ],
)
def test_a_bad_rule_fails_at_parse_time(rule: dict[str, Any], problem: str) -> None:
    text = json.dumps({"chatbot.*": {"key_secret": "airudder/callback-key", **rule}})
    with pytest.raises(RouteSettingsError, match=problem):
        PayloadDecryption.from_json(text)


def test_only_configured_routes_are_decrypted() -> None:
    settings = {"/webhooks/chatbot/*": {"mode": "aes-cbc", "key_secret": "k", "iv": IV}}
    decryption = PayloadDecryption.from_json(json.dumps(settings), fetch=lambda name, age, force: KEY16)
    body = b64(cbc(KEY16.encode(), IV.encode(), pkcs7(PLAINTEXT)))

    def request(route: str, data: bytes) -> WebhookRequest:
        return WebhookRequest(body=data, headers={}, query={}, route_path=route, raw_path=route)

    assert decryption.open(request("/webhooks/chatbot/inbound", body), "chatbot.inbound") == PLAINTEXT
    assert decryption.open(request("/webhooks/workflow/call", PLAINTEXT), "workflow.call") is None


def test_the_crypto_library_is_not_loaded_unless_a_route_decrypts() -> None:
    script = (
        "import sys\n"
        "from airudder_ingest.edge.webhook import WebhookEdge\n"
        "from airudder_ingest.edge.decryption import PayloadDecryption\n"
        "PayloadDecryption.from_json('')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cryptography'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "ingest")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
