"""Cold start: what a webhook function imports. A fresh process imports the deployed handler the way
Lambda does (functions/webhook first, then the layer), then handles one delivery, and lists the modules
that got loaded: no model module of another route's family, no signing or decryption code unless a
setting turns it on, no crypto library unless a body is decrypted (README, "Performance")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "events" / "apigw"
TOKEN = "local-dev-token"
FAMILY_MODELS = {"workflow", "calls", "campaigns", "chatbot", "leadgen", "unknown"}

# Run in the fresh process. With a sample: moto (imported, and its mock started, before the handler,
# so that the handler's clients go to it) holds the table and the token secret, and the delivery is
# handled once. Prints the modules loaded by the handler's import and then by the delivery.
PROBE = """
import json, sys
sample = sys.argv[1] if len(sys.argv) > 1 else None
if sample:
    from moto import mock_aws
    mock_aws().start()
before_init = set(sys.modules)
import app
after_init = set(sys.modules)
status = None
if sample:
    import boto3
    key = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    attributes = [{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")]
    boto3.client("dynamodb").create_table(
        TableName="events", KeySchema=key, AttributeDefinitions=attributes, BillingMode="PAY_PER_REQUEST"
    )
    boto3.client("secretsmanager").create_secret(Name="token", SecretString=json.dumps({"current": TOKEN}))
    before_delivery = set(sys.modules)
    answer = app.lambda_handler(json.loads(open(sample).read()), Context())
    status = answer["statusCode"]
    delivery = sorted(set(sys.modules) - before_delivery)
else:
    delivery = []
print(json.dumps({"init": sorted(after_init - before_init), "delivery": delivery, "status": status}))
"""
CONTEXT = """
class Context:
    function_name = "probe"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:probe"
    aws_request_id = "probe-request"
"""


def cold_start(sample: str | None = None, **settings: Any) -> dict[str, Any]:
    """The modules a fresh webhook function loads at init, and then for one delivery of `sample`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT / "functions" / "webhook"), str(ROOT / "layers" / "ingest")]),
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        EVENTS_TABLE="events",
        ARCHIVE_BUCKET="archive",
        WEBHOOK_TOKEN_SECRET="token",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_SERVICE_NAME="probe",
        **{k: json.dumps(v) for k, v in settings.items()},
    )
    script = f"TOKEN = {TOKEN!r}\n{CONTEXT}\n{PROBE}"
    args = [sys.executable, "-c", script, *([str(SAMPLES / sample)] if sample else [])]
    # The function's folder as the working directory: nothing of the tests or tools on sys.path.
    done = subprocess.run(args, env=env, cwd=ROOT / "functions" / "webhook", capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def layer_modules(names: list[str], package: str) -> set[str]:
    prefix = f"airudder_ingest.{package}."
    return {name.removeprefix(prefix) for name in names if name.startswith(prefix)}


def loaded(names: list[str], top: str) -> bool:
    return any(name == top or name.startswith(f"{top}.") for name in names)


def test_init_loads_no_model_of_any_route_no_signing_no_decryption_no_crypto() -> None:
    init = cold_start()["init"]
    assert "app" in init and "airudder_ingest.edge.webhook" in init
    assert layer_modules(init, "models") & FAMILY_MODELS == set()
    assert layer_modules(init, "edge") & {"signing", "decryption"} == set()
    assert not loaded(init, "cryptography")


def test_signing_is_loaded_when_its_setting_names_a_route() -> None:
    signed = {"chatbot.*": {"mode": "hmac-sha256", "secret": "signing"}}
    init = cold_start(SIGNATURE_VERIFICATION=signed)["init"]
    assert "signing" in layer_modules(init, "edge")
    assert "decryption" not in layer_modules(init, "edge")


def test_decryption_is_loaded_when_its_setting_names_a_route_but_the_crypto_library_is_not() -> None:
    encrypted = {"chatbot.*": {"mode": "aes-gcm", "key_secret": "key"}}
    init = cold_start(PAYLOAD_DECRYPTION=encrypted)["init"]
    assert "decryption" in layer_modules(init, "edge")
    assert not loaded(init, "cryptography")  # only when a body is decrypted


@pytest.mark.parametrize(
    ("sample", "models"),
    [
        ("workflow/dialer/contact-status.json", {"workflow", "calls"}),
        ("chatbot/session-ended/session.json", {"chatbot"}),
        ("collection/call/completed.json", {"campaigns", "calls"}),  # a {product} route
        ("unmodelled/new-callback.json", {"unknown"}),  # the catch-all
    ],
)
def test_a_delivery_loads_the_model_module_of_its_own_route_only(sample: str, models: set[str]) -> None:
    result = cold_start(sample)
    assert result["status"] == 200
    assert layer_modules(result["init"], "models") & FAMILY_MODELS == set()
    assert layer_modules(result["delivery"], "models") & FAMILY_MODELS == models
    everything = result["init"] + result["delivery"]
    assert layer_modules(everything, "edge") & {"signing", "decryption"} == set()
