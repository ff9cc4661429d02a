"""Embedded AWS for local runs: a moto server in this process, with the template's resources in it.

Every resource is created from template.yaml itself (properties resolved by ``tools.cfn.Resolver``);
nothing here knows this project's table keys, bucket settings or queue names.

Moto keeps its state in module globals: every moto server of one process shares it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from tools import cfn

log = logging.getLogger("tools.local_aws")

DEFAULT_TOKEN = "local-dev-token"
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def quiet_werkzeug() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


class MotoServer:
    """moto's ThreadedMotoServer on 127.0.0.1 (port 0 picks a free port)."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        from moto.server import ThreadedMotoServer

        quiet_werkzeug()
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._started = False
        self.host = host
        self.port = port

    def start(self) -> MotoServer:
        self._server.start()
        self._started = True
        self.host, self.port = self._server.get_host_and_port()
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Forget every resource and item (moto's state is per process, not per server)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def stop(self) -> None:
        if self._started:
            self._server.stop()
            self._started = False


def aws_client(service: str, endpoint_url: str, region: str = cfn.DEFAULT_REGION) -> Any:
    """A boto3 client with fake credentials pointed at ``endpoint_url`` (own session: thread-safe)."""
    session = boto3.session.Session(region_name=region, **FAKE_CREDENTIALS)
    config = Config(retries={"max_attempts": 2, "mode": "standard"})
    return session.client(service, endpoint_url=endpoint_url, config=config)


def physical_name(stack_name: str, logical_id: str, *, lower: bool = False, max_length: int = 255) -> str:
    """Deterministic local name ``<stack>-<LogicalId>`` (lower-cased where AWS needs it)."""
    name = f"{stack_name}-{logical_id}"
    if lower:
        name = re.sub(r"[^a-z0-9.-]", "-", name.lower())
    return name[:max_length]


def api_id_for(stack_name: str, logical_id: str) -> str:
    """A stable 10-character id shaped like an API Gateway id."""
    return hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:10]


def _text(value: Any) -> str:
    return cfn.scalar_text(value)


def _int(value: Any) -> int:
    return int(cfn._to_number(value))


@dataclass
class CreatedResources:
    """What ``create_resources`` did: values for the resolver, and what it left out."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # created in moto
    placeholders: dict[str, dict[str, Any]] = field(default_factory=dict)  # not created, names only
    notes: list[str] = field(default_factory=list)  # properties / resources moto could not take


class _Creator:
    def __init__(
        self,
        template: Mapping[str, Any],
        resolver: cfn.Resolver,
        endpoint_url: str,
        *,
        token: str,
        stack_name: str,
        region: str,
    ) -> None:
        self.template = template
        self.resolver = resolver
        self.endpoint_url = endpoint_url
        self.token = token
        self.stack_name = stack_name
        self.region = region
        self.partition = resolver.partition
        self.account = resolver.account_id
        self.result = CreatedResources()
        self._clients: dict[str, Any] = {}
        self.creators: dict[str, Callable[[str, dict[str, Any]], dict[str, Any] | None]] = {
            "AWS::DynamoDB::Table": self.table,
            "AWS::S3::Bucket": self.bucket,
            "AWS::S3::BucketPolicy": self.bucket_policy,
            "AWS::SQS::Queue": self.queue,
            "AWS::SecretsManager::Secret": self.secret,
            "AWS::SNS::Topic": self.topic,
            "AWS::SSM::Parameter": self.ssm_parameter,
            "AWS::Events::EventBus": self.event_bus,
            "AWS::Events::Rule": self.event_rule,
        }

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = aws_client(service, self.endpoint_url, self.region)
        return self._clients[service]

    def note(self, logical_id: str, what: str) -> None:
        self.result.notes.append(f"{logical_id}: {what}")

    def unapplied(self, logical_id: str, props: Mapping[str, Any], handled: set[str]) -> None:
        for key in sorted(set(props) - handled):
            self.note(logical_id, f"property {key} not applied locally")

    # ------------------------------------------------------------------ driver

    def run(self) -> CreatedResources:
        resources = self.template.get("Resources") or {}
        enabled = [logical_id for logical_id in resources if self.resolver.resource_enabled(logical_id)]
        for logical_id in enabled:  # names first: created resources may refer to anything
            if resources[logical_id].get("Type") not in self.creators:
                values = self.placeholder(logical_id, resources[logical_id].get("Type", ""))
                self.result.placeholders[logical_id] = values
                self.resolver.set_resource(logical_id, values)
        creatable = [logical_id for logical_id in enabled if resources[logical_id].get("Type") in self.creators]
        for logical_id in cfn.topological_order(creatable, cfn.resource_dependencies(self.template)):
            resource = resources[logical_id]
            props = self.resolver.resolve(resource.get("Properties") or {})
            created = self.creators[resource["Type"]](logical_id, props)
            if created is not None:
                self.result.values[logical_id] = created
                self.resolver.set_resource(logical_id, created)
        return self.result

    def placeholder(self, logical_id: str, resource_type: str) -> dict[str, Any]:
        """Names and ARNs for a resource moto does not hold here (so Refs to it still resolve)."""
        name = physical_name(self.stack_name, logical_id)
        region, account, partition = self.region, self.account, self.partition
        if resource_type in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            arn = f"arn:{partition}:lambda:{region}:{account}:function:{name}"
            return {"Ref": name, "Arn": arn}
        if resource_type in ("AWS::Serverless::HttpApi", "AWS::Serverless::Api", "AWS::ApiGatewayV2::Api"):
            api_id = api_id_for(self.stack_name, logical_id)
            return {
                "Ref": api_id,
                "ApiId": api_id,
                "ApiEndpoint": f"https://{api_id}.execute-api.{region}.amazonaws.com",
            }
        if resource_type in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            return {"Ref": f"arn:{partition}:lambda:{region}:{account}:layer:{name}:1"}
        if resource_type == "AWS::IAM::Role":
            return {"Ref": name, "Arn": f"arn:{partition}:iam::{account}:role/{name}", "RoleId": "AROA" + name[:16]}
        if resource_type == "AWS::Logs::LogGroup":
            return {"Ref": name, "Arn": f"arn:{partition}:logs:{region}:{account}:log-group:{name}:*"}
        if resource_type == "AWS::SNS::Topic":
            arn = f"arn:{partition}:sns:{region}:{account}:{name}"
            return {"Ref": arn, "TopicArn": arn, "TopicName": name}
        service = resource_type.split("::")[1].lower() if resource_type.count("::") == 2 else "unknown"
        return {"Ref": name, "Arn": f"arn:{partition}:{service}:{region}:{account}:{name}"}

    # ------------------------------------------------------------------ DynamoDB

    def table(self, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
        ddb = self.client("dynamodb")
        name = props.get("TableName") or physical_name(self.stack_name, logical_id)
        billing = props.get("BillingMode", "PROVISIONED")
        args: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": billing,
        }

        def throughput(source: Mapping[str, Any]) -> dict[str, int]:
            given = source.get("ProvisionedThroughput") or {}
            return {
                "ReadCapacityUnits": _int(given.get("ReadCapacityUnits", 5)),
                "WriteCapacityUnits": _int(given.get("WriteCapacityUnits", 5)),
            }

        if billing == "PROVISIONED":
            args["ProvisionedThroughput"] = throughput(props)
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            indexes = []
            for index in props.get(key) or []:
                entry = {k: index[k] for k in ("IndexName", "KeySchema", "Projection") if k in index}
                if key == "GlobalSecondaryIndexes" and billing == "PROVISIONED":
                    entry["ProvisionedThroughput"] = throughput(index)
                indexes.append(entry)
            if indexes:
                args[key] = indexes
        stream = props.get("StreamSpecification")
        if stream and stream.get("StreamViewType"):
            args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        sse = props.get("SSESpecification")
        if sse is not None:
            spec: dict[str, Any] = {"Enabled": bool(sse.get("SSEEnabled", False))}
            if sse.get("SSEType"):
                spec["SSEType"] = sse["SSEType"]
            if sse.get("KMSMasterKeyId"):
                spec["KMSMasterKeyId"] = sse["KMSMasterKeyId"]
            args["SSESpecification"] = spec
        for key in ("TableClass", "DeletionProtectionEnabled"):
            if key in props:
                args[key] = props[key]
        if props.get("Tags"):
            args["Tags"] = props["Tags"]
        description = ddb.create_table(**args)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and _text(ttl.get("Enabled", False)) == "true":
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
            self.note(logical_id, "TTL is recorded but moto never expires items")
        pitr = props.get("PointInTimeRecoverySpecification") or {}
        if _text(pitr.get("PointInTimeRecoveryEnabled", False)) == "true":
            ddb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        self.unapplied(
            logical_id,
            props,
            {
                "TableName",
                "AttributeDefinitions",
                "KeySchema",
                "BillingMode",
                "ProvisionedThroughput",
                "GlobalSecondaryIndexes",
                "LocalSecondaryIndexes",
                "StreamSpecification",
                "SSESpecification",
                "TableClass",
                "DeletionProtectionEnabled",
                "Tags",
                "TimeToLiveSpecification",
                "PointInTimeRecoverySpecification",
            },
        )
        values = {"Ref": name, "Arn": description["TableArn"]}
        if description.get("LatestStreamArn"):
            values["StreamArn"] = description["LatestStreamArn"]
        return values

    # ------------------------------------------------------------------ S3

    def bucket(self, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
        s3 = self.client("s3")
        name = props.get("BucketName") or physical_name(self.stack_name, logical_id, lower=True, max_length=63)
        if self.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})
        encryption = props.get("BucketEncryption")
        if encryption:
            rules = []
            for rule in encryption.get("ServerSideEncryptionConfiguration") or []:
                entry: dict[str, Any] = {}
                if "ServerSideEncryptionByDefault" in rule:
                    entry["ApplyServerSideEncryptionByDefault"] = rule["ServerSideEncryptionByDefault"]
                if "BucketKeyEnabled" in rule:
                    entry["BucketKeyEnabled"] = _text(rule["BucketKeyEnabled"]) == "true"
                rules.append(entry)
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        block = props.get("PublicAccessBlockConfiguration")
        if block:
            s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={key: _text(value) == "true" for key, value in block.items()},
            )
        ownership = props.get("OwnershipControls")
        if ownership:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=ownership)
        versioning = props.get("VersioningConfiguration")
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning["Status"]})
        lifecycle = props.get("LifecycleConfiguration")
        if lifecycle:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in lifecycle.get("Rules", [])]},
            )
        if props.get("Tags"):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": props["Tags"]})
        self.unapplied(
            logical_id,
            props,
            {
                "BucketName",
                "BucketEncryption",
                "PublicAccessBlockConfiguration",
                "OwnershipControls",
                "VersioningConfiguration",
                "LifecycleConfiguration",
                "Tags",
            },
        )
        domain = f"{name}.s3.{self.resolver.url_suffix}"
        return {
            "Ref": name,
            "Arn": f"arn:{self.partition}:s3:::{name}",
            "DomainName": domain,
            "RegionalDomainName": f"{name}.s3.{self.region}.{self.resolver.url_suffix}",
            "DualStackDomainName": f"{name}.s3.dualstack.{self.region}.{self.resolver.url_suffix}",
            "WebsiteURL": f"http://{name}.s3-website-{self.region}.{self.resolver.url_suffix}",
        }

    def bucket_policy(self, logical_id: str, props: dict[str, Any]) -> None:
        document = props.get("PolicyDocument") or {}
        statements = document.get("Statement") or []
        if isinstance(statements, dict):
            statements = [statements]
        # The local endpoint is plain HTTP and moto evaluates bucket policies: a TLS-only deny would
        # refuse every call, so statements conditioned on aws:SecureTransport are left out.
        kept = [s for s in statements if "aws:SecureTransport" not in json.dumps(s.get("Condition") or {})]
        if len(kept) != len(statements):
            self.note(logical_id, "statements on aws:SecureTransport left out (local endpoint is plain HTTP)")
        if kept:
            policy = {**document, "Statement": kept}
            self.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(policy))
        return None

    # ------------------------------------------------------------------ SQS

    def queue(self, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
        sqs = self.client("sqs")
        fifo = _text(props.get("FifoQueue", False)) == "true"
        name = props.get("QueueName") or physical_name(self.stack_name, logical_id, max_length=75 if fifo else 80)
        if fifo and not name.endswith(".fifo"):
            name += ".fifo"
        attribute_names = (
            "DelaySeconds",
            "MaximumMessageSize",
            "MessageRetentionPeriod",
            "ReceiveMessageWaitTimeSeconds",
            "VisibilityTimeout",
            "FifoQueue",
            "ContentBasedDeduplication",
            "DeduplicationScope",
            "FifoThroughputLimit",
            "KmsMasterKeyId",
            "KmsDataKeyReusePeriodSeconds",
            "SqsManagedSseEnabled",
        )
        attributes = {key: _text(props[key]) for key in attribute_names if key in props}
        for key in ("RedrivePolicy", "RedriveAllowPolicy"):
            if key in props:
                value = props[key]
                attributes[key] = value if isinstance(value, str) else json.dumps(value)
        args: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if props.get("Tags"):
            args["tags"] = {tag["Key"]: tag["Value"] for tag in props["Tags"]}
        url = sqs.create_queue(**args)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.unapplied(
            logical_id, props, {*attribute_names, "QueueName", "RedrivePolicy", "RedriveAllowPolicy", "Tags"}
        )
        return {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}

    # ------------------------------------------------------------------ Secrets Manager

    def secret(self, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
        name = props.get("Name") or physical_name(self.stack_name, logical_id)
        if "SecretString" in props:
            value = _text(props["SecretString"])
        elif "GenerateSecretString" in props:
            generate = props["GenerateSecretString"]
            key = generate.get("GenerateStringKey")
            if key:
                document = json.loads(generate.get("SecretStringTemplate") or "{}")
                document[key] = self.token
                value = json.dumps(document)
            else:
                value = self.token
        else:
            value = self.token
        args: dict[str, Any] = {"Name": name, "SecretString": value}
        if props.get("Description"):
            args["Description"] = props["Description"]
        if props.get("Tags"):
            args["Tags"] = props["Tags"]
        arn = self.client("secretsmanager").create_secret(**args)["ARN"]
        self.unapplied(logical_id, props, {"Name", "SecretString", "GenerateSecretString", "Description", "Tags"})
        return {"Ref": arn, "Id": arn}

    # ------------------------------------------------------------------ SNS / SSM

    def topic(self, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
        fifo = _text(props.get("FifoTopic", False)) == "true"
        name = props.get("TopicName") or physical_name(self.stack_name, logical_id, max_length=251)
        if fifo and not name.endswith(".fifo"):
            name += ".fifo"
        keys = ("DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication")
        attributes = {key: _text(props[key]) for key in keys if key in props}
        arn = self.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        self.unapplied(logical_id, props, {*keys, "TopicName"})
        return {"Ref": arn, "TopicArn": arn, "TopicName": name}

    def ssm_parameter(self, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
        name = props.get("Name") or physical_name(self.stack_name, logical_id)
        value = props["Value"]
        kind = props.get("Type", "String")
        self.client("ssm").put_parameter(
            Name=name,
            Value=_text(value),
            Type=kind,
            Overwrite=True,
            **({"Description": props["Description"]} if props.get("Description") else {}),
        )
        self.unapplied(logical_id, props, {"Name", "Value", "Type", "Description"})
        return {"Ref": name, "Type": kind, "Value": value}

    # ------------------------------------------------------------------ EventBridge

    def event_bus(self, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
        name = props.get("Name") or physical_name(self.stack_name, logical_id)
        args: dict[str, Any] = {"Name": name}
        if props.get("Description"):
            args["Description"] = props["Description"]
        if props.get("Tags"):
            args["Tags"] = props["Tags"]
        arn = self.client("events").create_event_bus(**args)["EventBusArn"]
        self.unapplied(logical_id, props, {"Name", "Description", "Tags"})
        return {"Ref": name, "Name": name, "Arn": arn}

    def event_rule(self, logical_id: str, props: dict[str, Any]) -> dict[str, Any]:
        """A rule and its targets. moto answers put_events with 500 once a schedule rule is on the bus
        (toolchain notes): schedule rules are left out here."""
        events = self.client("events")
        name = props.get("Name") or physical_name(self.stack_name, logical_id, max_length=64)
        bus = props.get("EventBusName") or "default"
        bus_name = str(bus).rsplit("/", 1)[-1]
        if props.get("ScheduleExpression"):
            self.note(logical_id, "schedule rule not created locally (moto's put_events fails with one)")
            arn = f"arn:{self.partition}:events:{self.region}:{self.account}:rule/{name}"
            return {"Ref": name, "Arn": arn}
        args: dict[str, Any] = {"Name": name, "EventBusName": bus_name, "State": props.get("State", "ENABLED")}
        pattern = props.get("EventPattern")
        if pattern is not None:
            args["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if props.get("Description"):
            args["Description"] = props["Description"]
        arn = events.put_rule(**args)["RuleArn"]
        targets = [
            {k: (v if k != "Input" or isinstance(v, str) else json.dumps(v)) for k, v in target.items()}
            for target in props.get("Targets") or []
        ]
        if targets:
            events.put_targets(Rule=name, EventBusName=bus_name, Targets=targets)
        self.unapplied(
            logical_id,
            props,
            {"Name", "EventBusName", "State", "EventPattern", "Description", "Targets", "ScheduleExpression"},
        )
        return {"Ref": name, "Arn": arn}


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A CloudFormation S3 lifecycle rule in the shape of the S3 API."""
    out: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    conditions: list[dict[str, Any]] = []
    if "Prefix" in rule:
        conditions.append({"Prefix": rule["Prefix"]})
    for tag in rule.get("TagFilters") or []:
        conditions.append({"Tag": tag})
    for key in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        if key in rule:
            conditions.append({key: _int(rule[key])})
    if not conditions:
        out["Filter"] = {}
    elif len(conditions) == 1:
        out["Filter"] = conditions[0]
    else:
        combined: dict[str, Any] = {}
        for condition in conditions:
            if "Tag" in condition:
                combined.setdefault("Tags", []).append(condition["Tag"])
            else:
                combined.update(condition)
        out["Filter"] = {"And": combined}
    expiration: dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = _int(rule["ExpirationInDays"])
    if "ExpirationDate" in rule:
        expiration["Date"] = rule["ExpirationDate"]
    if "ExpiredObjectDeleteMarker" in rule:
        expiration["ExpiredObjectDeleteMarker"] = _text(rule["ExpiredObjectDeleteMarker"]) == "true"
    if expiration:
        out["Expiration"] = expiration
    transitions = list(rule.get("Transitions") or []) + ([rule["Transition"]] if "Transition" in rule else [])
    if transitions:
        out["Transitions"] = [
            {
                **({"Days": _int(t["TransitionInDays"])} if "TransitionInDays" in t else {}),
                **({"Date": t["TransitionDate"]} if "TransitionDate" in t else {}),
                "StorageClass": t["StorageClass"],
            }
            for t in transitions
        ]
    noncurrent = rule.get("NoncurrentVersionExpiration")
    if noncurrent or "NoncurrentVersionExpirationInDays" in rule:
        days = (noncurrent or {}).get("NoncurrentDays", rule.get("NoncurrentVersionExpirationInDays"))
        entry: dict[str, Any] = {"NoncurrentDays": _int(days)}
        if noncurrent and "NewerNoncurrentVersions" in noncurrent:
            entry["NewerNoncurrentVersions"] = _int(noncurrent["NewerNoncurrentVersions"])
        out["NoncurrentVersionExpiration"] = entry
    noncurrent_transitions = list(rule.get("NoncurrentVersionTransitions") or [])
    if "NoncurrentVersionTransition" in rule:
        noncurrent_transitions.append(rule["NoncurrentVersionTransition"])
    if noncurrent_transitions:
        out["NoncurrentVersionTransitions"] = [
            {
                "NoncurrentDays": _int(t["TransitionInDays"]),
                "StorageClass": t["StorageClass"],
                **(
                    {"NewerNoncurrentVersions": _int(t["NewerNoncurrentVersions"])}
                    if "NewerNoncurrentVersions" in t
                    else {}
                ),
            }
            for t in noncurrent_transitions
        ]
    abort = rule.get("AbortIncompleteMultipartUpload")
    if abort:
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": _int(abort["DaysAfterInitiation"])}
    return out


def create_resources(
    template: Mapping[str, Any],
    resolver: cfn.Resolver,
    endpoint_url: str,
    *,
    token: str | None = None,
    stack_name: str = cfn.DEFAULT_STACK_NAME,
    region: str | None = None,
) -> CreatedResources:
    """Create in moto (at ``endpoint_url``) every resource of the template moto can hold.

    ``template`` should be the Globals-merged template. Resources with a false Condition are skipped.
    Each created or placeholder resource is registered in ``resolver`` as it goes, so later resources
    can refer to earlier ones (a queue's RedrivePolicy to its dead-letter queue's ARN).
    Secrets get ``{"<GenerateStringKey>": token}`` (token: argument, env WEBHOOK_TOKEN or local-dev-token).
    """
    token = token or os.environ.get("WEBHOOK_TOKEN") or DEFAULT_TOKEN
    creator = _Creator(
        template,
        resolver,
        endpoint_url,
        token=token,
        stack_name=stack_name,
        region=region or resolver.region,
    )
    return creator.run()
