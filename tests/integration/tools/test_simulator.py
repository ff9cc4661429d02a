"""The AIRUDDER tenant simulator: data set, HTTP API, recordings, faults and the webhook pusher.

The pusher is checked against a tiny local HTTP receiver that can fail, stall or succeed per attempt.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airudder_ingest.sync.client import (
    AirudderApiSettings,
    AirudderClient,
    AirudderCredentials,
    clear_token_cache,
)
from tools.simulator import (
    DEFAULT_PATHS,
    AirudderSimulator,
    Dataset,
    DatasetConfig,
    Fault,
    WebhookPusher,
    call_completed_body,
    call_record,
    dialer_contact_status_body,
)
from tools.simulator.bodies import dialer_states, parse_time

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
APP_KEY, APP_SECRET = "it-key", "it-secret"
E164_ID = re.compile(r"^\+62812\d{7}$")
HTTP_TIMEOUT = 30  # bounds a hang; never decides an outcome


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


@pytest.fixture
def sim() -> Iterator[AirudderSimulator]:
    with AirudderSimulator(
        app_key=APP_KEY, app_secret=APP_SECRET, workflows=2, calls_per_workflow=12, recording_bytes=200_000
    ) as s:
        yield s


def client_for(sim: AirudderSimulator, **settings: Any) -> AirudderClient:
    return AirudderClient(
        lambda: AirudderCredentials(APP_KEY, APP_SECRET),
        AirudderApiSettings(base_url=sim.url, **settings),
        sleep=lambda _s: None,
    )


def token_for(sim: AirudderSimulator) -> str:
    answer = requests.post(
        sim.url + DEFAULT_PATHS["auth"], json={"APPKey": APP_KEY, "APPSecret": APP_SECRET}, timeout=HTTP_TIMEOUT
    ).json()
    assert answer["code"] == 200 and answer["status"] == "OK"
    return str(answer["data"]["token"])


# --- a tiny webhook receiver ------------------------------------------------------------------------------


@dataclass
class Hit:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: dict[str, Any]
    at: float

    @property
    def call_id(self) -> str:
        return str(self.body.get("call_id") or self.body["pds"]["body"]["callid"])

    @property
    def key(self) -> tuple[str, str, str]:
        """One delivery: path, call, and (for dialer pushes) the state."""
        state = self.body["pds"]["body"]["state"] if "pds" in self.body else ""
        return (self.path, self.call_id, state)


# What the receiver does with one attempt: answer with an HTTP status; "late": answer only once the
# pusher has given up waiting (it closed the connection), so "too slow" never depends on the machine's
# speed; "reset": close the connection with a TCP reset instead of answering.
Answer = int | Literal["late", "reset"]
# policy(hit, attempt number of this delivery) -> what to do
Policy = Callable[[Hit, int], Answer]
NO_BODY = (204, 304)
# Far beyond any stall of a busy machine: bounds a test that hangs, never decides an outcome.
PATIENCE = 60.0


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's default (5) overflows when many senders connect at once


class Receiver:
    """Counts per delivery the attempts it read, and every connection it accepted (one per attempt)."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy: Policy = policy or (lambda _hit, _n: 200)
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.attempts: Counter[tuple[str, str, str]] = Counter()
        self.connections = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver.connections += 1

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                split = urlsplit(self.path)
                hit = Hit(split.path, parse_qs(split.query), dict(self.headers), json.loads(raw), time.monotonic())
                with receiver.lock:
                    receiver.hits.append(hit)
                    receiver.attempts[hit.key] += 1
                    n = receiver.attempts[hit.key]
                answer = receiver.policy(hit, n)
                if answer == "reset":
                    self.close_connection = True
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    return
                if answer == "late":
                    # The pusher sends nothing more: readable means it closed the connection (timed out).
                    select.select([self.connection], [], [], PATIENCE)
                    self.close_connection = True
                    return
                assert isinstance(answer, int)
                try:
                    self.send_response(answer)
                    if answer in NO_BODY:  # no body allowed: bytes after it would poison the connection
                        self.end_headers()
                    else:
                        self.send_header("Content-Length", "2")
                        self.end_headers()
                        self.wfile.write(b"{}")
                except OSError:
                    self.close_connection = True

        self.server = _ReceiverServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- data set -------------------------------------------------------------------------------------------


def test_data_set_is_deterministic_and_well_formed() -> None:
    config = DatasetConfig(seed=42, workflows=3, calls_per_workflow=10, nodes_per_workflow=3)
    a, b = Dataset(config), Dataset(config)
    base = "http://sim"
    assert [call_record(c, base) for c in a.calls()] == [call_record(c, base) for c in b.calls()]
    other = Dataset(DatasetConfig(seed=43, workflows=3, calls_per_workflow=10, nodes_per_workflow=3))
    assert {c.call_id for c in other.calls()}.isdisjoint({c.call_id for c in a.calls()})

    calls = a.calls()
    assert len(calls) == 30 and len({c.call_id for c in calls}) == 30
    assert all(E164_ID.match(c.callee) for c in calls)
    assert {c.node_type for c in calls} == {"robot", "pds"}
    assert any(c.answered for c in calls) and any(not c.answered for c in calls)
    for c in calls:
        assert c.start_time <= c.end_time < c.update_time
        record = call_record(c, base)
        assert record["recLink"] == (f"{base}/recordings/{c.call_id}.wav" if c.answered else "")
        assert (record["talk_duration"] > 0) == c.answered
    # A case (one number) goes through each node of its workflow once.
    per_case = Counter((c.workflow_id, c.case_id) for c in calls)
    assert set(per_case.values()) <= {1, 2, 3}
    assert len({c.callee for c in calls}) == len({c.case_id for c in calls})


def test_webhook_bodies_and_pull_records_describe_the_same_call() -> None:
    ds = Dataset(DatasetConfig(seed=3, workflows=2, calls_per_workflow=8))
    base = "http://sim"
    for call in ds.calls():
        record = call_record(call, base)
        body = call_completed_body(call, base)
        assert {k: record[k] for k in body} == body  # every webhook field is in the record, same value
        dialer = dialer_contact_status_body(call, base)
        pds = dialer["pds"]["body"]
        assert (dialer["workflow_id"], dialer["nodetask_id"]) == (record["workflow_id"], record["nodetask_id"])
        assert (pds["callid"], pds["taskId"], pds["phoneNumber"]) == (call.call_id, call.task_id, call.callee)
        assert (pds["state"], pds["hangupReason"], pds["recLink"]) == (
            "HANGUP",
            record["hangupReason"],
            body["recLink"],
        )
        assert int(pds["timestamp"]) == int(call.end_time.timestamp() * 1000)
        assert parse_time(record["end_time"]) == call.end_time.replace(microsecond=0)
    states = [s for s, _ in dialer_states(ds.calls()[0])]
    assert states[0] == "CALLING" and states[-1] == "HANGUP"


def test_the_team_sample_keys_are_all_produced() -> None:
    sample = ROOT / "events" / "workflow" / "call" / "completed.json"
    if not sample.exists():
        pytest.skip("events/workflow/call/completed.json not written yet")
    call = Dataset(DatasetConfig(workflows=1, calls_per_workflow=1)).calls()[0]
    body = call_completed_body(call, "http://sim")
    expected = {k for k in json.loads(sample.read_text()) if k != "intention"}  # intention: robot-specific
    assert expected <= set(body)
    documented = ROOT.parent / "shared" / "airudder-api" / "examples" / "workflow" / "dialer_contact_status.json"
    if documented.exists():
        example = json.loads(documented.read_text())
        dialer = dialer_contact_status_body(call, "http://sim")
        assert set(dialer) == set(example) and set(dialer["pds"]["body"]) == set(example["pds"]["body"])


# --- the HTTP API ----------------------------------------------------------------------------------------


def test_auth_checks_credentials_and_token_header(sim: AirudderSimulator) -> None:
    wrong = requests.post(
        sim.url + DEFAULT_PATHS["auth"], json={"APPKey": APP_KEY, "APPSecret": "x"}, timeout=HTTP_TIMEOUT
    )
    assert wrong.status_code == 401 and wrong.json()["code"] == 10302
    token = token_for(sim)
    url = sim.url + DEFAULT_PATHS["workflow_list"]
    assert requests.get(url, headers={"Authorization": f"Token {token}"}, timeout=HTTP_TIMEOUT).json()["code"] == 200
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT).status_code == 401
    assert requests.get(url, timeout=HTTP_TIMEOUT).status_code == 401
    sim.expire_tokens()
    assert requests.get(url, headers={"Authorization": f"Token {token}"}, timeout=HTTP_TIMEOUT).status_code == 401


def test_short_token_ttl() -> None:
    now = [1000.0]  # the simulator's clock, moved by the test: expiry never depends on the machine's speed
    with AirudderSimulator(app_key=APP_KEY, app_secret=APP_SECRET, token_ttl=60, clock=lambda: now[0]) as sim:
        token = token_for(sim)
        url = sim.url + DEFAULT_PATHS["workflow_list"]
        headers = {"Authorization": f"Token {token}"}
        now[0] += 59
        assert requests.get(url, headers=headers, timeout=HTTP_TIMEOUT).status_code == 200
        now[0] += 1  # the token's 60 s are over
        assert requests.get(url, headers=headers, timeout=HTTP_TIMEOUT).status_code == 401


def test_methods_paths_and_bad_requests(sim: AirudderSimulator) -> None:
    headers = {"Authorization": f"Token {token_for(sim)}"}
    assert (
        requests.post(
            sim.url + DEFAULT_PATHS["workflow_list"], json={}, headers=headers, timeout=HTTP_TIMEOUT
        ).status_code
        == 405
    )
    assert (
        requests.get(sim.url + DEFAULT_PATHS["task_detail"], headers=headers, timeout=HTTP_TIMEOUT).status_code == 405
    )
    assert requests.get(sim.url + "/service/cloud/nothing", headers=headers, timeout=HTTP_TIMEOUT).status_code == 404
    missing = requests.post(
        sim.url + DEFAULT_PATHS["outbound_task_list"], json={}, headers=headers, timeout=HTTP_TIMEOUT
    )
    assert missing.status_code == 400
    bad_time = requests.get(
        sim.url + DEFAULT_PATHS["workflow_list"],
        params={"start_time": "yesterday"},
        headers=headers,
        timeout=HTTP_TIMEOUT,
    )
    assert bad_time.status_code == 400


def test_paging_answer_shape(sim: AirudderSimulator) -> None:
    headers = {"Authorization": f"Token {token_for(sim)}"}
    task_id = sim.dataset.workflows()[0].nodes[0].task_id
    seen: list[str] = []
    for page in (1, 2, 3):
        answer = requests.post(
            sim.url + DEFAULT_PATHS["task_detail"],
            json={"task_id": task_id, "page": page, "page_size": 4},
            headers=headers,
            timeout=HTTP_TIMEOUT,
        ).json()
        assert answer["code"] == 200 and answer["data"]["total"] == 6
        assert (answer["data"]["page"], answer["data"]["page_size"]) == (page, 4)
        seen += [r["call_id"] for r in answer["data"]["list"]]
    assert seen == sim.dataset.task(task_id).call_ids  # type: ignore[union-attr]


def test_recordings_are_streamed_wav_of_the_configured_size(sim: AirudderSimulator) -> None:
    answered = next(c for c in sim.dataset.calls() if c.answered)
    link = sim.call_record(answered)["recLink"]
    assert link.startswith(sim.url + "/recordings/")
    with requests.get(link, stream=True, timeout=HTTP_TIMEOUT) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "audio/wav"
        assert int(response.headers["Content-Length"]) == 200_000
        chunks = list(response.iter_content(chunk_size=32 * 1024))
    data = b"".join(chunks)
    assert len(chunks) > 1 and len(data) == 200_000
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE" and data[36:40] == b"data"
    assert requests.get(link, timeout=HTTP_TIMEOUT).content == data  # same bytes every time
    unanswered = next(c for c in sim.dataset.calls() if not c.answered)
    assert requests.get(f"{sim.url}/recordings/{unanswered.call_id}.wav", timeout=HTTP_TIMEOUT).status_code == 404


def test_faults_apply_in_order_then_answers_are_normal(sim: AirudderSimulator) -> None:
    headers = {"Authorization": f"Token {token_for(sim)}"}
    url = sim.url + DEFAULT_PATHS["call_info"]
    params = {"call_id": sim.dataset.calls()[0].call_id}
    sim.inject(
        "call_info",
        Fault.server_error(500, times=2),
        Fault.rate_limit(retry_after=2.5),
        Fault.slow(0.3),
        Fault.error_code(10705),
    )
    statuses = [requests.get(url, params=params, headers=headers, timeout=HTTP_TIMEOUT) for _ in range(3)]
    assert [r.status_code for r in statuses] == [500, 500, 429]
    assert statuses[2].headers["Retry-After"] == "2.5" and statuses[2].json()["code"] == 10705
    started = time.monotonic()
    slow = requests.get(url, params=params, headers=headers, timeout=HTTP_TIMEOUT)
    assert slow.status_code == 200 and time.monotonic() - started >= 0.3
    coded = requests.get(url, params=params, headers=headers, timeout=HTTP_TIMEOUT)
    assert coded.status_code == 200 and coded.json()["code"] == 10705
    assert requests.get(url, params=params, headers=headers, timeout=HTTP_TIMEOUT).json()["code"] == 200
    assert sim.faults.pending() == 0
    with pytest.raises(ValueError):
        sim.inject("no_such_endpoint", Fault.server_error())


# --- incremental windows -----------------------------------------------------------------------------------


def test_incremental_window_returns_only_changed_records(sim: AirudderSimulator) -> None:
    client = client_for(sim, page_size=5)
    everything = ("2026-01-01 00:00:00+00:00", "2030-01-01 00:00:00+00:00")
    before = {r["call_id"] for r in client.iter_call_records(*everything)}
    assert len(before) == 24

    mark = sim.dataset.latest_update + dt.timedelta(seconds=1)
    first_wf = sim.dataset.workflows()[0]
    added = sim.add_calls(5, first_wf.workflow_id)
    new_wf = sim.add_workflow(calls=4)
    touched = sim.dataset.touch_call(sorted(before)[0])
    future = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

    workflows = [w["workflow_id"] for w in client.list_workflow_tasks(mark, future)]
    assert sorted(workflows) == sorted({first_wf.workflow_id, new_wf.workflow_id, touched.workflow_id})
    changed = [r["call_id"] for r in client.iter_call_records(mark, future)]
    expected = {c.call_id for c in added} | {cid for n in new_wf.nodes for cid in n.call_ids} | {touched.call_id}
    assert len(changed) == len(set(changed)) and set(changed) == expected
    # The window is [start, end): the old window returns the old calls, but not the touched one, whose
    # update_time moved past it; nor the new workflow.
    old = [r["call_id"] for r in client.iter_call_records(everything[0], mark)]
    assert len(old) == len(set(old)) and set(old) == before - {touched.call_id}
    assert new_wf.workflow_id not in {w["workflow_id"] for w in client.list_workflow_tasks(everything[0], mark)}
    # Each record's update_time lies in the window it was returned for.
    for r in client.iter_call_records(mark, future):
        updated = parse_time(r["update_time"])
        assert updated is not None and updated >= mark.replace(microsecond=0)


# --- the webhook pusher --------------------------------------------------------------------------------------


def test_pusher_delivers_each_webhook_once_with_token_and_headers(sim: AirudderSimulator) -> None:
    calls = sim.dataset.calls()
    with Receiver() as receiver:
        report = sim.push_webhooks(receiver.url, token="t+k/n=", concurrency=6, retry_delay=0.05)
    pds_calls = [c for c in calls if c.node_type == "pds"]
    assert report.planned == report.delivered == report.attempts == len(calls) + len(pds_calls)
    assert (report.retried, report.dropped, report.skipped) == (0, 0, 0)
    assert report.delivered_call_ids == {c.call_id for c in calls}
    assert receiver.connections == report.attempts  # one connection per attempt
    paths = Counter(h.path for h in receiver.hits)
    assert paths == {"/webhooks/workflow/call": len(calls), "/webhooks/workflow/dialer": len(pds_calls)}
    for hit in receiver.hits:
        assert hit.query == {"token": ["t+k/n="]}
        assert hit.headers["User-Agent"] == "Airudder" and hit.headers["Content-Type"] == "application/json"
    # What was pushed is what the pull API says about the same call.
    by_id = {c.call_id: c for c in calls}
    for hit in receiver.hits:
        if hit.path.endswith("/call"):
            record = sim.call_record(by_id[hit.call_id])
            assert {k: record[k] for k in hit.body} == hit.body
    assert json.dumps(report.summary())  # counts only, printable


def test_pusher_retry_rule_retries_failed_and_slow_deliveries(sim: AirudderSimulator) -> None:
    calls = sim.dataset.calls()[:6]

    def policy(hit: Hit, attempt: int) -> Answer:
        if attempt == 1:
            return 503
        if attempt == 2:
            return "late"  # answered only after the pusher gave up: counts as failed
        return 200

    # The timeout is generous, so that prompt answers are in time even on a busy machine; the late
    # answer waits for the pusher to give up, so it is too late whatever the timeout. One sender per
    # call: the six timeouts run out together.
    with Receiver(policy) as receiver:
        report = sim.push_webhooks(
            receiver.url, calls=calls, kinds=["call"], retry_delay=0.05, timeout=5.0, concurrency=6
        )
    assert report.delivered == 6 and report.dropped == 0
    assert report.attempts == 18 and report.retried == 12
    assert report.outcomes == {"503": 6, "timeout": 6, "200": 6}
    assert set(receiver.attempts.values()) == {3} and receiver.connections == 18
    # Retries wait retry_delay after the failed attempt.
    times: dict[str, list[float]] = defaultdict(list)
    for hit in receiver.hits:
        times[hit.call_id].append(hit.at)
    for stamps in times.values():
        assert stamps[1] - stamps[0] >= 0.05


def test_pusher_gives_up_after_five_tries(sim: AirudderSimulator) -> None:
    calls = sim.dataset.calls()[:8]
    doomed = {calls[1].call_id, calls[4].call_id}

    def policy(hit: Hit, attempt: int) -> Answer:
        if hit.call_id in doomed:
            return 500
        return 502 if attempt == 1 else 204

    with Receiver(policy) as receiver:
        report = sim.push_webhooks(receiver.url, calls=calls, kinds=["call"], retry_delay=0.02, concurrency=4)
    assert report.dropped == 2 and report.dropped_call_ids == doomed
    assert report.delivered == 6 and report.delivered_call_ids == {c.call_id for c in calls} - doomed
    assert report.attempts == 2 * 5 + 6 * 2 and report.retried == 2 * 4 + 6
    for key, n in receiver.attempts.items():
        assert n == (5 if key[1] in doomed else 2)
    assert receiver.connections == report.attempts


def test_pusher_counts_a_reset_or_refused_connection_as_an_attempt(sim: AirudderSimulator) -> None:
    # An attempt is a POST the pusher started: a reset ends it like a 5xx does, and it is one of the five.
    calls = sim.dataset.calls()[:4]
    with Receiver(lambda _hit, attempt: "reset" if attempt <= 2 else 200) as receiver:
        report = sim.push_webhooks(receiver.url, calls=calls, kinds=["call"], retry_delay=0.01, concurrency=2)
    assert report.delivered == 4 and report.dropped == 0
    assert report.outcomes == {"error": 8, "200": 4} and report.attempts == 12 and report.retried == 8
    assert set(receiver.attempts.values()) == {3} and receiver.connections == 12

    # A port that is bound but not listening refuses every connection: five attempts, then dropped.
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed_port.getsockname()[1]}"
        refused = sim.push_webhooks(url, calls=calls[:1], kinds=["call"], retry_delay=0.01)
    assert (refused.attempts, refused.retried, refused.dropped, refused.delivered) == (5, 4, 1, 0)
    assert refused.outcomes == {"error": 5}


def test_pusher_drops_on_purpose(sim: AirudderSimulator) -> None:
    calls = sim.dataset.calls()
    with Receiver() as receiver:
        every = sim.push_webhooks(receiver.url, kinds=["call"], drop_every=4, retry_delay=0.01)
    assert (every.planned, every.skipped, every.delivered) == (24, 6, 18)
    assert len(receiver.hits) == 18
    assert every.skipped_call_ids.isdisjoint(every.delivered_call_ids)
    assert every.skipped_call_ids | every.delivered_call_ids == {c.call_id for c in calls}
    assert {h.call_id for h in receiver.hits} == every.delivered_call_ids

    def fraction(seed: int) -> set[str]:
        with Receiver() as r:
            rep = sim.push_webhooks(r.url, kinds=["call"], drop_fraction=0.5, drop_seed=seed, retry_delay=0.01)
        assert rep.skipped + rep.delivered == 24 and len(r.hits) == rep.delivered
        return rep.skipped_call_ids

    assert fraction(7) == fraction(7)
    assert 4 <= len(fraction(7)) <= 20
    assert fraction(7) != fraction(8)

    # drop_scope="call": a dropped call loses all of its deliveries (completion and dialer pushes).
    with Receiver() as receiver:
        scoped = sim.push_webhooks(receiver.url, drop_every=3, drop_scope="call", dialer_progress=True)
    assert len(scoped.skipped_call_ids) == 24 // 3
    assert scoped.skipped_call_ids.isdisjoint({h.call_id for h in receiver.hits})
    assert scoped.delivered_call_ids == {c.call_id for c in calls} - scoped.skipped_call_ids


def test_pusher_dialer_progress_sends_every_state(sim: AirudderSimulator) -> None:
    pds = [c for c in sim.dataset.calls() if c.node_type == "pds"][:4]
    with Receiver() as receiver:
        report = sim.push_webhooks(receiver.url, calls=pds, kinds=["dialer"], dialer_progress=True, concurrency=1)
    expected = sum(len(dialer_states(c)) for c in pds)
    assert report.delivered == expected == len(receiver.hits)
    for call in pds:
        states = [h.body["pds"]["body"]["state"] for h in receiver.hits if h.call_id == call.call_id]
        assert states == [s for s, _ in dialer_states(call)]  # one sender thread: in order


def test_pusher_validates_its_options() -> None:
    with pytest.raises(ValueError):
        WebhookPusher("http://x", recording_base_url="http://sim", kinds=["sms"])
    with pytest.raises(ValueError):
        WebhookPusher("http://x", recording_base_url="http://sim", drop_scope="case")


# --- command line -------------------------------------------------------------------------------------------


def test_command_line_help_and_push() -> None:
    help_out = subprocess.run(
        [sys.executable, "-m", "tools.simulator", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert help_out.returncode == 0 and "push" in help_out.stdout and "serve" in help_out.stdout
    with Receiver(lambda _h, n: 500 if n == 1 else 200) as receiver:
        out = subprocess.run(
            [
                sys.executable, "-m", "tools.simulator", "push", "--target", receiver.url, "--token", "secret-token",
                "--workflows", "1", "--calls-per-workflow", "4", "--kinds", "call",
                "--retry-delay", "0.01", "--drop-every", "4",
            ],
            cwd=ROOT, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert (summary["calls"], summary["delivered"], summary["skipped"], summary["retried"]) == (4, 3, 1, 3)
    assert "secret-token" not in out.stdout + out.stderr and "+62812" not in out.stdout + out.stderr
