"""Signature verification, payload decryption and the {product} segment, through the whole webhook edge:
moto in process, the secrets in (moto's) Secrets Manager read through Powertools Parameters, the
edge built from the environment as the deployed function builds it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from airudder_ingest.base.events import canonical_json, raw_digest
from airudder_ingest.base.settings import IngestSettings
from airudder_ingest.edge.route_settings import RouteSettingsError
from airudder_ingest.edge.webhook import WebhookEdge
from airudder_ingest.storage.archive import unpack_envelope

from ..aws_support import BUCKET, ROOT, TABLE, TOKEN, TOKEN_SECRET, items, objects

SIGNING_KEY = "unit-signing-key"
AES_KEY = bytes(range(32))
SESSION_ENDED = "/webhooks/chatbot/session-ended"


def sample(relative: str) -> bytes:
    return (ROOT / "events" / relative).read_bytes()


@pytest.fixture
def aws(aws: dict[str, Any]) -> dict[str, Any]:
    """The unit tests' AWS (conftest.py) with the signing key's and the AES key's secrets."""
    aws["secretsmanager"].create_secret(Name="unit/signing", SecretString=json.dumps({"current": SIGNING_KEY}))
    aws["secretsmanager"].create_secret(Name="unit/aes-key", SecretString=base64.b64encode(AES_KEY).decode())
    return aws


def edge(**env: Any) -> WebhookEdge:
    """The edge as the deployed function builds it, from its environment."""
    settings = IngestSettings.from_env(
        {
            "EVENTS_TABLE": TABLE,
            "ARCHIVE_BUCKET": BUCKET,
            "WEBHOOK_TOKEN_SECRET": TOKEN_SECRET,
            **{k: v if isinstance(v, str) else json.dumps(v) for k, v in env.items()},
        }
    )
    return WebhookEdge.from_settings(settings)


SIGNED = {"chatbot.*": {"mode": "hmac-sha256", "secret": "unit/signing", "encoding": "hex"}}
ENCRYPTED = {SESSION_ENDED: {"mode": "aes-gcm", "key_secret": "unit/aes-key", "key_encoding": "base64"}}


def api_event(
    route: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    raw_path: str | None = None,
    path_params: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"POST {route}",
        "rawPath": raw_path or route,
        "queryStringParameters": {"token": TOKEN},
        "headers": {"content-type": "application/json", "user-agent": "Airudder", **(headers or {})},
        "pathParameters": path_params or {},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
        "requestContext": {"requestId": "req-1", "timeEpoch": int(time.time() * 1000)},
    }


def sign(body: bytes, key: str = SIGNING_KEY) -> dict[str, str]:
    return {"x-airudder-sign": hmac.new(key.encode(), body, hashlib.sha256).hexdigest()}


def seal(plaintext: bytes) -> bytes:
    """What an encrypting sender posts: base64 of nonce + ciphertext + tag (a fresh nonce each time)."""
    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(AES_KEY).encrypt(nonce, plaintext, None))


def kept(aws: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(item, unpacked envelope) of every item that keeps a delivery: events and quarantined ones."""
    return [(i, unpack_envelope(i["envelope"]["B"])) for i in items(aws) if "envelope" in i]


# ------------------------------------------------------------------------------------------ signatures


def test_a_signed_route_refuses_a_bad_signature_with_401_and_stores_nothing(aws: dict[str, Any]) -> None:
    # Given chatbot routes are signed
    ingest = edge(SIGNATURE_VERIFICATION=SIGNED)
    body = sample("chatbot/session-ended/session.json")
    tampered = body.replace(b'"closed"', b'"open"')
    # When deliveries arrive with no, a wrong, or a replayed signature over another body
    answers = [
        ingest.handle(api_event(SESSION_ENDED, body)),
        ingest.handle(api_event(SESSION_ENDED, body, sign(body, key="guessed-key"))),
        ingest.handle(api_event(SESSION_ENDED, tampered, sign(body))),
    ]
    # Then each is refused like a bad token, and nothing at all is kept
    assert [a["statusCode"] for a in answers] == [401, 401, 401]
    assert {json.loads(a["body"])["error"] for a in answers} == {"unauthorized"}
    assert items(aws) == [] and objects(aws) == []
    # And the correctly signed body is stored
    good = ingest.handle(api_event(SESSION_ENDED, body, sign(body)))
    assert good["statusCode"] == 200 and good["headers"]["x-ingest-outcome"] == "stored"
    ((_, envelope),) = kept(aws)
    assert envelope["headers"]["x-airudder-sign"] == sign(body)["x-airudder-sign"]


def test_routes_the_setting_does_not_name_need_no_signature(aws: dict[str, Any]) -> None:
    ingest = edge(SIGNATURE_VERIFICATION=SIGNED)
    answer = ingest.handle(api_event("/webhooks/workflow/call", sample("workflow/call/completed.json")))
    assert answer["statusCode"] == 200


def test_an_unreadable_signing_secret_answers_503_and_stores_nothing(aws: dict[str, Any]) -> None:
    ingest = edge(SIGNATURE_VERIFICATION={"chatbot.*": {"mode": "hmac-sha256", "secret": "unit/missing"}})
    body = sample("chatbot/inbound/conversation.json")
    answer = ingest.handle(api_event("/webhooks/chatbot/inbound", body, sign(body)))
    assert answer["statusCode"] == 503
    assert items(aws) == [] and objects(aws) == []


# ------------------------------------------------------------------------------------------ decryption


def test_an_encrypted_route_stores_the_plaintext_event_and_archives_the_ciphertext(aws: dict[str, Any]) -> None:
    # Given the session-end route is encrypted, and a sample body encrypted as the settings describe
    ingest = edge(PAYLOAD_DECRYPTION=ENCRYPTED)
    plaintext = sample("chatbot/session-ended/session.json")
    ciphertext = seal(plaintext)
    # When it is delivered
    answer = ingest.handle(api_event(SESSION_ENDED, ciphertext))
    # Then the decrypted event is stored and filed under its session
    assert answer["statusCode"] == 200, answer["body"]
    event_id = answer["headers"]["x-event-id"]
    ((event, envelope),) = kept(aws)
    assert event["event_id"]["S"] == event_id and envelope["decoded"] == canonical_json(json.loads(plaintext))
    assert (event["webhook_type"]["S"], event["pk"]["S"]) == (
        "chatbot.session_ended",
        "SESSION#4fbb6c41833b65ff3444502517b7ea91",
    )
    # And the envelope holds the body exactly as received: the ciphertext (the archive keeps only that)
    assert envelope["body"].encode() == ciphertext
    assert envelope["raw_sha256"] == raw_digest(ciphertext)
    # And the same event encrypted again (another nonce) is recognised as a redelivery
    again = ingest.handle(api_event(SESSION_ENDED, seal(plaintext)))
    assert (again["headers"]["x-ingest-outcome"], again["headers"]["x-event-id"]) == ("duplicate", event_id)


def test_a_body_that_cannot_be_decrypted_is_quarantined_with_400(aws: dict[str, Any]) -> None:
    ingest = edge(PAYLOAD_DECRYPTION=ENCRYPTED)
    plaintext = sample("chatbot/session-ended/session.json")  # sent unencrypted to an encrypted route
    answer = ingest.handle(api_event(SESSION_ENDED, plaintext))
    assert answer["statusCode"] == 400
    reply = json.loads(answer["body"])
    assert reply["error"] == "invalid_payload" and "could not be decrypted" in reply["message"]
    ((item, envelope),) = kept(aws)
    assert item["webhook_type"]["S"] == "chatbot.session_ended" and envelope["body"].encode() == plaintext
    assert item["pk"]["S"] == f"Q#{reply['quarantine_id']}"


def test_a_signed_and_encrypted_route_checks_the_signature_of_the_ciphertext(aws: dict[str, Any]) -> None:
    ingest = edge(SIGNATURE_VERIFICATION=SIGNED, PAYLOAD_DECRYPTION=ENCRYPTED)
    plaintext = sample("chatbot/session-ended/session.json")
    ciphertext = seal(plaintext)
    assert ingest.handle(api_event(SESSION_ENDED, ciphertext, sign(plaintext)))["statusCode"] == 401
    assert items(aws) == []
    assert ingest.handle(api_event(SESSION_ENDED, ciphertext, sign(ciphertext)))["statusCode"] == 200


def test_a_bad_setting_fails_when_the_edge_is_built(aws: dict[str, Any]) -> None:
    with pytest.raises(RouteSettingsError, match="PAYLOAD_DECRYPTION"):
        edge(PAYLOAD_DECRYPTION={"chatbot.*": {"mode": "aes-cbc", "key_secret": "k", "iv": "short"}})
    with pytest.raises(RouteSettingsError, match="SIGNATURE_VERIFICATION"):
        edge(SIGNATURE_VERIFICATION="{not json")


# ------------------------------------------------------------------------------------------ {product}


@pytest.mark.parametrize("kind", ["plan", "task", "call"])
def test_a_product_outside_the_map_is_404_and_stores_nothing(aws: dict[str, Any], kind: str) -> None:
    ingest = edge()
    body = sample(f"collection/{kind}/" + ("completed.json" if kind == "call" else "finished.json"))
    route = f"/webhooks/{{product}}/{kind}"
    for product in ("sms", "workflow", "Collection2"):
        answer = ingest.handle(
            api_event(route, body, raw_path=f"/webhooks/{product}/{kind}", path_params={"product": product})
        )
        assert answer["statusCode"] == 404
        assert json.loads(answer["body"])["error"] == "not_found"
    assert items(aws) == [] and objects(aws) == []
    # The same body on a product in the map is stored under that product's type
    stored = ingest.handle(
        api_event(route, body, raw_path=f"/webhooks/collection/{kind}", path_params={"product": "collection"})
    )
    assert stored["statusCode"] == 200
    ((event, _),) = kept(aws)
    assert event["webhook_type"]["S"] == f"collection.{kind}"
