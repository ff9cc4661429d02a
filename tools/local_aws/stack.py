"""The whole stack on this machine, from template.yaml: moto + fault proxy + gateway + pollers.

    with LocalStack() as stack:
        requests.post(f"{stack.gateway_url}/webhooks/workflow/dialer?token={stack.token}", json={...})
        stack.faults.fail("dynamodb", "PutItem")          # the next writes answer 500
        stack.boto3_client("dynamodb").scan(TableName=stack.resources["EventsTable"]["Ref"])

The template is expanded by aws-sam-translator (tools.local_aws.expand_sam) and created by moto's own
CloudFormation (``create_stack`` on the embedded moto server): tables, buckets, queues, functions with
their resolved environment. This module fills in only what moto's CloudFormation lacks: Secrets Manager
secrets (created first, their references bound to the ARNs), the HTTP APIs (an id each; the gateway
serves their routes), TTL, bucket lifecycle and bucket policies. Left out of moto and run here instead:
event source mappings (moto would invoke through Docker; the pollers of tools.local_aws.sqs_poller and
stream_poller drive the functions) and schedule rules (moto answers PutEvents with 500 once one exists;
``run_schedule`` invokes by hand). Physical
names carry moto's random suffixes: read them from ``resources`` (or the stack's outputs), never guess.

While a stack runs, os.environ holds the functions' variables (as moto resolved them), AWS_ENDPOINT_URL
(the proxy, or moto), region and fake credentials; ``stop()`` puts the previous values back. Each stack is
a cold start: the deployed code's modules (CodeUri and layer folders, e.g. airudder_ingest) already in
sys.modules are set aside while it runs and put back by ``stop()`` (``isolate_modules=False`` keeps them).
Moto's state belongs to the process: the first stack of a process starts from an empty moto and the last
one to stop empties it.
"""

from __future__ import annotations

import copy
import functools
import io
import json
import logging
import os
import secrets
import threading
import time
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from tools.local_aws.expand_sam import FAKE_S3_URI, expand
from tools.local_aws.fault_proxy import FaultProxy
from tools.local_aws.gateway import (
    IMPLICIT_HTTP_API,
    EventSource,
    Functions,
    Gateway,
    Route,
    api_id_for,
    load_event_sources,
    load_routes,
)
from tools.local_aws.moto_server import (
    ACCOUNT_ID,
    DEFAULT_REGION,
    DEFAULT_STACK_NAME,
    DEFAULT_TOKEN,
    MotoServer,
    aws_client,
)
from tools.local_aws.sqs_poller import SqsPoller, lambda_record
from tools.local_aws.stream_poller import StreamPoller, filter_patterns
from tools.local_aws.template import TemplateError, load_template, loads_template, merge_globals, scalar_text

log = logging.getLogger("tools.local_aws.stack")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
# Variables that would send boto3 elsewhere than the local endpoint while a stack runs.
_SHADOWING_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")

# RecordingAllowedHosts of a stack with the recordings consumer (unless given): AIRUDDER's + loopback on
# its default port and on 8082 (`python -m tools.simulator.recordings_server`'s); other ports must be named.
LOCAL_RECORDING_HOSTS = "airudder.com,.airudder.com,127.0.0.1,127.0.0.1:8082"
_CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]

_live_lock = threading.Lock()
_live: set[int] = set()


# For tests whose subject is not the Lambda timeout: 50 concurrent invocations that share this process,
# two cores and one moto server with a loaded machine can take several times a Lambda's wall time, and
# a 10 s Timeout answered as a 500 would make the outcome depend on the load.
TEST_TIMEOUT_SCALE = 10.0


class StackValues:
    """The template's values as moto's CloudFormation resolved them for the created stack (its resource
    map: parameters, conditions, resource names and attributes; moto runs in this process)."""

    def __init__(self, endpoint_url: str, stack_name: str, region: str) -> None:
        from moto.cloudformation.models import cloudformation_backends

        self.stack_name = stack_name
        self.region = region
        self.account_id = ACCOUNT_ID
        self.partition = "aws"
        cloudformation = aws_client("cloudformation", endpoint_url, region)
        described = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        self.stack_id = str(described["StackId"])
        self.parameters = {p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters") or []}
        self.outputs = {o["OutputKey"]: o.get("OutputValue") for o in described.get("Outputs") or []}
        self.physical_ids = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId")
            for r in cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
            if "LogicalResourceId" in r  # moto lists the resources it did not create without one
        }
        self._map = cloudformation_backends[ACCOUNT_ID][region].get_stack(self.stack_id).resource_map

    def resolve(self, value: Any) -> Any:
        from moto.cloudformation.parsing import clean_json

        with warnings.catch_warnings():  # moto warns of each type it cannot create as it meets it
            warnings.filterwarnings("ignore", message="Tried to parse .* not supported by moto", category=UserWarning)
            return _plain(clean_json(copy.deepcopy(value), self._map))

    def resource_enabled(self, logical_id: str) -> bool:
        return logical_id in self.physical_ids

    def parameter(self, name: str) -> Any:
        return self.parameters[name]


@functools.lru_cache(maxsize=8)
def _expansion(template_text: str, region: str) -> str:
    """aws-sam-translator's expansion of a template, as JSON (once per text: most stacks of a test run
    share one template, and the transform takes most of a second)."""
    return json.dumps(expand(loads_template(template_text), region=region, account_id=ACCOUNT_ID))


def _plain(value: Any) -> Any:
    """moto's resolution with its model objects (a Ref to an event bus) replaced by their names."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(getattr(value, "physical_resource_id", None) or getattr(value, "name", None) or value)


def _bind(template: dict[str, Any], logical_id: str, value: str) -> None:
    """Replace ``{"Ref": logical_id}`` and ``${logical_id}`` in Fn::Sub strings with ``value`` (in place):
    for the resources this module creates itself, before moto's CloudFormation reads the template."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if node == {"Ref": logical_id}:
                return value
            if "Fn::Sub" in node and len(node) == 1:
                sub = node["Fn::Sub"]
                if isinstance(sub, str):
                    return {"Fn::Sub": sub.replace("${" + logical_id + "}", value)}
                if isinstance(sub, list) and sub and isinstance(sub[0], str):
                    return {"Fn::Sub": [sub[0].replace("${" + logical_id + "}", value), *walk(sub[1:])]}
            return {key: walk(item) for key, item in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    for section in ("Resources", "Outputs"):
        template[section] = walk(template.get(section) or {})


def _references(node: Any) -> set[str]:
    """Logical ids a value refers to with Ref or Fn::GetAtt (Fn::Sub strings aside)."""
    if isinstance(node, dict):
        found = {str(node["Ref"])} if isinstance(node.get("Ref"), str) else set()
        attribute = node.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute:
            found.add(str(attribute[0]))
        for item in node.values():
            found |= _references(item)
        return found
    if isinstance(node, list):
        return set().union(*(_references(item) for item in node)) if node else set()
    return set()


def _drop_dependents(template: dict[str, Any], notes: list[str]) -> None:
    """Leave out the resources that refer to one left out (a schedule rule's invoke permission)."""
    resources = template.get("Resources") or {}
    while True:
        dangling = {
            logical_id: missing
            for logical_id, resource in resources.items()
            if (
                missing := _references(resource)
                - set(resources)
                - set(template.get("Parameters") or {})
                - {name for name in _references(resource) if name.startswith("AWS::")}
            )
        }
        if not dangling:
            return
        for logical_id, missing in dangling.items():
            notes.append(f"{logical_id}: left out with {', '.join(sorted(missing))}")
            del resources[logical_id]


def _unsupported_resource_filter(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("No Moto CloudFormation support")


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A lifecycle rule of the template (CloudFormation's shape) in S3's API shape."""
    out: dict[str, Any] = {"ID": rule.get("Id", ""), "Status": rule.get("Status", "Enabled")}
    out["Filter"] = {"Prefix": rule["Prefix"]} if "Prefix" in rule else {"Prefix": ""}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    transitions = rule.get("Transitions") or []
    if transitions:
        out["Transitions"] = [
            {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]} for t in transitions
        ]
    noncurrent = rule.get("NoncurrentVersionExpiration")
    if noncurrent:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(noncurrent["NoncurrentDays"])}
    if "NoncurrentVersionExpirationInDays" in rule:
        out["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])}
    abort = rule.get("AbortIncompleteMultipartUpload")
    if abort:
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(abort["DaysAfterInitiation"])}
    return out


class LocalStack:
    """Context manager running the template's stack locally (see module docstring)."""

    def __init__(
        self,
        moto_port: int = 0,
        gateway_port: int = 0,
        token: str | None = None,
        with_fault_proxy: bool = True,
        stack_name: str = DEFAULT_STACK_NAME,
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
        self.region = region or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        self.host = host
        self._moto_port = moto_port
        self._gateway_port = gateway_port
        self._with_fault_proxy = with_fault_proxy
        self._parameters = dict(parameters or {})
        self._isolate_modules = isolate_modules
        # Poll the recordings queue in the background and invoke RecordingsFunction, as Lambda would;
        # the local recordings server is on 127.0.0.1, so the function may fetch from it here.
        self._with_recordings_consumer = with_recordings_consumer
        # Multiplies every function's Timeout (tools.local_aws.gateway.Functions): TEST_TIMEOUT_SCALE in tests.
        self._timeout_scale = timeout_scale
        self.pollers: list[SqsPoller] = []
        # Poll the table's stream in the background for every function with a DynamoDB event (the
        # fan-out publisher, and any later consumer), as Lambda's stream mappings would.
        self._with_stream_consumers = with_stream_consumers
        self.stream_pollers: list[StreamPoller] = []

        self.template: dict[str, Any] = {}  # the SAM template, Globals merged (for reading)
        self.expanded: dict[str, Any] = {}  # what moto's CloudFormation was given
        self.resolver: StackValues | None = None
        self.moto: MotoServer | None = None
        self.faults: FaultProxy | None = None
        self.gateway: Gateway | None = None
        self.functions: Functions | None = None
        self.resources: dict[str, dict[str, Any]] = {}  # created: logical id -> Ref + attributes
        self.placeholders: dict[str, dict[str, Any]] = {}  # HTTP APIs: an id, served by the gateway
        self.notes: list[str] = []  # what the local stack does not hold
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
        self.template = merge_globals(load_template(self.template_path))
        # Only a template that has the recordings consumer (and its parameter) gets them.
        consumer = self._with_recordings_consumer and "RecordingsFunction" in (self.template.get("Resources") or {})
        if consumer and "RecordingAllowedHosts" in (self.template.get("Parameters") or {}):
            self._parameters.setdefault("RecordingAllowedHosts", LOCAL_RECORDING_HOSTS)
        unknown = set(self._parameters) - set(self.template.get("Parameters") or {})
        if unknown:
            raise TemplateError(f"unknown parameters: {', '.join(sorted(unknown))}")
        self.moto = MotoServer(self._moto_port, self.host).start()
        with _live_lock:
            first = not _live
            _live.add(id(self))
        self._started = True
        if first:
            self.moto.reset()  # moto state is per process: start clean
        if self._with_fault_proxy:
            self.faults = FaultProxy(self.moto.url, host=self.host).start()
        self._create_stack()
        self.resolver = StackValues(self.moto_url, self.stack_name, self.region)
        self._fill_in()
        self._collect_resources()
        if self.faults is not None:
            self.faults.reset_calls()
        lambda_client = self.boto3_client("lambda")
        configurations = {
            logical_id: lambda_client.get_function_configuration(FunctionName=values["Ref"])
            for logical_id, values in self.resources.items()
            if values.get("Type") == "AWS::Lambda::Function"
        }
        self.functions = Functions(
            self.template,
            self.template_path.parent,
            configurations,
            region=self.region,
            account_id=ACCOUNT_ID,
            timeout_scale=self._timeout_scale,
        )
        self._apply_environment()
        self.route_objects = load_routes(self.template, self.resolver)
        self.event_sources = load_event_sources(self.template, self.resolver)
        api_ids = {logical_id: str(values["Ref"]) for logical_id, values in self.placeholders.items()}
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

    # ------------------------------------------------------------------ the stack in moto

    def _create_stack(self) -> None:
        """Expand the template, create what moto's CloudFormation lacks first, then ``create_stack``."""
        expanded = json.loads(_expansion(self.template_path.read_text(encoding="utf-8"), self.region))
        secretsmanager = self.boto3_client("secretsmanager")
        for logical_id, resource in list((expanded.get("Resources") or {}).items()):
            kind, props = resource.get("Type"), resource.get("Properties") or {}
            if kind == "AWS::SecretsManager::Secret":
                name = str(props.get("Name") or f"{self.stack_name}-{logical_id}-{secrets.token_hex(6)}")
                arn = str(secretsmanager.create_secret(Name=name, SecretString=self._secret_value(props))["ARN"])
                self.resources[logical_id] = {"Ref": arn, "Id": arn, "Type": kind}
            elif kind == "AWS::ApiGatewayV2::Api":
                self.placeholders[logical_id] = {"Ref": api_id_for(self.stack_name, logical_id), "Type": kind}
            elif kind == "AWS::DynamoDB::Table" and isinstance(props.get("SSESpecification"), dict):
                # moto's CloudFormation passes SSESpecification on as is, and then reads the API's key name.
                props["SSESpecification"].setdefault("Enabled", props["SSESpecification"].get("SSEEnabled"))
                continue
            elif kind == "AWS::Events::EventBus":
                # moto resolves a Ref to a bus to its model object, not its name: bind the name first.
                bus_name: Any = props.get("Name")
                if isinstance(bus_name, dict) and isinstance(bus_name.get("Fn::Sub"), str):
                    bus_name = bus_name["Fn::Sub"].replace("${AWS::StackName}", self.stack_name)
                if isinstance(bus_name, str) and "${" not in bus_name:
                    _bind(expanded, logical_id, bus_name)
                continue
            elif kind == "AWS::Lambda::EventSourceMapping":
                # moto would invoke the function itself (it needs Docker for that, and fails the write that
                # triggered it); the local pollers drive these: LocalStack.sqs_poller / stream_poller.
                self.notes.append(f"{logical_id}: event source mapping driven by a local poller")
            elif kind == "AWS::Events::Rule" and "ScheduleExpression" in props:
                self.notes.append(
                    f"{logical_id}: schedule rule not created (moto answers PutEvents with 500 once a schedule "
                    "rule exists); run it with LocalStack.run_schedule"
                )
            else:
                continue
            del expanded["Resources"][logical_id]
            bound = self.resources.get(logical_id) or self.placeholders.get(logical_id)
            if bound is not None:
                _bind(expanded, logical_id, str(bound["Ref"]))
        _drop_dependents(expanded, self.notes)
        self.expanded = expanded
        # Functions run in this process from their folders; moto's Lambda wants their code object to exist
        # all the same (and reads it again later: the placeholder bucket stays).
        bucket, _, key = FAKE_S3_URI.removeprefix("s3://").partition("/")
        s3 = self.boto3_client("s3")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("README", "functions run in-process from their CodeUri folders")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=code.getvalue())
        cloudformation = self.boto3_client("cloudformation")
        logging.getLogger("moto").addFilter(_unsupported_resource_filter)  # listed in notes instead
        with warnings.catch_warnings():  # the same, as a warning (moto answers on its own thread meanwhile)
            warnings.filterwarnings("ignore", message="Tried to parse .* not supported by moto", category=UserWarning)
            cloudformation.create_stack(
                StackName=self.stack_name,
                TemplateBody=json.dumps(expanded),
                Parameters=[{"ParameterKey": k, "ParameterValue": scalar_text(v)} for k, v in self._parameters.items()],
                Capabilities=_CAPABILITIES,
            )
        stack = cloudformation.describe_stacks(StackName=self.stack_name)["Stacks"][0]
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise TemplateError(
                f"moto could not create the stack: {stack.get('StackStatusReason', stack['StackStatus'])}"
            )

    def _secret_value(self, props: Mapping[str, Any]) -> str:
        """A secret's value: its SecretString, else its generated string with the local token in it."""
        if isinstance(props.get("SecretString"), str):
            return str(props["SecretString"])
        generate = props.get("GenerateSecretString") or {}
        key = generate.get("GenerateStringKey")
        if not key:
            return self.token
        document = json.loads(generate.get("SecretStringTemplate") or "{}")
        document[key] = self.token
        return json.dumps(document)

    def _fill_in(self) -> None:
        """What moto's CloudFormation does not apply: TTL, bucket lifecycle, bucket policies."""
        assert self.resolver is not None
        physical = self.resolver.physical_ids
        unsupported: dict[str, list[str]] = {}
        for logical_id, resource in (self.expanded.get("Resources") or {}).items():
            kind = resource.get("Type")
            if logical_id not in physical and kind not in ("AWS::S3::BucketPolicy",):
                unsupported.setdefault(str(kind), []).append(logical_id)
                continue
            props = resource.get("Properties") or {}
            if kind == "AWS::DynamoDB::Table":
                self._fill_in_table(physical[logical_id], self.resolver.resolve(props))
            if kind == "AWS::DynamoDB::Table" and "TimeToLiveSpecification" in props:
                ttl = self.resolver.resolve(props["TimeToLiveSpecification"])
                if scalar_text(ttl.get("Enabled", True)) == "true":
                    self.boto3_client("dynamodb").update_time_to_live(
                        TableName=physical[logical_id],
                        TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
                    )
                self.notes.append(f"{logical_id}: TTL is recorded, moto never expires items")
            elif kind == "AWS::S3::Bucket":
                self._fill_in_bucket(physical[logical_id], self.resolver.resolve(props))
            elif kind == "AWS::S3::BucketPolicy":
                self._fill_in_bucket_policy(logical_id, self.resolver.resolve(props))
        for kind, logical_ids in unsupported.items():
            self.notes.append(f"{kind} not created (moto's CloudFormation lacks it): {', '.join(logical_ids)}")

    def _fill_in_table(self, name: str, props: Mapping[str, Any]) -> None:
        """A table's point-in-time recovery (moto's CloudFormation does not apply it)."""
        dynamodb = self.boto3_client("dynamodb")
        recovery = props.get("PointInTimeRecoverySpecification") or {}
        if scalar_text(recovery.get("PointInTimeRecoveryEnabled", False)) == "true":
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )

    def _fill_in_bucket(self, name: str, props: Mapping[str, Any]) -> None:
        """What moto's CloudFormation does not apply to a bucket: public access block, versioning, ownership,
        lifecycle."""
        s3 = self.boto3_client("s3")
        if "PublicAccessBlockConfiguration" in props:
            block = {
                key: scalar_text(value) == "true" for key, value in props["PublicAccessBlockConfiguration"].items()
            }
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
            )
        if "OwnershipControls" in props:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
        if "LifecycleConfiguration" in props:
            rules = props["LifecycleConfiguration"].get("Rules") or []
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in rules]}
            )

    def _fill_in_bucket_policy(self, logical_id: str, props: Mapping[str, Any]) -> None:
        """A bucket policy, less its statements on aws:SecureTransport: the local endpoint is plain HTTP
        and moto evaluates bucket policies, so a TLS-only deny would refuse every call."""
        document = props.get("PolicyDocument") or {}
        statements = document.get("Statement") or []
        statements = [statements] if isinstance(statements, dict) else statements
        kept = [s for s in statements if "aws:SecureTransport" not in json.dumps(s.get("Condition") or {})]
        if len(kept) != len(statements):
            self.notes.append(f"{logical_id}: statements on aws:SecureTransport left out (local endpoint is HTTP)")
        if kept:
            self.boto3_client("s3").put_bucket_policy(
                Bucket=props["Bucket"], Policy=json.dumps({**document, "Statement": kept})
            )

    def _collect_resources(self) -> None:
        """``resources``: logical id -> Ref and the attributes tests and tools read (Arn, QueueUrl, StreamArn)."""
        assert self.resolver is not None
        kinds = {logical_id: r.get("Type") for logical_id, r in (self.expanded.get("Resources") or {}).items()}
        for logical_id in self.resolver.physical_ids:
            kind = kinds.get(logical_id)
            values: dict[str, Any] = {"Ref": self.resolver.resolve({"Ref": logical_id}), "Type": kind}
            if kind in ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::Lambda::Function"):
                values["Arn"] = self.resolver.resolve({"Fn::GetAtt": [logical_id, "Arn"]})
            if kind == "AWS::DynamoDB::Table":
                table = self.boto3_client("dynamodb").describe_table(TableName=values["Ref"])["Table"]
                if "LatestStreamArn" in table:
                    values["StreamArn"] = table["LatestStreamArn"]
            if kind == "AWS::SQS::Queue":
                values["QueueUrl"] = values["Ref"]
            if kind == "AWS::Events::EventBus":
                values["Arn"] = self.resolver.resolve({"Fn::GetAtt": [logical_id, "Arn"]})
            self.resources[logical_id] = values

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
            elif self._started and self.resolver is not None:
                self._delete_stack()  # another stack still runs: free this one's name for the next
            self.moto.stop()
            self.moto = None
        self._started = False

    def _delete_stack(self) -> None:
        try:
            self.boto3_client("cloudformation").delete_stack(StackName=self.stack_name)
            secretsmanager = self.boto3_client("secretsmanager")
            for values in self.resources.values():
                if values.get("Type") == "AWS::SecretsManager::Secret":
                    secretsmanager.delete_secret(SecretId=values["Ref"], ForceDeleteWithoutRecovery=True)
        except Exception:
            log.warning("could not delete stack %s from moto on stop", self.stack_name, exc_info=True)

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
        event = {"Records": [lambda_record(message, queue_arn, self.region) for message in messages]}
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
            bisect=scalar_text(props.get("BisectBatchOnFunctionError", False)) == "true",
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
