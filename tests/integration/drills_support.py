"""Helpers of the failure drills (test_drills.py): drill sizes, the killed-handler child process, the
hostile-request generators, and the hostile-value generators (issue 11: values past every limit, on every
route and in the sync's pulled records).

Child process (run by the kill drill):

    python -m tests.integration.drills_support kill --event E.json --stop-after event|state --marker M

imports the deployed handler (functions/webhook/app.py, the layer on sys.path) in a fresh process, lets
the webhook edge run up to the named point (event: the event item, with its envelope, written; state: the
entity state written), writes the marker file and waits there to be SIGKILLed by the test.

    python -m tests.integration.drills_support kill-archiver --event BATCH.json --marker M

does the same with the archiver (functions/archiver/app.py) and a stream batch: it stops right after the
batch's first archive object is written (the others never are).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tools.simulator.bodies import RawJson, dump_json

REPO_ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("DRILLS", "").lower() == "full"


@dataclass(frozen=True)
class Sizes:
    outage_webhooks: int
    retry_delay: float
    hostile_in_process: int
    hostile_http: int
    duplicate_bodies: int
    hostile_values_in_process: int
    hostile_values_http: int
    hostile_sync_runs: int  # each: a tenant of HOSTILE_SYNC_CALLS hostile records, synced twice
    duplicate_senders: int = 50
    archiver_kill_deliveries: int = 40  # the archiver drill: deliveries over every type, one killed batch


# `make test` runs the quick sizes; `make drills` (DRILLS=full) the full ones.
SIZES = (
    Sizes(outage_webhooks=2000, retry_delay=2.0, hostile_in_process=10_000, hostile_http=300,
          duplicate_bodies=20, hostile_values_in_process=2_000, hostile_values_http=200, hostile_sync_runs=30,
          archiver_kill_deliveries=1_000)
    if FULL
    else Sizes(outage_webhooks=120, retry_delay=1.0, hostile_in_process=200, hostile_http=30,
               duplicate_bodies=2, hostile_values_in_process=100, hostile_values_http=15, hostile_sync_runs=3)
)  # fmt: skip


# ---------------------------------------------------------------------------------------------- kill drill

STOP_POINTS = ("event", "state")


def run_until_killed(event_file: str, stop_after: str, marker: str) -> None:
    sys.path[:0] = [str(REPO_ROOT / "functions" / "webhook"), str(REPO_ROOT / "layers" / "ingest")]
    import app

    store = app.edge.recorder.store
    target, name = {"event": (store, "put_event"), "state": (store, "apply_state")}[stop_after]
    original = getattr(target, name)

    def then_stop(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        Path(marker).write_text(stop_after)
        time.sleep(300)  # SIGKILLed here by the test: the process never gets further
        return result

    setattr(target, name, then_stop)
    app.lambda_handler(json.loads(Path(event_file).read_text()), _Context())


def run_archiver_until_killed(event_file: str, marker: str) -> None:
    sys.path[:0] = [str(REPO_ROOT / "functions" / "archiver"), str(REPO_ROOT / "layers" / "ingest")]
    import app

    s3 = app.archiver.s3
    original = s3.put_object

    def then_stop(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        Path(marker).write_text(str(kwargs.get("Key")))
        time.sleep(300)  # SIGKILLed here by the test: the batch's other objects are never written
        return result

    s3.put_object = then_stop
    app.lambda_handler(json.loads(Path(event_file).read_text()), _Context())


class _Context:
    function_name = "drill"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:drill"
    memory_limit_in_mb = "256"
    aws_request_id = str(uuid.uuid4())
    log_group_name = "/aws/lambda/drill"
    log_stream_name = "drill"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


# ---------------------------------------------------------------------------------------------- hostile requests

TOKEN_CHOICES = ("query", "header", "both", "missing", "wrong", "wrong-query-right-header", "hostile")
BODY_KINDS = (
    "sample",
    "sample-base64",
    "random-json",
    "not-json",
    "invalid-utf8",
    "lone-surrogate",
    "deep-json",
    "huge",
    "empty",
    "bad-base64",
    "bom-sample",
    "big-number",
    "binary",
)


@dataclass
class HostileCase:
    """One hostile request and what it must be answered."""

    route_key: str
    raw_path: str
    path_params: dict[str, str]
    headers: dict[str, str]
    query: dict[str, str]
    body: str
    is_base64: bool
    body_kind: str
    authenticated: bool
    routed: bool  # a model exists for the route (else 404 once authenticated)
    body_bytes: int
    raw: bytes = b""
    expected: frozenset[int] = field(default_factory=frozenset)

    def event(self) -> dict[str, Any]:
        raw_query = "&".join(f"{k}={v}" for k, v in self.query.items())
        return {
            "version": "2.0",
            "routeKey": self.route_key,
            "rawPath": self.raw_path,
            "rawQueryString": raw_query,
            "headers": self.headers,
            "queryStringParameters": self.query or None,
            "pathParameters": self.path_params or None,
            "requestContext": {
                "http": {"method": "POST", "path": self.raw_path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7"},
                "requestId": uuid.uuid4().hex,
                "routeKey": self.route_key,
                "stage": "$default",
                "timeEpoch": int(time.time() * 1000),
            },
            "body": self.body,
            "isBase64Encoded": self.is_base64,
        }


def _samples() -> dict[str, list[bytes]]:
    """Sample bodies of events/, by the route path they are posted to."""
    found: dict[str, list[bytes]] = {}
    for file in sorted((REPO_ROOT / "events").rglob("*.json")):
        relative = file.relative_to(REPO_ROOT / "events")
        if relative.parts[0] == "apigw" or len(relative.parts) < 2:
            continue
        found.setdefault("/webhooks/" + "/".join(relative.parent.parts), []).append(file.read_bytes())
    return found


SAMPLES = _samples()
# (route as in the template, raw path, path parameters, has a model)
ROUTE_CHOICES: list[tuple[str, str, dict[str, str], bool]] = [
    ("/webhooks/workflow/dialer", "/webhooks/workflow/dialer", {}, True),
    ("/webhooks/workflow/call", "/webhooks/workflow/call", {}, True),
    ("/webhooks/workflow/status-changed", "/webhooks/workflow/status-changed", {}, True),
    ("/webhooks/chatbot/session-ended", "/webhooks/chatbot/session-ended", {}, True),
    ("/webhooks/leadgen/call", "/webhooks/leadgen/call", {}, True),
    ("/webhooks/{product}/call", "/webhooks/collection/call", {"product": "collection"}, True),
    ("/webhooks/{product}/plan", "/webhooks/telemarketing/plan", {"product": "telemarketing"}, True),
    ("/webhooks/{product}/task", "/webhooks/evil/task", {"product": "evil"}, False),
    ("/webhooks/{product}/call", "/webhooks/%2e%2e/call", {"product": ".."}, False),
    ("/webhooks/{proxy+}", "/webhooks/some/new/callback", {"proxy": "some/new/callback"}, True),
    ("/webhooks/{proxy+}", "/webhooks/%00/..%2f/x", {"proxy": "\x00/../x"}, True),
]

HTTP_FRAMING_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "host", "connection", "expect", "te", "trailer", "upgrade", "keep-alive"}
)
hostile_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),  # surrogates: not encodable
    max_size=64,
)
header_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_0123456789", min_size=1, max_size=24)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(hostile_text, inner, max_size=5),
    max_leaves=20,
)


@st.composite
def hostile_cases(draw: st.DrawFn, token: str, max_body_bytes: int, *, http: bool = False) -> HostileCase:
    route, raw_path, params, routed = draw(st.sampled_from(ROUTE_CHOICES))
    headers: dict[str, str] = draw(st.dictionaries(header_name, hostile_text, max_size=4))
    if http:  # what an HTTP client can send: latin-1 values without line breaks, no framing headers
        headers = {
            k: "".join(c for c in v if c.isprintable() and ord(c) < 256).strip()
            for k, v in headers.items()
            if k not in HTTP_FRAMING_HEADERS
        }
    query: dict[str, str] = draw(st.dictionaries(header_name.filter(lambda k: k != "token"), hostile_text, max_size=3))
    headers.pop("x-webhook-token", None)
    choice = draw(st.sampled_from(TOKEN_CHOICES))
    wrong = draw(st.sampled_from([token + "x", token.upper(), token[:-1], "", " ", token + "\x00", "a" * 4096]))
    if choice in ("query", "both"):
        query["token"] = token
    if choice in ("header", "both", "wrong-query-right-header"):
        headers["x-webhook-token"] = token
    if choice in ("wrong", "wrong-query-right-header"):
        query["token"] = wrong if wrong.strip() else "nope"
    if choice == "hostile":
        query["token"] = draw(hostile_text.filter(lambda t: t != token))
    presented = query.get("token") or headers.get("x-webhook-token")
    authenticated = presented == token
    if draw(st.booleans()):
        headers["content-type"] = draw(st.sampled_from(["application/json", "text/plain", "", "x/\x7f", "a" * 300]))
    if draw(st.integers(0, 9)) == 0:
        headers["x-long-" + draw(header_name)] = "v" * draw(st.sampled_from([1024, 8192]))

    kind = draw(st.sampled_from(BODY_KINDS))
    samples = SAMPLES.get(route) or SAMPLES.get(raw_path) or SAMPLES["/webhooks/workflow/dialer"]
    sample = draw(st.sampled_from(samples))
    raw: bytes
    text_body: str | None = None
    is_base64 = False
    if kind == "sample":
        value = json.loads(sample)
        if isinstance(value, dict):  # a distinct but still valid delivery
            value["drill_nonce"] = draw(st.integers(0, 10**12))
        raw = json.dumps(value).encode()
    elif kind == "sample-base64":
        raw, is_base64 = sample, True
    elif kind == "random-json":
        raw = json.dumps(draw(json_values)).encode()
    elif kind == "not-json":
        raw = draw(st.sampled_from([b"{", b"nope", b"{'a': 1}", b"[1,]", b"\x00", b'{"a":NaN', b"<xml/>", b"}{"]))
    elif kind == "invalid-utf8":
        raw, is_base64 = b'{"callid": "\xff\xfe\xc3("}', True
    elif kind == "lone-surrogate":
        text_body = '{"callid": "\ud800"}'  # unpaired surrogate in the event's JSON string
        raw = text_body.encode("utf-8", "surrogatepass")
    elif kind == "deep-json":
        depth = draw(st.sampled_from([50, 500, 990, 1_000, 3_000, 100_000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        raw = (opener * depth + "1" + closer * depth).encode()
    elif kind == "huge":
        size = max_body_bytes + draw(st.sampled_from([1, 1000, 100_000]))
        raw = (b'{"pad":"' + b"x" * size + b'"}') if draw(st.booleans()) else b"[" + b"1," * (size // 2) + b"1]"
    elif kind == "empty":
        raw = b""
    elif kind == "bad-base64":
        text_body, is_base64 = draw(st.sampled_from(["abc", "!!!!", "eyJhIjox", "=", "a===b"])), True
        raw = text_body.encode()
    elif kind == "bom-sample":
        raw = b"\xef\xbb\xbf" + sample
    elif kind == "big-number":
        raw = b'{"callid": ' + b"9" * draw(st.sampled_from([100, 5000, 50_000])) + b"}"
    else:  # binary
        raw, is_base64 = draw(st.binary(min_size=1, max_size=256)), True
    if http:
        text_body = None
    if text_body is None:
        text_body = base64.b64encode(raw).decode() if is_base64 else raw.decode("utf-8", "surrogateescape")
    case = HostileCase(
        route_key=f"POST {route}",
        raw_path=raw_path,
        path_params=params,
        headers=headers,
        query=query,
        body=text_body,
        is_base64=is_base64,
        body_kind=kind,
        authenticated=authenticated,
        routed=routed,
        body_bytes=len(raw),
        raw=raw,
        expected=frozenset(),
    )
    case.expected = expected_statuses(case, max_body_bytes)
    return case


def expected_statuses(case: HostileCase, max_body_bytes: int) -> frozenset[int]:
    """What the pipeline must answer: 401 before anything, then 404 (no model), 413 (size), 400 or 200."""
    if not case.authenticated:
        return frozenset({401})
    if not case.routed:
        return frozenset({404})
    if case.body_bytes > max_body_bytes:
        return frozenset({413})
    if case.body_kind in ("sample", "sample-base64", "bom-sample"):
        return frozenset({200})
    if case.body_kind in ("random-json", "big-number", "deep-json", "binary"):
        return frozenset({200, 400})  # JSON or not, valid or not for the route's model (the catch-all takes any JSON)
    return frozenset({400})


# ---------------------------------------------------------------------------------------------- hostile values

# JSON literals past what the code and the store can hold. Numbers: past float (1e400 parses to infinity)
# and int limits, NaN and Infinity, past DynamoDB's 38 digits and 1e-130..1e126.
HOSTILE_NUMBERS = (
    "1e400", "-1e400", "1e308", "1.7976931348623157e308", "5e-324", "1e-400", "1e300", "-1e17", "Infinity",
    "-Infinity", "NaN", str(2**53 + 1), str(2**63), str(2**64), str(-(2**63) - 1), "9" * 23, "9" * 400,
    "-" + "9" * 400, "1e126", "1e-131", "1" * 39, "0.1234567890123456789012345678901234567890", "-0", "0",
)  # fmt: skip
# Times in every form to_utc accepts, at and past the years 1 and 9999 once moved to UTC.
_TIME_TEXTS = (
    "0001-01-01T00:00:00+01:00", "0001-01-01 00:59:59+01:00", "0001-01-01T00:00:00Z", "0001-01-01 00:00:00",
    "9999-12-31T23:59:59-01:00", "9999-12-31 23:59:59-00:01", "9999-12-31T23:59:59.999999Z",
    "9999-12-31 23:59:59", "10000-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "2024-02-30T00:00:00Z",
    "253402300799", "253402300800", "253402300800000", "253402300799999", "99999999999", "1e400",
    "-62135596800", "12345678901234567890123", "9" * 400, "1.5e10", "",
)  # fmt: skip
_TIME_NUMBERS = ("253402300799", "253402300800", "253402300800000", "-62135596800", "-62135596801", "99999999999.999")
HOSTILE_TIMES = (*(json.dumps(t) for t in _TIME_TEXTS), *_TIME_NUMBERS)
# Ids and fields past DynamoDB's limits: a sort key holds 1,024 bytes, a partition key 2,048, an item 400 KB.
_ID_LENGTHS = (1_019, 1_020, 1_024, 1_025, 2_043, 2_048, 2_049, 3_000, 20_000)
LONG_IDS = (*(json.dumps("c" * n) for n in _ID_LENGTHS), json.dumps("é" * 1_100), json.dumps("\U0001f600" * 600))
HUGE_FIELDS = (json.dumps("x" * 450_000), json.dumps("é" * 210_000))
# Keys worth aiming at: ids, times, states, phone numbers, links.
_AIMED = re.compile(r"id$|_id|Id|time|date|stamp|state|status|phone|callee|number|reason|link|url|rec", re.I)

hostile_strings = st.text(
    alphabet=st.characters(categories=["Cs", "Cc", "Cf", "Co", "Zl", "So"]), min_size=1, max_size=12
).map(json.dumps)  # lone surrogates and control characters, as JSON escapes
hostile_literals = st.one_of(
    st.sampled_from(HOSTILE_NUMBERS),
    st.sampled_from(HOSTILE_NUMBERS).map(json.dumps),  # the same numbers sent as text
    st.sampled_from(HOSTILE_TIMES),
    st.integers(min_value=-(10**420), max_value=10**420).map(str),
    st.floats().map(json.dumps),  # NaN and Infinity included
    hostile_strings,
    st.sampled_from(LONG_IDS),
)


@st.composite
def hostile_literal(draw: st.DrawFn, *, huge: bool = True) -> str:
    """One hostile JSON literal; now and then a field past the item limit (when `huge`)."""
    if huge and draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from(HUGE_FIELDS))
    return draw(hostile_literals)


def _slots(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str | None]]:
    """Every place a value sits in `value` (its path, and its key when in an object)."""
    found: list[tuple[tuple[Any, ...], str | None]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        found.append(((*path, key), key if isinstance(key, str) else None))
        found += _slots(inner, (*path, key))
    return found


@st.composite
def spoiled(draw: st.DrawFn, value: dict[str, Any], *, huge: bool = True) -> tuple[dict[str, Any], list[str]]:
    """`value` with one to three of its values (ids, times and states most often) replaced by hostile
    literals, and now and then one more key; with what was put where (for failure messages)."""
    value = json.loads(json.dumps(value))
    slots = _slots(value)
    aimed = [s for s in slots if s[1] and _AIMED.search(s[1])]
    where: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        pool = aimed if aimed and draw(st.integers(0, 9)) < 7 else slots
        if not pool:
            break
        path, _key = draw(st.sampled_from(pool))
        literal = draw(hostile_literal(huge=huge))
        try:
            parent: Any = value
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = RawJson(literal)
        except (KeyError, IndexError, TypeError):  # inside a value replaced already
            continue
        where.append(f"{'.'.join(map(str, path))}={literal[:40]}")
    if draw(st.booleans()):
        literal = draw(hostile_literal(huge=huge))
        value["drill_extra"] = RawJson(literal)
        where.append(f"drill_extra={literal[:40]}")
    return value, where


@st.composite
def hostile_value_cases(draw: st.DrawFn, token: str, max_body_bytes: int) -> HostileCase:
    """An authenticated delivery to a modelled route: a sample with hostile values in it."""
    route, raw_path, params, _routed = draw(st.sampled_from([r for r in ROUTE_CHOICES if r[3]]))
    samples = SAMPLES.get(route) or SAMPLES.get(raw_path) or SAMPLES["/webhooks/workflow/dialer"]
    sample = json.loads(draw(st.sampled_from(samples)))
    value, where = draw(spoiled(sample))
    raw = dump_json(value)
    case = HostileCase(
        route_key=f"POST {route}",
        raw_path=raw_path,
        path_params=params,
        headers={"content-type": "application/json"},
        query={"token": token},
        body=raw.decode(),
        is_base64=False,
        body_kind="hostile-values: " + ", ".join(where),
        authenticated=True,
        routed=True,
        body_bytes=len(raw),
        raw=raw,
    )
    # Stored (what does not fit left out of the item), or quarantined with the reason; 413 over the size.
    case.expected = frozenset({413}) if len(raw) > max_body_bytes else frozenset({200, 400})
    return case


HOSTILE_SYNC_CALLS = 10


def record_changes(record_keys: list[str]) -> st.SearchStrategy[dict[str, RawJson]]:
    """Hostile changes to a pulled call record: one to three of its keys (or a new one) set to hostile
    literals (no field past the item limit: a page of them would take moto minutes)."""
    return st.dictionaries(
        st.sampled_from([*record_keys, "drill_extra"]), hostile_literal(huge=False).map(RawJson), min_size=1, max_size=3
    )


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# ---------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description="drill helper: run the deployed handler until killed")
    sub = parser.add_subparsers(dest="command", required=True)
    kill = sub.add_parser("kill")
    kill.add_argument("--event", required=True)
    kill.add_argument("--stop-after", choices=STOP_POINTS, required=True)
    kill.add_argument("--marker", required=True)
    kill_archiver = sub.add_parser("kill-archiver")
    kill_archiver.add_argument("--event", required=True)
    kill_archiver.add_argument("--marker", required=True)
    args = parser.parse_args()
    if args.command == "kill-archiver":
        run_archiver_until_killed(args.event, args.marker)
    else:
        run_until_killed(args.event, args.stop_after, args.marker)
    return 3  # reached only if nothing stopped: the test treats it as a failure


if __name__ == "__main__":
    raise SystemExit(main())
