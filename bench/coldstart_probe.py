"""One cold start in a process of its own: what bench/run.py's cold-start figure measures.

    python bench/coldstart_probe.py handler  --event E.json --result-file out.json [--capture calls.json]
                                             [--layer DIR]
        imports functions/webhook/app.py (the deployed handler, the layer on sys.path as Lambda puts
        /opt/python there: layers/ingest, or DIR as bench/layer_copy.py lays it out) and handles the
        API Gateway event E.json once
    python bench/coldstart_probe.py baseline --calls calls.json --result-file out.json
        the least a handler could do: import boto3, create the clients the pipeline creates (same
        config), and make the AWS calls the handler made (replayed from calls.json)

Endpoint, region and the functions' variables come from the environment (a running LocalStack's).
The clock starts at the first line of this file, before any import but `time`: interpreter start-up is
the same for both and left out. The result file holds {"seconds", "init_seconds", "status", ...}.
``--capture`` (handler only) records every AWS call the handler made, for the baseline to replay.
"""

import time

_STARTED = time.perf_counter()

import argparse  # noqa: E402 - after the clock starts, on purpose
import base64  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
CODE_DIR = REPO_ROOT / "functions" / "webhook"
LAYER_DIR = REPO_ROOT / "layers" / "ingest"
# The services the pipeline makes clients for (aws.client), in the order it makes them.
SERVICES = ("dynamodb", "sqs", "s3", "secretsmanager")


class ProbeContext:
    """The parts of Lambda's context the handler uses."""

    function_name = "coldstart-probe"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:coldstart-probe"
    memory_limit_in_mb = "256"
    log_group_name = "/aws/lambda/coldstart-probe"
    log_stream_name = "probe"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"__bytes__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        return {k: _from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_jsonable(v) for v in value]
    return value


def run_handler(event_file: str, capture_file: str | None, layer_dir: str | None = None) -> dict[str, Any]:
    event = json.loads(Path(event_file).read_text())
    calls: list[dict[str, Any]] = []
    if capture_file:
        import boto3

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            calls.append(
                {"service": model.service_model.service_name, "operation": model.name, "params": _jsonable(params)}
            )

        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("provide-client-params", record)
    # Lambda's order: the function's code first, then the layer (/opt/python).
    sys.path[:0] = [str(CODE_DIR), layer_dir or str(LAYER_DIR)]
    import app

    initialised = time.perf_counter()
    answer = app.lambda_handler(event, ProbeContext())
    finished = time.perf_counter()
    if capture_file:
        Path(capture_file).write_text(json.dumps(calls))
    return {
        "seconds": finished - _STARTED,
        "init_seconds": initialised - _STARTED,
        "cpu_seconds": time.process_time(),
        "status": answer.get("statusCode"),
        "outcome": (answer.get("headers") or {}).get("x-ingest-outcome"),
        "modules": len(sys.modules),
    }


def run_baseline(calls_file: str) -> dict[str, Any]:
    calls = json.loads(Path(calls_file).read_text())
    import boto3
    from botocore import xform_name
    from botocore.config import Config

    config = Config(connect_timeout=2, read_timeout=5)
    clients = {service: boto3.client(service, config=config) for service in SERVICES}
    initialised = time.perf_counter()
    for call in calls:
        client = clients[call["service"]] if call["service"] in clients else boto3.client(call["service"])
        getattr(client, xform_name(call["operation"]))(**_from_jsonable(call["params"]))
    finished = time.perf_counter()
    return {
        "seconds": finished - _STARTED,
        "init_seconds": initialised - _STARTED,
        "cpu_seconds": time.process_time(),
        "status": 200,
        "calls": len(calls),
        "modules": len(sys.modules),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="one cold start, timed")
    parser.add_argument("mode", choices=("handler", "baseline"))
    parser.add_argument("--event")
    parser.add_argument("--calls")
    parser.add_argument("--capture")
    parser.add_argument("--layer", help="the layer's /opt/python (default: layers/ingest)")
    parser.add_argument("--result-file", required=True)
    args = parser.parse_args()
    handler = args.mode == "handler"
    result = run_handler(args.event, args.capture, args.layer) if handler else run_baseline(args.calls)
    Path(args.result_file).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
