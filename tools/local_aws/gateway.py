"""A local API Gateway (HTTP API, payload format 2.0) that runs the template's functions in-process.

Routes come from template.yaml only: every ``HttpApi`` event of every ``AWS::Serverless::Function``.
Matching follows API Gateway: the most specific route wins (a literal segment beats ``{param}``, which
beats greedy ``{proxy+}``), the method must match (``ANY`` matches every method, a named method beats
it), ``$default`` takes what nothing else matched, and no match is ``404 {"message":"Not Found"}``.
Each route's throttle (its ``RouteSettings``, else the API's ``DefaultRouteSettings``) is applied as API
Gateway applies it, a token bucket per route: over it, ``429 {"message":"Too Many Requests"}`` before any
function runs. The account-level quota is not emulated.

Handlers are imported by file path (CodeUri + Handler) with the code directories and the layers'
ContentUri directories on ``sys.path``; functions sharing CodeUri + Handler share one module object,
and the one process serves concurrent requests on threads (like several warm Lambda containers that
happen to share memory).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import re
import secrets
import sys
import threading
import time
import traceback
import types
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from tools.background import BackgroundServer
from tools.local_aws.template import TemplateDefaults, TemplateError, resources_of_type, scalar_text

log = logging.getLogger("tools.local_aws.gateway")

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
IMPLICIT_HTTP_API = "ServerlessHttpApi"  # what SAM calls the API of HttpApi events without ApiId
TEXT_CONTENT_TYPES = ("application/json", "application/xml", "application/javascript")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

NOT_FOUND = (404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
TOO_LARGE = (413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}')
INTERNAL_ERROR = (500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
TOO_MANY_REQUESTS = (429, {"content-type": "application/json"}, b'{"message":"Too Many Requests"}')


class Resolves(Protocol):
    """What the routes need of a stack: template values resolved, and which resources it holds
    (tools.local_aws.stack.StackValues for a running stack, TemplateDefaults without one)."""

    def resolve(self, value: Any) -> Any: ...

    def resource_enabled(self, logical_id: str) -> bool: ...


def api_id_for(stack_name: str, logical_id: str) -> str:
    """A stable 10-character id shaped like an API Gateway id."""
    return hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:10]


# ---------------------------------------------------------------------------------------------- throttles


@dataclass(frozen=True)
class Throttle:
    """A route's throttle: ``burst`` requests at once, refilled at ``rate`` requests per second."""

    rate: float
    burst: int


class TokenBucket:
    """API Gateway's throttle: starts full (``burst`` tokens) and refills ``rate`` tokens a second, never
    above ``burst``; each request takes a token, and a request that finds none is refused."""

    def __init__(self, throttle: Throttle, clock: Callable[[], float] = time.monotonic) -> None:
        self.throttle = throttle
        self._clock = clock
        self._tokens = float(throttle.burst)
        self._last = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """True if the request may pass (a token taken), False if it is throttled."""
        with self._lock:
            now = self._clock()
            refill = max(0.0, now - self._last) * self.throttle.rate
            self._tokens = min(float(self.throttle.burst), self._tokens + refill)
            self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def _throttle_of(*settings: Any) -> Throttle | None:
    """The throttle of the first settings (most specific first) that give each limit; None if one is missing."""
    found: dict[str, Any] = {}
    for setting in settings:
        if isinstance(setting, Mapping):
            for name in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
                if name not in found and setting.get(name) is not None:
                    found[name] = setting[name]
    if len(found) < 2:
        return None
    return Throttle(rate=float(found["ThrottlingRateLimit"]), burst=int(found["ThrottlingBurstLimit"]))


# ---------------------------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class Route:
    method: str  # upper case, or "ANY"
    path: str  # as in the template, e.g. /webhooks/{proxy+}; "$default" for the default route
    function_id: str
    api_id: str = IMPLICIT_HTTP_API  # logical id of the HttpApi
    event_name: str = ""
    payload_format: str = "2.0"
    throttle: Throttle | None = None  # None: not throttled

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    @property
    def segments(self) -> list[str]:
        return self.path.split("/")[1:]

    def match(self, path: str) -> dict[str, str] | None:
        """Path parameters if ``path`` (as received, percent-encoded) matches this route, else None."""
        if self.path == "$default":
            return {}
        wanted = self.segments
        given = path.split("/")[1:] if path.startswith("/") else None
        if given is None:
            return None
        params: dict[str, str] = {}
        for index, segment in enumerate(wanted):
            if segment.startswith("{") and segment.endswith("+}"):
                rest = "/".join(given[index:])
                if index != len(wanted) - 1 or not rest:
                    return None
                params[segment[1:-2]] = urllib.parse.unquote(rest)
                return params
            if index >= len(given):
                return None
            if segment.startswith("{") and segment.endswith("}"):
                if not given[index]:
                    return None
                params[segment[1:-1]] = urllib.parse.unquote(given[index])
            elif segment != given[index]:
                return None
        return params if len(given) == len(wanted) else None

    def specificity(self) -> tuple[int, ...]:
        """Per segment: literal 2, {param} 1, {greedy+} 0 (compared left to right)."""
        ranks = []
        for segment in self.segments:
            if segment.startswith("{") and segment.endswith("+}"):
                ranks.append(0)
            elif segment.startswith("{") and segment.endswith("}"):
                ranks.append(1)
            else:
                ranks.append(2)
        return tuple(ranks)


@dataclass(frozen=True)
class EventSource:
    """A non-HTTP event of a function (SQS, Schedule, ...), as declared (intrinsics not resolved)."""

    function_id: str
    name: str
    type: str
    properties: Mapping[str, Any]


def _api_logical_id(value: Any) -> str:
    if value is None:
        return IMPLICIT_HTTP_API
    if isinstance(value, dict) and isinstance(value.get("Ref"), str):
        return str(value["Ref"])
    if isinstance(value, str):
        return value
    raise TemplateError(f"HttpApi event ApiId must be a !Ref to an HttpApi, got {value!r}")


def _api_properties(template: Mapping[str, Any], api_id: str) -> Mapping[str, Any]:
    """Properties of the HttpApi ``api_id``; for SAM's implicit API, the Globals' HttpApi section."""
    resource = (template.get("Resources") or {}).get(api_id)
    if resource is not None:
        return resource.get("Properties") or {}
    return (template.get("Globals") or {}).get("HttpApi") or {} if api_id == IMPLICIT_HTTP_API else {}


def load_routes(template: Mapping[str, Any], resolver: Resolves | None = None) -> list[Route]:
    """Every HttpApi event of the (enabled) serverless functions, in template order, each with its throttle:
    per limit, the event's RouteSettings, else the API's RouteSettings for the route key, else the API's
    DefaultRouteSettings (intrinsics resolved with the resolver's parameters)."""
    resolver = resolver or TemplateDefaults(template)
    routes: list[Route] = []
    seen: dict[tuple[str, str], str] = {}
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        if not resolver.resource_enabled(logical_id):
            continue
        for event_name, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
            if event.get("Type") != "HttpApi":
                continue
            props = event.get("Properties") or {}
            path = resolver.resolve(props["Path"]) if "Path" in props else None
            method = resolver.resolve(props["Method"]) if "Method" in props else None
            if path is None and method is None:
                path, method = "$default", "ANY"
            elif path is None or method is None:
                raise TemplateError(f"{logical_id}.{event_name}: HttpApi needs both Path and Method")
            method = str(method).upper()
            if method in ("X-AMAZON-APIGATEWAY-ANY-METHOD", "*"):
                method = "ANY"
            payload = str(resolver.resolve(props.get("PayloadFormatVersion", "2.0")))
            api_id = _api_logical_id(props.get("ApiId"))
            route = Route(method, str(path), logical_id, api_id, event_name, payload)
            api = _api_properties(template, api_id)
            throttle = _throttle_of(
                resolver.resolve(props.get("RouteSettings")),
                resolver.resolve((api.get("RouteSettings") or {}).get(route.route_key)),
                resolver.resolve(api.get("DefaultRouteSettings")),
            )
            route = dataclasses.replace(route, throttle=throttle)
            key = (route.api_id, route.route_key)
            if key in seen:
                raise TemplateError(f"route {route.route_key} declared by both {seen[key]} and {logical_id}")
            seen[key] = logical_id
            if payload != "2.0":
                log.warning("%s: payload format %s is not emulated; the 2.0 event is sent", route.route_key, payload)
            routes.append(route)
    by_key: dict[str, str] = {}
    for route in routes:  # one local port serves every HttpApi: their routes must not collide
        if route.route_key in by_key and by_key[route.route_key] != route.api_id:
            raise TemplateError(f"route {route.route_key} is declared on two HttpApis; cannot serve both")
        by_key[route.route_key] = route.api_id
    return routes


def load_event_sources(template: Mapping[str, Any], resolver: Resolves | None = None) -> list[EventSource]:
    """Every non-HttpApi event of the (enabled) serverless functions."""
    resolver = resolver or TemplateDefaults(template)
    sources = []
    for logical_id, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        if not resolver.resource_enabled(logical_id):
            continue
        for event_name, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
            if event.get("Type") != "HttpApi":
                sources.append(
                    EventSource(logical_id, event_name, str(event.get("Type")), event.get("Properties") or {})
                )
    return sources


def match_route(routes: Iterable[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route API Gateway would pick for ``method`` ``path``, with its path parameters."""
    method = method.upper()
    best: tuple[tuple[tuple[int, ...], bool], Route, dict[str, str]] | None = None
    default: Route | None = None
    for route in routes:
        if route.path == "$default":
            default = route
            continue
        if route.method not in (method, "ANY"):
            continue
        params = route.match(path)
        if params is None:
            continue
        rank = (route.specificity(), route.method != "ANY")
        if best is None or rank > best[0]:
            best = (rank, route, params)
    if best is not None:
        return best[1], best[2]
    if default is not None:
        return default, {}
    return None


# ---------------------------------------------------------------------------------------------- events


def _is_text(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in TEXT_CONTENT_TYPES


def _request_time(epoch_ms: int) -> str:
    t = time.gmtime(epoch_ms / 1000)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def new_request_id(seed: str | None = None) -> str:
    """An id shaped like API Gateway's (``JKJaXmPLvHcESHA=``); deterministic when ``seed`` is given."""
    raw = hashlib.sha256(seed.encode()).digest()[:11] if seed is not None else secrets.token_bytes(11)
    return base64.b64encode(raw).decode("ascii")


def _header_pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    return [(str(k), str(v)) for k, v in headers]


def _query_pairs(
    query: str | Mapping[str, Any] | Iterable[tuple[str, str]] | None,
) -> tuple[str, list[tuple[str, str]]]:
    if query is None:
        return "", []
    if isinstance(query, str):
        raw = query[1:] if query.startswith("?") else query
        return raw, urllib.parse.parse_qsl(raw, keep_blank_values=True)
    pairs: list[tuple[str, str]] = []
    items = query.items() if isinstance(query, Mapping) else query
    for key, value in items:
        if isinstance(value, list | tuple):
            pairs.extend((str(key), str(v)) for v in value)
        else:
            pairs.append((str(key), str(value)))
    return urllib.parse.urlencode(pairs), pairs


def build_event(
    method: str,
    path: str,
    query: str | Mapping[str, Any] | Iterable[tuple[str, str]] | None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    body: bytes | str | None,
    route: Route | str,
    *,
    source_ip: str = "127.0.0.1",
    request_id: str | None = None,
    time_epoch_ms: int | None = None,
    api_id: str = "local",
    region: str = TemplateDefaults.region,
    account_id: str = TemplateDefaults.account_id,
    stage: str = "$default",
    protocol: str = "HTTP/1.1",
    forwarded_proto: str = "https",
    forwarded_port: int = 443,
) -> dict[str, Any]:
    """The payload-format-2.0 event API Gateway sends the function of ``route`` for this request.

    ``path`` is the path as received (percent-encoded, no query); ``query`` a raw query string or
    pairs; ``headers`` a mapping or (name, value) pairs (repeated names allowed); ``route`` a Route, a
    route key ("POST /webhooks/{proxy+}", "$default") or a route path (method taken from ``method``).
    """
    method = method.upper()
    if isinstance(route, str):
        if route == "$default":
            route = Route("ANY", "$default", "")
        elif " " in route:
            route_method, route_path = route.split(" ", 1)
            route = Route(route_method.upper(), route_path, "")
        else:
            route = Route(method, route, "")
    path_params = route.match(path)
    if path_params is None:
        raise ValueError(f"{path!r} does not match route {route.route_key}")
    epoch_ms = int(time.time() * 1000) if time_epoch_ms is None else int(time_epoch_ms)
    request_id = request_id or new_request_id()
    domain_name = f"{api_id}.execute-api.{region}.amazonaws.com"

    header_map: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in _header_pairs(headers):
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        header_map[lower] = f"{header_map[lower]},{value}" if lower in header_map else value
    raw_body = body.encode("utf-8") if isinstance(body, str) else body
    header_map.setdefault("host", domain_name)
    if raw_body:
        header_map.setdefault("content-length", str(len(raw_body)))
    header_map.setdefault(
        "x-amzn-trace-id", f"Root=1-{epoch_ms // 1000:08x}-{hashlib.sha256(request_id.encode()).hexdigest()[:24]}"
    )
    header_map.setdefault("x-forwarded-for", source_ip)
    header_map.setdefault("x-forwarded-port", str(forwarded_port))
    header_map.setdefault("x-forwarded-proto", forwarded_proto)

    raw_query, pairs = _query_pairs(query)
    query_params: dict[str, str] = {}
    for key, value in pairs:
        query_params[key] = f"{query_params[key]},{value}" if key in query_params else value

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = header_map
    if query_params:
        event["queryStringParameters"] = query_params
    event["requestContext"] = {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": domain_name,
        "domainPrefix": api_id,
        "http": {
            "method": method,
            "path": path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": header_map.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route.route_key,
        "stage": stage,
        "time": _request_time(epoch_ms),
        "timeEpoch": epoch_ms,
    }
    if raw_body:  # API Gateway leaves "body" out when the request has none
        text: str | None = None
        if _is_text(header_map.get("content-type")):
            try:
                text = raw_body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is not None:
            event["body"] = text
            event["isBase64Encoded"] = False
        else:
            event["body"] = base64.b64encode(raw_body).decode("ascii")
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    if path_params:
        event["pathParameters"] = path_params
    return event


def http_response(result: Any) -> tuple[int, dict[str, str], list[str], bytes]:
    """(status, headers, set-cookie values, body) API Gateway makes of a payload-2.0 function result.

    Raises ValueError for a result API Gateway would reject (it answers 500).
    """
    try:
        json.dumps(result)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the function result is not JSON serialisable: {error}") from None
    if not (isinstance(result, dict) and "statusCode" in result):
        text = result if isinstance(result, str) else json.dumps(result)
        return 200, {"content-type": "application/json"}, [], text.encode("utf-8")
    status = result["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int | str) or not str(status).isdigit():
        raise ValueError(f"statusCode must be an integer, got {status!r}")
    headers = {str(k).lower(): scalar_text(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name).lower()] = ",".join(scalar_text(v) for v in values)
    cookies = [str(cookie) for cookie in result.get("cookies") or []]
    raw = result.get("body")
    body: bytes
    if raw is None:
        body = b""
    elif not isinstance(raw, str):
        raise ValueError("body must be a string")
    elif result.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw, validate=True)
        except binascii.Error as error:
            raise ValueError(f"isBase64Encoded body is not base64: {error}") from None
    else:
        body = raw.encode("utf-8")
    return int(status), headers, cookies, body


# ---------------------------------------------------------------------------------------------- functions


class LambdaContext:
    """What the Lambda Python runtime passes as ``context`` (memory_limit_in_mb is a string there too)."""

    def __init__(self, spec: FunctionSpec, request_id: str | None = None, *, time_limit: float | None = None) -> None:
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = str(spec.memory_mb)
        self.aws_request_id = request_id or _uuid()
        self.log_group_name = spec.log_group
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()) + secrets.token_hex(16)
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + (spec.timeout if time_limit is None else time_limit)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def log(self, message: str) -> None:
        sys.stdout.write(str(message))

    def __repr__(self) -> str:
        return f"LambdaContext(function_name={self.function_name!r}, aws_request_id={self.aws_request_id!r})"


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str  # module.path.function
    layer_dirs: list[Path]
    environment: dict[str, str]
    timeout: float
    memory_mb: int
    runtime: str
    log_group: str
    events: Mapping[str, Any] = field(default_factory=dict)


def _layer_dirs(template_dir: Path, template: Mapping[str, Any], layers: Any, function_id: str) -> list[Path]:
    resources = template.get("Resources") or {}
    found = []
    for layer in layers or []:
        logical_id = layer.get("Ref") if isinstance(layer, dict) else None
        resource = resources.get(logical_id) if isinstance(logical_id, str) else None
        if resource is None or resource.get("Type") not in ("AWS::Serverless::LayerVersion",):
            log.warning("%s: layer %r is not a local AWS::Serverless::LayerVersion; not loaded", function_id, layer)
            continue
        content = (resource.get("Properties") or {}).get("ContentUri")
        if not isinstance(content, str) or content.startswith("s3://"):
            log.warning("%s: layer %s has no local ContentUri; not loaded", function_id, logical_id)
            continue
        base = (template_dir / content).resolve()
        built = (resource.get("Metadata") or {}).get("BuildMethod")
        # A layer built by SAM goes to /opt/python; a prebuilt one carries its own python/ folder.
        found.append(base / "python" if not built and (base / "python").is_dir() else base)
    return found


class Functions:
    """The stack's functions, their handlers (imported on first use) and invocation.

    ``configurations``: logical id -> the function's configuration as Lambda reports it (moto's, for a
    stack it created: name, ARN, handler, timeout, memory, resolved environment). The code and layer
    folders come from the Globals-merged SAM ``template`` (CodeUri, Layers' ContentUri)."""

    def __init__(
        self,
        template: Mapping[str, Any],
        template_dir: str | Path,
        configurations: Mapping[str, Mapping[str, Any]],
        *,
        region: str = TemplateDefaults.region,
        account_id: str = TemplateDefaults.account_id,
        timeout_scale: float = 1.0,
    ) -> None:
        self.template = template
        self.template_dir = Path(template_dir).resolve()
        self.region = region
        self.account_id = account_id
        # Every function here shares one process and two cores with its neighbours, and one moto server:
        # a busy machine stretches wall time in ways a Lambda never sees. Tests that do not test the
        # timeout scale it up, so that its outcome never depends on the machine's load.
        self.timeout_scale = timeout_scale
        self.specs: dict[str, FunctionSpec] = {}
        self._modules: dict[tuple[Path, str], types.ModuleType] = {}
        self._lock = threading.RLock()
        self._saved_env: dict[str, str | None] = {}
        self._added_paths: list[str] = []
        self._set_aside: dict[str, types.ModuleType] | None = None
        declared = resources_of_type(template, "AWS::Serverless::Function")
        for logical_id, configuration in configurations.items():
            props = (declared.get(logical_id) or {}).get("Properties") or {}
            self.specs[logical_id] = self._spec(logical_id, props, configuration)

    def _spec(self, logical_id: str, props: Mapping[str, Any], configuration: Mapping[str, Any]) -> FunctionSpec:
        code_uri = props.get("CodeUri")
        if not isinstance(code_uri, str) or code_uri.startswith("s3://"):
            code_dir = Path("/nonexistent")
            log.warning("%s: CodeUri %r is not a local folder; it cannot be invoked", logical_id, code_uri)
        else:
            code_dir = (self.template_dir / code_uri).resolve()
        name = str(configuration["FunctionName"])
        variables = (configuration.get("Environment") or {}).get("Variables") or {}
        log_group = str((configuration.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{name}")
        return FunctionSpec(
            logical_id=logical_id,
            name=name,
            arn=str(
                configuration.get("FunctionArn") or f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"
            ),
            code_dir=code_dir,
            handler=str(configuration.get("Handler", "")),
            layer_dirs=_layer_dirs(self.template_dir, self.template, props.get("Layers"), logical_id),
            environment={str(k): scalar_text(v) for k, v in variables.items()},
            timeout=float(configuration.get("Timeout", 3)),
            memory_mb=int(configuration.get("MemorySize", 128)),
            runtime=str(configuration.get("Runtime", "")),
            log_group=log_group,
            events=props.get("Events") or {},
        )

    # ------------------------------------------------------------------ environment

    def environment(self) -> dict[str, str]:
        """Union of every function's Environment.Variables (one process runs them all)."""
        merged: dict[str, str] = {}
        owner: dict[str, str] = {}
        for logical_id, spec in self.specs.items():
            for key, value in spec.environment.items():
                if key in merged and merged[key] != value:
                    raise TemplateError(
                        f"environment variable {key} differs between {owner[key]} and {logical_id}; "
                        "they cannot share one local process"
                    )
                merged[key] = value
                owner.setdefault(key, logical_id)
        return merged

    def code_roots(self) -> list[Path]:
        """Folders of the deployed code: every function's CodeUri and layer ContentUri."""
        roots: list[Path] = []
        for spec in self.specs.values():
            for folder in [spec.code_dir, *spec.layer_dirs]:
                if folder not in roots and folder.is_dir():
                    roots.append(folder)
        return roots

    def _deployed_modules(self) -> dict[str, types.ModuleType]:
        """Modules of sys.modules loaded from the code roots (the local tooling and tests excepted)."""
        roots = [str(root) + os.sep for root in self.code_roots()]
        own = str(Path(__file__).resolve().parents[1]) + os.sep  # tools/
        found = {}
        for name, module in list(sys.modules.items()):
            if name == "tools" or name.startswith(("tools.", "tests.", "test_")) or name in ("conftest", "tests"):
                continue
            files = [getattr(module, "__file__", None), *list(getattr(module, "__path__", None) or [])]
            paths = [str(Path(f).resolve()) for f in files if isinstance(f, str)]
            if any(path.startswith(own) for path in paths):
                continue
            if any((path + os.sep).startswith(root) for path in paths for root in roots):
                found[name] = module
        return found

    def apply(self, extra: Mapping[str, str], *, isolate_modules: bool = True) -> None:
        """Set os.environ (functions' variables + ``extra``) and sys.path; ``restore`` undoes it.

        With ``isolate_modules`` the modules of the deployed code already imported (by tests, or an
        earlier stack) are set aside, so the handlers import them afresh like a new Lambda container
        (module-level caches of clients, settings and secrets start empty); ``restore`` puts them back.
        """
        values = {**self.environment(), **extra}
        with self._lock:
            if isolate_modules:
                self._set_aside = self._deployed_modules()
                for name in self._set_aside:
                    del sys.modules[name]
            for key, value in values.items():
                self._saved_env.setdefault(key, os.environ.get(key))
                os.environ[key] = value
            paths: list[str] = []
            for spec in self.specs.values():  # Lambda order: the code first, then the layers
                for folder in [spec.code_dir, *spec.layer_dirs]:
                    if str(folder) not in paths and folder.is_dir():
                        paths.append(str(folder))
            for entry in reversed(paths):
                if entry not in sys.path:
                    sys.path.insert(0, entry)
                    self._added_paths.append(entry)

    def restore(self) -> None:
        with self._lock:
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            self._saved_env.clear()
            for entry in self._added_paths:
                if entry in sys.path:
                    sys.path.remove(entry)
            self._added_paths.clear()
            if self._set_aside is not None:
                for name in self._deployed_modules():
                    sys.modules.pop(name, None)
                sys.modules.update(self._set_aside)
                self._set_aside = None
            self._modules.clear()

    # ------------------------------------------------------------------ handlers

    def spec(self, logical_id: str) -> FunctionSpec:
        if logical_id not in self.specs:
            raise KeyError(f"no function {logical_id!r} in the template")
        return self.specs[logical_id]

    def handler(self, logical_id: str) -> Callable[[Any, Any], Any]:
        spec = self.spec(logical_id)
        module_path, sep, attribute = spec.handler.rpartition(".")
        if not sep or not module_path:
            raise TemplateError(f"{logical_id}: Handler {spec.handler!r} is not module.function")
        key = (spec.code_dir, module_path)
        with self._lock:
            module = self._modules.get(key)
            if module is None:
                module = self._import(spec.code_dir, module_path)
                self._modules[key] = module
        function = getattr(module, attribute, None)
        if not callable(function):
            raise TemplateError(f"{logical_id}: {spec.handler} not found in {spec.code_dir}")
        return function

    @staticmethod
    def _import(code_dir: Path, module_path: str) -> types.ModuleType:
        relative = Path(*module_path.split("."))
        candidates = [code_dir / relative.with_suffix(".py"), code_dir / relative / "__init__.py"]
        file = next((c for c in candidates if c.is_file()), None)
        if file is None:
            raise ModuleNotFoundError(f"no module {module_path!r} in {code_dir}")
        digest = hashlib.sha256(str(file).encode()).hexdigest()[:8]
        name = "_lambda_" + re.sub(r"\W", "_", module_path) + "_" + digest
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module

    def preload(self) -> dict[str, str]:
        """Import every handler now; returns {logical id: error} for those that fail."""
        errors = {}
        for logical_id in self.specs:
            try:
                self.handler(logical_id)
            except Exception as error:
                errors[logical_id] = f"{type(error).__name__}: {error}"
        return errors

    def time_limit(self, logical_id: str) -> float:
        """Seconds an invocation may run here: the function's Timeout times ``timeout_scale``."""
        return self.spec(logical_id).timeout * self.timeout_scale

    def invoke(self, logical_id: str, event: Any, *, request_id: str | None = None) -> Any:
        """Call the function's handler like Lambda would (exceptions propagate)."""
        handler = self.handler(logical_id)
        return handler(event, LambdaContext(self.spec(logical_id), request_id, time_limit=self.time_limit(logical_id)))


# ---------------------------------------------------------------------------------------------- gateway


@dataclass
class GatewayResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: list[str] = field(default_factory=list)


def _fixed(answer: tuple[int, dict[str, str], bytes]) -> GatewayResponse:
    """One of API Gateway's own answers (a copy: the request id is added to its headers)."""
    status, headers, body = answer
    return GatewayResponse(status, dict(headers), body)


class Gateway(BackgroundServer):
    """Routes of the template served on a ThreadingHTTPServer, each route throttled by its own bucket."""

    def __init__(
        self,
        routes: list[Route],
        functions: Functions,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_ids: Mapping[str, str] | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.routes = routes
        self.buckets = {route: TokenBucket(route.throttle, clock) for route in routes if route.throttle is not None}
        self.functions = functions
        self.api_ids = dict(api_ids or {})
        self.max_body_bytes = max_body_bytes
        super().__init__(_GatewayServer((host, port), _GatewayHandler, self), "local-gateway")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def handle(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str = "127.0.0.1",
    ) -> GatewayResponse:
        """Answer one request (``target``: path with optional ?query, as received)."""
        started = time.monotonic()
        request_id = new_request_id()
        split = urllib.parse.urlsplit(target)
        path = split.path or "/"
        found = match_route(self.routes, method, path)
        if found is None:
            response = _fixed(NOT_FOUND)
            route_key = "-"
        else:
            route = found[0]
            route_key = route.route_key
            bucket = self.buckets.get(route)
            if bucket is not None and not bucket.take():  # as API Gateway: before any function runs
                response = _fixed(TOO_MANY_REQUESTS)
            else:
                response = self._invoke(route, method, path, split.query, headers, body, source_ip, request_id)
        response.headers["apigw-requestid"] = request_id
        # Access log without query string or body: the query carries the webhook token.
        log.info(
            '%s "%s" %s %d %dms',
            request_id,
            route_key,
            method,
            response.status,
            (time.monotonic() - started) * 1000,
        )
        return response

    def _invoke(
        self,
        route: Route,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
        request_id: str,
    ) -> GatewayResponse:
        port = self.port
        event = build_event(
            method,
            path,
            query,
            headers,
            body,
            route,
            source_ip=source_ip,
            request_id=request_id,
            api_id=self.api_ids.get(route.api_id, "local"),
            region=self.functions.region,
            account_id=self.functions.account_id,
            forwarded_proto="http",
            forwarded_port=port,
        )
        time_limit = self.functions.time_limit(route.function_id)
        started = time.monotonic()
        try:
            result = self.functions.invoke(route.function_id, event)
        except Exception:
            log.error("%s %s raised:\n%s", route.function_id, request_id, traceback.format_exc())
            return _fixed(INTERNAL_ERROR)
        elapsed = time.monotonic() - started
        if elapsed > time_limit:
            log.error("%s %s: Task timed out after %.2f seconds", route.function_id, request_id, time_limit)
            return _fixed(INTERNAL_ERROR)
        try:
            status, response_headers, cookies, response_body = http_response(result)
        except ValueError as error:
            log.error("%s %s: malformed Lambda proxy response: %s", route.function_id, request_id, error)
            return _fixed(INTERNAL_ERROR)
        return GatewayResponse(status, response_headers, response_body, cookies)


class _GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], gateway: Gateway) -> None:
        self.gateway = gateway
        super().__init__(address, handler)


class _GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, the body waits for the client's delayed ACK
    # (about 40 ms per request on Linux loopback; measured by bench/run.py's throughput figure).
    disable_nagle_algorithm = True
    server: _GatewayServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("gateway: " + format, *args)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _read_body(self, limit: int) -> bytes | None:
        """The body, or None (and the connection marked to close) when it is over ``limit``."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            size_total = 0
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                size_total += size
                if size_total > limit:
                    self.close_connection = True
                    return None
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            # Read (and drop) what the client is sending so it sees our answer, within reason.
            remaining = min(length, 4 * limit)
            while remaining > 0:
                block = self.rfile.read(min(65536, remaining))
                if not block:
                    break
                remaining -= len(block)
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        gateway = self.server.gateway
        body = self._read_body(gateway.max_body_bytes)
        if body is None:
            response = _fixed(TOO_LARGE)
            response.headers["apigw-requestid"] = new_request_id()
            log.info('- "-" %s 413', self.command)
        else:
            response = gateway.handle(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            self.send_header(name, value)
        for cookie in response.cookies:
            self.send_header("set-cookie", cookie)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


def epoch_ms_of(text: str) -> int:
    """Milliseconds since the epoch of an ISO-8601 UTC time (helper for deterministic events)."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) * 1000
