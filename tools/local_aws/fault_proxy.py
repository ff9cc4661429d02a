"""A reverse proxy between the code and moto that logs AWS calls and can make them fail.

Every request is forwarded unchanged (bodies are streamed, Content-Length or chunked). Each one is
named (service, operation):

* service: the SigV4 credential scope (``Authorization`` header, or ``X-Amz-Credential`` of a presigned
  URL), e.g. ``dynamodb``, ``s3``, ``sqs``, ``secretsmanager``;
* operation: ``X-Amz-Target`` for JSON protocols (DynamoDB, SQS, Secrets Manager ...), ``Action`` of the
  query string or form body for query protocols, and method + path + query for S3 (``PutObject``,
  ``UploadPart``, ``CompleteMultipartUpload`` ...).

Tests read the call log (``calls``, ``count``, ``reset_calls``) and inject faults: ``fail`` answers an
AWS-shaped error without forwarding, ``slow`` delays the forwarding, ``outage`` resets every connection
until ``restore``; ``clear`` drops every rule and ends an outage.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import struct
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tools.background import BackgroundServer

log = logging.getLogger("tools.local_aws.fault_proxy")

BLOCK = 64 * 1024
INSPECT_LIMIT = 1024 * 1024  # bodies up to this size are read whole to find the operation / resource
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "expect",
}
SERVICE_ALIASES = {"cloudwatch": "monitoring", "eventbridge": "events", "sfn": "states"}

# S3 sub-resources (query keys) -> the noun of the operation name.
_S3_BUCKET_SUBRESOURCES = {
    "accelerate": "BucketAccelerateConfiguration",
    "acl": "BucketAcl",
    "analytics": "BucketAnalyticsConfiguration",
    "cors": "BucketCors",
    "encryption": "BucketEncryption",
    "intelligent-tiering": "BucketIntelligentTieringConfiguration",
    "inventory": "BucketInventoryConfiguration",
    "lifecycle": "BucketLifecycleConfiguration",
    "location": "BucketLocation",
    "logging": "BucketLogging",
    "metrics": "BucketMetricsConfiguration",
    "notification": "BucketNotificationConfiguration",
    "object-lock": "ObjectLockConfiguration",
    "ownershipControls": "BucketOwnershipControls",
    "policy": "BucketPolicy",
    "policyStatus": "BucketPolicyStatus",
    "publicAccessBlock": "PublicAccessBlock",
    "replication": "BucketReplication",
    "requestPayment": "BucketRequestPayment",
    "tagging": "BucketTagging",
    "versioning": "BucketVersioning",
    "website": "BucketWebsite",
}
_S3_OBJECT_SUBRESOURCES = {
    "acl": "ObjectAcl",
    "tagging": "ObjectTagging",
    "retention": "ObjectRetention",
    "legal-hold": "ObjectLegalHold",
    "attributes": "ObjectAttributes",
    "torrent": "ObjectTorrent",
}


def s3_operation(method: str, path: str, query: dict[str, list[str]], headers: Any, host: str = "") -> tuple[str, str]:
    """(operation, "bucket/key") of an S3 REST request (path-style, or virtual-hosted on *.localhost)."""
    method = method.upper()
    hostname = host.split(":", 1)[0].lower()
    parts = urllib.parse.unquote(path).lstrip("/").split("/", 1)
    if hostname.endswith(".localhost"):
        bucket, key = hostname[: -len(".localhost")], urllib.parse.unquote(path).lstrip("/")
    elif ".s3." in hostname or hostname.endswith(".s3.amazonaws.com"):
        bucket, key = hostname.split(".s3.", 1)[0], urllib.parse.unquote(path).lstrip("/")
    else:
        bucket, key = parts[0], parts[1] if len(parts) > 1 else ""
    resource = f"{bucket}/{key}" if key else bucket
    verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "POST": "Post"}.get(method, method)
    if not bucket:
        return ("ListBuckets" if method == "GET" else f"{verb}Service"), ""
    if not key:
        if method == "POST" and "delete" in query:
            return "DeleteObjects", resource
        if method == "GET":
            if "uploads" in query:
                return "ListMultipartUploads", resource
            if "versions" in query:
                return "ListObjectVersions", resource
        for name, noun in _S3_BUCKET_SUBRESOURCES.items():
            if name in query:
                return f"{verb}{noun}", resource
        return {
            "PUT": "CreateBucket",
            "DELETE": "DeleteBucket",
            "HEAD": "HeadBucket",
            "GET": "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects",
        }.get(method, f"{verb}Bucket"), resource
    copy_source = headers.get("x-amz-copy-source") if headers is not None else None
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload", resource
        if "uploadId" in query:
            return "CompleteMultipartUpload", resource
        if "restore" in query:
            return "RestoreObject", resource
        if "select" in query:
            return "SelectObjectContent", resource
        return "PostObject", resource
    if method == "PUT" and "partNumber" in query and "uploadId" in query:
        return ("UploadPartCopy" if copy_source else "UploadPart"), resource
    if method == "GET" and "uploadId" in query:
        return "ListParts", resource
    if method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload", resource
    for name, noun in _S3_OBJECT_SUBRESOURCES.items():
        if name in query:
            return f"{verb}{noun}", resource
    if method == "PUT":
        return ("CopyObject" if copy_source else "PutObject"), resource
    return {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}.get(method, f"{verb}Object"), resource


def credential_service(authorization: str | None, query: dict[str, list[str]]) -> str:
    """Service of the SigV4 credential scope (``AKID/date/region/service/aws4_request``)."""
    credential = ""
    if authorization and "Credential=" in authorization:
        credential = authorization.split("Credential=", 1)[1].split(",", 1)[0].strip()
    elif query.get("X-Amz-Credential"):
        credential = query["X-Amz-Credential"][0]
    scope = credential.split("/")
    return scope[3].lower() if len(scope) >= 5 else ""


def _resource_from_json(payload: Any) -> str:
    if not isinstance(payload, dict):
        return ""
    for key in ("TableName", "SecretId", "Name", "TopicArn", "TargetArn"):
        if isinstance(payload.get(key), str):
            return str(payload[key])
    if isinstance(payload.get("QueueUrl"), str):
        return str(payload["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
    if isinstance(payload.get("RequestItems"), dict):
        return ",".join(sorted(payload["RequestItems"]))
    if isinstance(payload.get("TransactItems"), list):
        tables = set()
        for item in payload["TransactItems"]:
            for action in (item or {}).values():
                if isinstance(action, dict) and isinstance(action.get("TableName"), str):
                    tables.add(action["TableName"])
        return ",".join(sorted(tables))
    return ""


@dataclass(frozen=True)
class Call:
    """One request that reached the proxy."""

    service: str
    operation: str
    method: str
    path: str  # without the query string
    status: int  # 0 when the connection was reset (outage) or moto was unreachable
    injected: bool  # the proxy answered (fail / outage) instead of moto
    resource: str  # best effort: table, "bucket/key", queue name, secret id
    at: float


@dataclass
class FaultRule:
    service: str
    operation: str | None
    times: int | None  # None: until cleared
    status: int = 500
    code: str | None = None
    message: str | None = None
    delay: float = 0.0  # > 0: a slow rule (forwarded after the delay)
    hits: int = 0
    # An answer rule: called with the request body, returns (status, JSON body) sent instead of moto's.
    respond: Callable[[bytes], tuple[int, Any]] | None = None
    # Only requests whose resource (Call.resource: "bucket/key" for S3) starts with this.
    resource: str | None = None

    def matches(self, service: str, operation: str, resource: str = "") -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        wanted = SERVICE_ALIASES.get(self.service.lower(), self.service.lower())
        if wanted not in ("*", service):
            return False
        if self.resource is not None and not resource.startswith(self.resource):
            return False
        return self.operation is None or self.operation.lower() == operation.lower()

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


class FaultProxy(BackgroundServer):
    """The proxy server and its controller (``fail``, ``slow``, ``outage``, ``calls`` ...)."""

    def __init__(self, upstream_url: str, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 60.0) -> None:
        parsed = urllib.parse.urlsplit(upstream_url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream_url!r}")
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 80
        self.timeout = timeout
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._calls: list[Call] = []
        self._outage = False
        super().__init__(_ProxyServer((host, port), _ProxyHandler, self), "fault-proxy")

    # ------------------------------------------------------------------ server

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ faults

    def fail(
        self,
        service: str,
        operation: str | None = None,
        times: int | None = None,
        status: int = 500,
        *,
        code: str | None = None,
        message: str | None = None,
        resource: str | None = None,
    ) -> FaultRule:
        """Answer matching requests with an AWS-shaped error (``times`` requests, or until cleared).

        ``service`` is the signing name (``dynamodb``, ``s3``, ``sqs``, ``secretsmanager`` ...; ``*`` for
        any); ``operation`` as AWS names it (``PutItem``, ``PutObject`` ...) or None for every operation.
        ``code`` defaults by service and status (DynamoDB 500: InternalServerError, S3 500: InternalError,
        503: ServiceUnavailable / SlowDown, 400: ThrottlingException ...).
        ``resource``: only requests whose resource starts with it (S3: ``bucket/key``, e.g. one folder).
        Remember the SDK retries 5xx and throttling (AWS_MAX_ATTEMPTS): ``times=1`` is usually absorbed.
        """
        rule = FaultRule(service, operation, times, status, code, message, resource=resource)
        with self._lock:
            self._rules.append(rule)
        return rule

    def answer(
        self,
        service: str,
        operation: str,
        respond: Callable[[bytes], tuple[int, Any]],
        times: int | None = None,
    ) -> FaultRule:
        """Answer matching requests (JSON protocols) with ``respond(request body)`` = (status, JSON value)
        instead of forwarding them: e.g. a PutEvents answer with ``FailedEntryCount``, where ``respond``
        may forward part of the request to moto itself (a partial failure)."""
        rule = FaultRule(service, operation, times, status=200, respond=respond)
        with self._lock:
            self._rules.append(rule)
        return rule

    def slow(
        self, service: str, operation: str | None = None, seconds: float = 1.0, times: int | None = None
    ) -> FaultRule:
        """Forward matching requests only after ``seconds`` (to exercise client timeouts)."""
        rule = FaultRule(service, operation, times, delay=seconds)
        with self._lock:
            self._rules.append(rule)
        return rule

    def outage(self) -> None:
        """Reset every connection (new and kept-alive) until ``restore``: AWS unreachable."""
        with self._lock:
            self._outage = True

    def restore(self) -> None:
        with self._lock:
            self._outage = False

    @property
    def in_outage(self) -> bool:
        with self._lock:
            return self._outage

    def clear(self) -> None:
        """Drop every fail / slow rule and end an outage (the call log is kept)."""
        with self._lock:
            self._rules.clear()
            self._outage = False

    def _take_rule(self, service: str, operation: str, resource: str = "") -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(service, operation, resource):
                    rule.hits += 1
                    return FaultRule(**{**rule.__dict__})  # a snapshot for this request
            return None

    # ------------------------------------------------------------------ call log

    def record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def calls(
        self, service: str | None = None, operation: str | None = None, *, injected: bool | None = None
    ) -> list[Call]:
        """Logged calls, optionally of one service / operation, injected (True) or forwarded (False)."""
        with self._lock:
            snapshot = list(self._calls)
        wanted = SERVICE_ALIASES.get(service.lower(), service.lower()) if service else None
        return [
            call
            for call in snapshot
            if (wanted is None or call.service == wanted)
            and (operation is None or call.operation.lower() == operation.lower())
            and (injected is None or call.injected == injected)
        ]

    def count(self, service: str | None = None, operation: str | None = None, *, injected: bool | None = None) -> int:
        return len(self.calls(service, operation, injected=injected))

    def operations(self) -> list[tuple[str, str]]:
        """(service, operation) of every logged call, in order."""
        return [(call.service, call.operation) for call in self.calls()]

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__(address, handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        if self.proxy.in_outage:
            _reset(request)
            return False
        return True


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


def _error_response(
    service: str, operation: str, protocol: str, rule: FaultRule, request_id: str
) -> tuple[dict[str, str], bytes]:
    status = rule.status
    if protocol == "s3":
        code = rule.code or {500: "InternalError", 503: "SlowDown", 400: "RequestTimeout"}.get(status, "InternalError")
    elif service == "dynamodb":
        code = rule.code or {500: "InternalServerError", 503: "ServiceUnavailable", 400: "ThrottlingException"}.get(
            status, "InternalServerError"
        )
    elif service == "secretsmanager":
        code = rule.code or {500: "InternalServiceError", 400: "ThrottlingException"}.get(
            status, "InternalServiceError"
        )
    else:
        code = rule.code or {500: "InternalFailure", 503: "ServiceUnavailable", 400: "ThrottlingException"}.get(
            status, "InternalFailure"
        )
    message = rule.message or "Injected by the local fault proxy"
    if protocol == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
        )
        return {"Content-Type": "application/xml", "x-amz-request-id": request_id}, body.encode()
    if protocol in ("json-1.0", "json-1.1"):
        prefix = "com.amazonaws.dynamodb.v20120810#" if service == "dynamodb" else ""
        headers = {
            "Content-Type": f"application/x-amz-{protocol}",
            "x-amzn-RequestId": request_id,
            "x-amzn-query-error": f"{code};{'Sender' if status < 500 else 'Receiver'}",
        }
        return headers, json.dumps({"__type": prefix + code, "message": message}).encode()
    if protocol == "query":
        kind = "Sender" if status < 500 else "Receiver"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body.encode()
    headers = {"Content-Type": "application/json", "x-amzn-RequestId": request_id, "x-amzn-ErrorType": code}
    return headers, json.dumps({"message": message, "Message": message}).encode()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Answers go out as headers, then body: with Nagle on, each AWS call through the proxy would wait
    # for the client's delayed ACK (tens of ms per call on Linux loopback).
    disable_nagle_algorithm = True
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fault proxy: " + format, *args)

    # every method goes through one path
    def do_GET(self) -> None:
        self._proxy()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    # ------------------------------------------------------------------ body helpers

    def _body_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value is not None and value.strip().isdigit() else None

    def _is_chunked(self) -> bool:
        return "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()

    def _stream_fixed(self, length: int) -> Iterator[bytes]:
        remaining = length
        while remaining > 0:
            block = self.rfile.read(min(BLOCK, remaining))
            if not block:
                raise ConnectionError("client closed the connection mid-body")
            remaining -= len(block)
            yield block

    def _stream_chunked_raw(self) -> Iterator[bytes]:
        """The chunked body exactly as sent (framing included), until the last chunk and trailers."""
        while True:
            size_line = self.rfile.readline(65537)
            if not size_line:
                raise ConnectionError("client closed the connection mid-body")
            yield size_line
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    trailer = self.rfile.readline(65537)
                    yield trailer
                    if trailer in (b"\r\n", b"\n", b""):
                        return
            yield from self._stream_fixed(size + 2)  # data + CRLF

    def _drain(self) -> None:
        length = self._body_length()
        body = self._stream_chunked_raw() if self._is_chunked() else self._stream_fixed(length or 0)
        for _ in body:
            pass

    # ------------------------------------------------------------------ main path

    def _identify(self, body: bytes | None) -> tuple[str, str, str, str]:
        """(service, operation, protocol, resource)."""
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        service = credential_service(self.headers.get("Authorization"), query)
        target = self.headers.get("X-Amz-Target")
        content_type = (self.headers.get("Content-Type") or "").lower()
        if split.path.startswith("/moto-api"):
            return "moto", split.path, "moto", ""
        if target:
            protocol = "json-1.1" if "1.1" in content_type else "json-1.0"
            resource = ""
            if body is not None:
                try:
                    resource = _resource_from_json(json.loads(body or b"{}"))
                except ValueError:
                    resource = ""
            return service, target.rsplit(".", 1)[-1], protocol, resource
        if "Action" in query:
            return service, query["Action"][0], "query", ""
        if body is not None and "x-www-form-urlencoded" in content_type:
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            if "Action" in form:
                resource = ""
                for key in ("QueueUrl", "TopicArn", "Name"):
                    if key in form:
                        resource = form[key][0].rstrip("/").rsplit("/", 1)[-1] if key == "QueueUrl" else form[key][0]
                        break
                return service, form["Action"][0], "query", resource
        if service == "s3":
            operation, resource = s3_operation(
                self.command, split.path, query, self.headers, self.headers.get("Host", "")
            )
            return service, operation, "s3", resource
        return service or "unknown", f"{self.command} {split.path}", "rest", ""

    def _proxy(self) -> None:
        proxy = self.server.proxy
        if proxy.in_outage:
            self.close_connection = True
            _reset(self.connection)
            return
        length = self._body_length()
        chunked = self._is_chunked()
        content_type = (self.headers.get("Content-Type") or "").lower()
        body: bytes | None = None
        inspect = ("x-www-form-urlencoded" in content_type or self.headers.get("X-Amz-Target")) and not chunked
        if inspect and length is not None and length <= INSPECT_LIMIT:
            body = self.rfile.read(length)
        elif not chunked and not length:
            body = b""
        service, operation, protocol, resource = self._identify(body)
        path = urllib.parse.urlsplit(self.path).path
        rule = proxy._take_rule(service, operation, resource) if protocol != "moto" else None
        if rule is not None and rule.delay <= 0:
            if body is None:
                self._drain()
            request_id = uuid.uuid4().hex.upper()[:16]
            if rule.respond is not None:
                status, value = rule.respond(body or b"")
                rule.status = status
                headers = {"Content-Type": f"application/x-amz-{protocol}", "x-amzn-RequestId": request_id}
                payload = json.dumps(value).encode()
            else:
                headers, payload = _error_response(service, operation, protocol, rule, request_id)
            # Logged before answering, so a client that reads the log after its call finds it there.
            proxy.record(Call(service, operation, self.command, path, rule.status, True, resource, time.time()))
            self.send_response(rule.status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        if rule is not None:
            time.sleep(rule.delay)
            if proxy.in_outage:
                self.close_connection = True
                _reset(self.connection)
                proxy.record(Call(service, operation, self.command, path, 0, True, resource, time.time()))
                return
        self._forward(
            body,
            length,
            chunked,
            lambda status: proxy.record(
                Call(service, operation, self.command, path, status, False, resource, time.time())
            ),
        )

    def _forward(self, body: bytes | None, length: int | None, chunked: bool, record: Callable[[int], None]) -> int:
        """Send the request on to moto and relay the answer; `record` logs the call before the
        answer is relayed."""
        proxy = self.server.proxy
        upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=proxy.timeout)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() in HOP_BY_HOP:
                    continue
                upstream.putheader(name, value)
            upstream.putheader("Connection", "close")
            upstream.endheaders()
            if body is not None:
                if body:
                    upstream.send(body)
            elif chunked:
                for block in self._stream_chunked_raw():
                    upstream.send(block)
            else:
                for block in self._stream_fixed(length or 0):
                    upstream.send(block)
            response = upstream.getresponse()
        except (OSError, http.client.HTTPException) as error:
            upstream.close()
            log.warning("fault proxy: upstream unreachable (%s)", type(error).__name__)
            if body is None:
                self.close_connection = True
            payload = b'{"message":"fault proxy: upstream unreachable"}'
            record(502)
            self.send_response(502)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return 502
        record(response.status)
        try:
            self._relay(response)
        finally:
            upstream.close()
        return response.status

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        declared = response.getheader("Content-Length")
        upstream_chunked = "chunked" in (response.getheader("Transfer-Encoding") or "").lower()
        no_body = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
        for name, value in response.getheaders():
            if name.lower() in HOP_BY_HOP or name.lower() == "transfer-encoding":
                continue
            if name.lower() == "content-length" and upstream_chunked:
                continue
            self.send_header(name, value)
        if no_body:
            self.end_headers()
            return
        if declared is not None and not upstream_chunked:
            self.end_headers()
            while True:
                block = response.read(BLOCK)
                if not block:
                    break
                self.wfile.write(block)
            return
        # Chunked upstream (decoded by http.client), or read-until-close: re-chunk to our client.
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while True:
            block = response.read1(BLOCK) if hasattr(response, "read1") else response.read(BLOCK)
            if not block:
                break
            self.wfile.write(f"{len(block):X}\r\n".encode() + block + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")
