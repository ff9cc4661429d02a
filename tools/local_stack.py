"""The whole stack on this machine: moto + fault proxy + resources + gateway, all from template.yaml.

    with LocalStack() as stack:
        requests.post(f"{stack.gateway_url}/webhooks/workflow/dialer?token={stack.token}", json={...})
        stack.faults.fail("dynamodb", "PutItem")          # the next writes answer 500
        stack.boto3_client("dynamodb").scan(TableName=stack.resources["EventsTable"]["Ref"])

While a stack runs, os.environ holds the functions' variables, AWS_ENDPOINT_URL (the proxy, or moto),
region and fake credentials; ``stop()`` puts the previous values back. Each stack is a cold start: the
deployed code's modules (CodeUri and layer folders, e.g. airudder_ingest) already in sys.modules are set
aside while it runs and put back by ``stop()`` (``isolate_modules=False`` keeps them). Moto's state belongs to the
process: the first stack of a process starts from an empty moto and the last one to stop empties it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from tools import cfn
from tools.fault_proxy import FaultProxy
from tools.gateway import IMPLICIT_HTTP_API, EventSource, Functions, Gateway, Route, load_event_sources, load_routes
from tools.local_aws import DEFAULT_TOKEN, MotoServer, api_id_for, aws_client, create_resources
from tools.sqs_poller import SqsPoller
from tools.stream_poller import StreamPoller, filter_patterns

log = logging.getLogger("tools.local_stack")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
# Variables that would send boto3 elsewhere than the local endpoint while a stack runs.
_SHADOWING_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")

# RecordingAllowedHosts of a stack with the recordings consumer (unless given): AIRUDDER's + loopback on
# its default port and on 8082 (`python -m tools.recordings_server`'s); other ports must be named.
LOCAL_RECORDING_HOSTS = "airudder.com,.airudder.com,127.0.0.1,127.0.0.1:8082"

_live_lock = threading.Lock()
_live: set[int] = set()


# For tests whose subject is not the Lambda timeout: 50 concurrent invocations that share this process,
# two cores and one moto server with a loaded machine can take several times a Lambda's wall time, and
# a 10 s Timeout answered as a 500 would make the outcome depend on the load.
TEST_TIMEOUT_SCALE = 10.0


class LocalStack:
    """Context manager running the template's stack locally (see module docstring)."""

    def __init__(
        self,
        moto_port: int = 0,
        gateway_port: int = 0,
        token: str | None = None,
        with_fault_proxy: bool = True,
        stack_name: str = cfn.DEFAULT_STACK_NAME,
        *,
        template_path: str | Path | None = None,
        parameters: Mapping[str, Any] | None = None,
        region: str | None = None,
        host: str = "127.0.0.1",
        isolate_modules: bool = True,
        with_recordings_consumer: bool = False,
        with_stream_consumers: bool = False,
        timeout_scale: float = 1.0,
    ) -> None:
        self.template_path = Path(template_path or DEFAULT_TEMPLATE).resolve()
        self.token = token or os.environ.get("WEBHOOK_TOKEN") or DEFAULT_TOKEN
        self.stack_name = stack_name
        self.region = region or os.environ.get("AWS_DEFAULT_REGION") or cfn.DEFAULT_REGION
        self.host = host
        self._moto_port = moto_port
        self._gateway_port = gateway_port
        self._with_fault_proxy = with_fault_proxy
        self._parameters = dict(parameters or {})
        self._isolate_modules = isolate_modules
        # Poll the recordings queue in the background and invoke RecordingsFunction, as Lambda would;
        # the local recordings server is on 127.0.0.1, so the function may fetch from it here.
        self._with_recordings_consumer = with_recordings_consumer
        # Multiplies every function's Timeout (tools.gateway.Functions): TEST_TIMEOUT_SCALE in tests.
        self._timeout_scale = timeout_scale
        self.pollers: list[SqsPoller] = []
        # Poll the table's stream in the background for every function with a DynamoDB event (the
        # fan-out publisher, and any later consumer), as Lambda's stream mappings would.
        self._with_stream_consumers = with_stream_consumers
        self.stream_pollers: list[StreamPoller] = []

        self.template: dict[str, Any] = {}
        self.resolver: cfn.Resolver | None = None
        self.moto: MotoServer | None = None
        self.faults: FaultProxy | None = None
        self.gateway: Gateway | None = None
        self.functions: Functions | None = None
        self.resources: dict[str, dict[str, Any]] = {}  # created in moto: logical id -> Ref + attributes
        self.placeholders: dict[str, dict[str, Any]] = {}  # not created (names only)
        self.notes: list[str] = []  # what moto could not take
        self.route_objects: list[Route] = []
        self.event_sources: list[EventSource] = []
        self._saved_env: dict[str, str | None] = {}
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> LocalStack:
        if self._started:
            return self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.template = cfn.merge_globals(cfn.load_template(self.template_path))
        # Only a template that has the recordings consumer (and its parameter) gets them.
        consumer = self._with_recordings_consumer and "RecordingsFunction" in (self.template.get("Resources") or {})
        if consumer and "RecordingAllowedHosts" in (self.template.get("Parameters") or {}):
            self._parameters.setdefault("RecordingAllowedHosts", LOCAL_RECORDING_HOSTS)
        self.resolver = cfn.Resolver(
            self.template, parameters=self._parameters, region=self.region, stack_name=self.stack_name
        )
        self.moto = MotoServer(self._moto_port, self.host).start()
        with _live_lock:
            first = not _live
            _live.add(id(self))
        self._started = True
        if first:
            self.moto.reset()  # moto state is per process: start clean
        if self._with_fault_proxy:
            self.faults = FaultProxy(self.moto.url, host=self.host).start()
        created = create_resources(
            self.template,
            self.resolver,
            self.aws_endpoint_url,
            token=self.token,
            stack_name=self.stack_name,
            region=self.region,
        )
        self.resources, self.placeholders, self.notes = created.values, created.placeholders, created.notes
        if self.faults is not None:
            self.faults.reset_calls()
        self.functions = Functions(
            self.template, self.resolver, self.template_path.parent, timeout_scale=self._timeout_scale
        )
        self._apply_environment()
        self.route_objects = load_routes(self.template, self.resolver)
        self.event_sources = load_event_sources(self.template, self.resolver)
        api_ids = {
            logical_id: str(values["Ref"])
            for logical_id, values in self.placeholders.items()
            if self.template["Resources"][logical_id].get("Type") == "AWS::Serverless::HttpApi"
        }
        api_ids.setdefault(IMPLICIT_HTTP_API, api_id_for(self.stack_name, IMPLICIT_HTTP_API))
        self.gateway = Gateway(
            self.route_objects, self.functions, host=self.host, port=self._gateway_port, api_ids=api_ids
        ).start()
        if consumer:
            self.pollers.append(self.sqs_poller("RecordingsFunction").start())
        if self._with_stream_consumers:
            for source in self.event_sources:
                if source.type == "DynamoDB":
                    self.stream_pollers.append(self.stream_poller(source.function_id, source.name).start())

    def _apply_environment(self) -> None:
        assert self.functions is not None
        for key in [*_SHADOWING_VARIABLES, *(k for k in os.environ if k.startswith("AWS_ENDPOINT_URL_"))]:
            if key in os.environ:
                self._saved_env[key] = os.environ.pop(key)
        self.functions.apply(
            {
                "AWS_ENDPOINT_URL": self.aws_endpoint_url,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_EC2_METADATA_DISABLED": "true",
            },
            isolate_modules=self._isolate_modules,
        )

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
        self.pollers.clear()
        for stream_poller in self.stream_pollers:
            stream_poller.stop()
        self.stream_pollers.clear()
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self.functions is not None:
            self.functions.restore()
        for key, value in self._saved_env.items():
            if value is not None:
                os.environ[key] = value
        self._saved_env.clear()
        if self.faults is not None:
            self.faults.stop()
        if self.moto is not None:
            with _live_lock:
                _live.discard(id(self))
                last = not _live
            if last and self._started:
                try:
                    self.moto.reset()
                except OSError:
                    log.warning("could not reset moto on stop")
            self.moto.stop()
            self.moto = None
        self._started = False

    # ------------------------------------------------------------------ addresses

    @property
    def moto_url(self) -> str:
        if self.moto is None:
            raise RuntimeError("the stack is not running")
        return self.moto.url

    @property
    def aws_endpoint_url(self) -> str:
        """The endpoint the functions use: the fault proxy when there is one, else moto."""
        return self.faults.url if self.faults is not None else self.moto_url

    @property
    def gateway_url(self) -> str:
        if self.gateway is None:
            raise RuntimeError("the stack is not running")
        return self.gateway.url

    @property
    def routes(self) -> list[tuple[str, str, str]]:
        """(method, path, function logical id) of every route of the template."""
        return [(route.method, route.path, route.function_id) for route in self.route_objects]

    def url(self, path: str, *, with_token: bool = False) -> str:
        """Gateway URL of ``path`` (optionally with ``?token=``)."""
        suffix = f"{'&' if '?' in path else '?'}token={self.token}" if with_token else ""
        return f"{self.gateway_url}{path}{suffix}"

    def boto3_client(self, service: str) -> Any:
        """A client straight at moto (not through the fault proxy: it does not show in the call log)."""
        return aws_client(service, self.moto_url, self.region)

    # ------------------------------------------------------------------ invoking

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Call any function of the template directly (exceptions propagate)."""
        if self.functions is None:
            raise RuntimeError("the stack is not running")
        return self.functions.invoke(logical_id, event)

    def _event_source(self, function_id: str, kind: tuple[str, ...], event_name: str | None) -> EventSource:
        for source in self.event_sources:
            if source.function_id == function_id and source.type in kind and event_name in (None, source.name):
                return source
        raise KeyError(f"{function_id} has no {'/'.join(kind)} event{f' {event_name}' if event_name else ''}")

    def sqs_poller(self, function_id: str, event_name: str | None = None) -> SqsPoller:
        """A poller (not started) feeding the function from its SQS event's queue the way the event
        source mapping does: failed messages come back after their visibility timeout, then go to the
        dead-letter queue. ``poller.drain()`` runs it in this thread; ``start()`` in the background."""
        assert self.resolver is not None
        props = self.resolver.resolve(self._event_source(function_id, ("SQS",), event_name).properties)
        queue_arn = str(props["Queue"])
        queue_url = next(
            (str(v["QueueUrl"]) for v in self.resources.values() if v.get("Arn") == queue_arn and "QueueUrl" in v),
            None,
        )
        if queue_url is None:
            raise KeyError(f"queue {queue_arn} is not a local queue")
        return SqsPoller(
            self.boto3_client("sqs"),
            queue_url,
            lambda event: self.invoke(function_id, event),
            queue_arn=queue_arn,
            region=self.region,
            batch_size=int(props.get("BatchSize", 10)),
            report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
            name=f"{function_id}-poller",
        )

    def deliver_sqs(
        self, function_id: str, event_name: str | None = None, *, requeue_failed: bool = True
    ) -> dict[str, Any]:
        """Do what the SQS event source mapping does, once: receive a batch, invoke, delete successes.

        Failed messages (exception, or ``batchItemFailures`` with ReportBatchItemFailures) are made
        visible again at once when ``requeue_failed`` (AWS waits for the visibility timeout).
        Returns {"received": n, "failed": [messageId ...], "result": ..., "error": "..." or None}.
        """
        assert self.resolver is not None
        source = self._event_source(function_id, ("SQS",), event_name)
        props = self.resolver.resolve(source.properties)
        queue_arn = str(props["Queue"])
        queue_url = next(
            (str(v["QueueUrl"]) for v in self.resources.values() if v.get("Arn") == queue_arn and "QueueUrl" in v),
            None,
        )
        if queue_url is None:
            raise KeyError(f"queue {queue_arn} is not a local queue")
        sqs = self.boto3_client("sqs")
        batch = min(int(props.get("BatchSize", 10)), 10)
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=batch,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            return {"received": 0, "failed": [], "result": None, "error": None}
        event = {"Records": [self._sqs_record(message, queue_arn) for message in messages]}
        failed: list[str] = []
        result: Any = None
        error: str | None = None
        try:
            result = self.invoke(function_id, event)
            if "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []) and isinstance(result, dict):
                failed = [str(item.get("itemIdentifier")) for item in result.get("batchItemFailures") or []]
        except Exception as exc:
            log.exception("%s failed on an SQS batch", function_id)
            error = f"{type(exc).__name__}: {exc}"
            failed = [message["MessageId"] for message in messages]
        for message in messages:
            if message["MessageId"] in failed:
                if requeue_failed:
                    sqs.change_message_visibility(
                        QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
            else:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return {"received": len(messages), "failed": failed, "result": result, "error": error}

    def _sqs_record(self, message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
        attributes = {}
        for name, value in (message.get("MessageAttributes") or {}).items():
            attributes[name] = {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value.get("DataType"),
            }
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes") or {}),
            "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": self.region,
        }
        if message.get("MD5OfMessageAttributes"):
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record

    def _queue_url(self, queue_arn: str) -> str:
        for values in self.resources.values():
            if values.get("Arn") == queue_arn and "QueueUrl" in values:
                return str(values["QueueUrl"])
        raise KeyError(f"queue {queue_arn} is not a local queue")

    def stream_consumers(self) -> list[str]:
        """Logical ids of the functions with a DynamoDB stream event."""
        return [source.function_id for source in self.event_sources if source.type == "DynamoDB"]

    def stream_poller(
        self,
        function_id: str,
        event_name: str | None = None,
        *,
        invoke: Callable[[dict[str, Any]], Any] | None = None,
    ) -> StreamPoller:
        """A poller (not started) feeding the function from its DynamoDB stream event the way the
        event source mapping does (filters, batch size, ReportBatchItemFailures, retries, bisect,
        on-failure destination). It reads moto directly: the mapping is AWS's, not the function's
        (faults injected on the function's calls do not touch it). ``drain()`` runs it in this thread.
        ``invoke`` replaces the in-process invocation (a drill runs the handler in a process it kills)."""
        assert self.resolver is not None
        props = self.resolver.resolve(self._event_source(function_id, ("DynamoDB",), event_name).properties)
        on_failure = None
        destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        if destination:
            queue_url = self._queue_url(str(destination))
            sqs = self.boto3_client("sqs")

            def on_failure(message: dict[str, Any]) -> None:
                sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message))

        return StreamPoller(
            self.boto3_client("dynamodbstreams"),
            str(props["Stream"]),
            invoke or (lambda event: self.invoke(function_id, event)),
            batch_size=int(props.get("BatchSize", 100)),
            starting_position=str(props.get("StartingPosition", "TRIM_HORIZON")),
            filters=filter_patterns(props.get("FilterCriteria")),
            report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
            max_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
            bisect=cfn.scalar_text(props.get("BisectBatchOnFunctionError", False)) == "true",
            on_failure=on_failure,
            name=f"{function_id}-stream-poller",
        )

    def run_schedule(self, function_id: str, event_name: str | None = None) -> Any:
        """Invoke a function as its Schedule / ScheduleV2 event would (its Input, else a Scheduled Event)."""
        assert self.resolver is not None
        source = self._event_source(function_id, ("Schedule", "ScheduleV2"), event_name)
        props = self.resolver.resolve(source.properties)
        if "Input" in props:
            event = json.loads(props["Input"])
        else:
            event = {
                "version": "0",
                "id": f"local-{int(time.time() * 1000)}",
                "detail-type": "Scheduled Event",
                "source": "aws.events" if source.type == "Schedule" else "aws.scheduler",
                "account": self.resolver.account_id,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "region": self.region,
                "resources": [
                    f"arn:{self.resolver.partition}:events:{self.region}:{self.resolver.account_id}:rule/"
                    f"{self.stack_name}-{function_id}{source.name}"
                ],
                "detail": {},
            }
        return self.invoke(function_id, event)
