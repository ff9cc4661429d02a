"""The AIRUDDER pull-API client against the tenant simulator, over real local HTTP."""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from airudder_ingest.sync.client import (
    ASSUMPTIONS,
    AirudderApiError,
    AirudderApiSettings,
    AirudderClient,
    AirudderCredentials,
    PageScheme,
    RequestCounter,
    clear_token_cache,
    format_api_time,
)
from tools.simulator import DEFAULT_PATHS, METHODS, AirudderSimulator, Fault

APP_KEY = "unit-app-key"
APP_SECRET = "unit-app-secret-do-not-log"
WINDOW = ("2026-01-01 00:00:00+00:00", "2027-01-01 00:00:00+00:00")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """A client wired to a simulator, with recorded sleeps and a fake clock."""

    def __init__(self, sim: AirudderSimulator, **settings: Any) -> None:
        self.sim = sim
        self.sleeps: list[float] = []
        self.clock = FakeClock()
        self.provider_calls = 0
        self.settings = AirudderApiSettings(base_url=sim.url, **settings)

    def credentials(self) -> AirudderCredentials:
        self.provider_calls += 1
        return AirudderCredentials(APP_KEY, APP_SECRET)

    def client(self, counter: RequestCounter | None = None) -> AirudderClient:
        return AirudderClient(
            self.credentials,
            self.settings,
            counter=counter,
            sleep=self.sleeps.append,
            clock=self.clock,
            rng=random.Random(7),
        )


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


@pytest.fixture
def sim() -> Iterator[AirudderSimulator]:
    with AirudderSimulator(app_key=APP_KEY, app_secret=APP_SECRET, workflows=3, calls_per_workflow=20) as s:
        yield s


@pytest.fixture
def harness(sim: AirudderSimulator) -> Harness:
    return Harness(sim)


def first_task_id(sim: AirudderSimulator) -> str:
    return sim.dataset.workflows()[0].nodes[0].task_id


# --- settings and assumptions ---------------------------------------------------------------------------


def test_defaults_match_the_reference_and_the_simulator() -> None:
    s = AirudderApiSettings()
    assert s.base_url == "https://api.airudder.com"
    assert s.auth_path == "/service/cloud/auth"
    assert s.task_detail_path == "/service/cloud/workflow/taskdetail"
    assert s.token_lifetime == 86_400 - 3_600
    client_paths = {
        "auth": s.auth_path,
        "workflow_list": s.workflow_list_path,
        "subtask_list": s.subtask_list_path,
        "outbound_task_list": s.outbound_task_list_path,
        "task_detail": s.task_detail_path,
        "call_info": s.call_info_path,
    }
    assert client_paths == DEFAULT_PATHS
    # Every undocumented path is listed as an assumption README can quote.
    for name in ("workflow_list", "subtask_list", "outbound_task_list", "call_info"):
        assert any(client_paths[name] in line for line in ASSUMPTIONS), name
    assert METHODS["workflow_list"] == METHODS["subtask_list"] == METHODS["call_info"] == "GET"
    assert METHODS["outbound_task_list"] == METHODS["task_detail"] == METHODS["auth"] == "POST"


def test_settings_from_env() -> None:
    s = AirudderApiSettings.from_env(
        {
            "AIRUDDER_API_BASE_URL": "http://127.0.0.1:9",
            "AIRUDDER_CALL_INFO_PATH": "/x/callinfo",
            "AIRUDDER_PAGE_SIZE": "25",
            "AIRUDDER_MAX_RETRIES": "2",
            "AIRUDDER_TOKEN_ERROR_CODES": "401, 10811",
            "AIRUDDER_TOKEN_SAFETY_MARGIN_SECONDS": "600",
            "UNRELATED": "ignored",
        }
    )
    assert (s.base_url, s.call_info_path, s.page_size, s.max_retries) == ("http://127.0.0.1:9", "/x/callinfo", 25, 2)
    assert s.token_error_codes == (401, 10811)
    assert s.token_lifetime == 86_400 - 600
    with pytest.raises(ValueError):
        AirudderApiSettings.from_env({"AIRUDDER_PAGE_SIZE": "0"})


def test_format_api_time() -> None:
    import datetime as dt

    utc = dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.UTC)
    assert format_api_time(utc) == "2026-11-01 08:00:00+08:00"
    assert format_api_time(utc, "+00:00") == "2026-11-01 00:00:00+00:00"
    assert format_api_time(dt.datetime(2026, 11, 1), "-03:30") == "2026-10-31 20:30:00-03:30"
    assert format_api_time(0, "+00:00") == "1970-01-01 00:00:00+00:00"
    assert format_api_time("as given") == "as given"


def test_credentials_repr_hides_secrets() -> None:
    assert APP_SECRET not in repr(AirudderCredentials(APP_KEY, APP_SECRET))
    assert APP_KEY not in repr(AirudderCredentials(APP_KEY, APP_SECRET))


# --- token --------------------------------------------------------------------------------------------------


def test_auth_once_and_token_reused_across_calls_and_clients(harness: Harness, sim: AirudderSimulator) -> None:
    client = harness.client()
    assert len(list(client.list_workflow_tasks(*WINDOW))) == 3
    assert len(list(client.task_details(first_task_id(sim)))) == 10
    # A second client (the next invocation of a warm Lambda) finds the token in the module cache.
    again = harness.client()
    assert again.call_info(sim.dataset.calls()[0].call_id)["call_id"] == sim.dataset.calls()[0].call_id
    assert sim.request_count("auth") == 1
    assert sim.request_count(status=401) == 0


def test_token_is_sent_as_token_not_bearer(harness: Harness, sim: AirudderSimulator) -> None:
    token = harness.client().token()
    url = sim.url + DEFAULT_PATHS["call_info"]
    call_id = sim.dataset.calls()[0].call_id
    ok = requests.get(url, params={"call_id": call_id}, headers={"Authorization": f"Token {token}"}, timeout=5)
    bearer = requests.get(url, params={"call_id": call_id}, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert (ok.status_code, ok.json()["code"]) == (200, 200)
    assert bearer.status_code == 401


def test_token_renewed_before_it_expires(harness: Harness, sim: AirudderSimulator) -> None:
    client = harness.client()
    call_id = sim.dataset.calls()[0].call_id
    client.call_info(call_id)
    harness.clock.now += harness.settings.token_lifetime - 1
    client.call_info(call_id)
    assert sim.request_count("auth") == 1
    harness.clock.now += 2  # past 24 h minus the safety margin: renewed up front, no 401 needed
    client.call_info(call_id)
    assert sim.request_count("auth") == 2
    assert sim.request_count(status=401) == 0
    assert client.counter.renewals == 0


def test_token_expiring_mid_run_is_renewed_exactly_once(sim: AirudderSimulator) -> None:
    harness = Harness(sim, page_size=3)
    client = harness.client()
    task_id = first_task_id(sim)
    records = client.task_details(task_id)
    seen = [next(records) for _ in range(3)]  # the first page
    sim.expire_tokens()  # AIRUDDER drops the token while we page
    seen += list(records)
    ids = [r["call_id"] for r in seen]
    assert len(ids) == len(set(ids)) == 10
    assert set(ids) == set(sim.dataset.task(task_id).call_ids)  # type: ignore[union-attr]
    assert sim.request_count("task_detail", 401) == 1
    assert sim.request_count("auth") == 2
    assert client.counter.renewals == 1
    assert harness.sleeps == []


def test_expired_token_fault_is_renewed_once(harness: Harness, sim: AirudderSimulator) -> None:
    client = harness.client()
    client.token()
    sim.inject("call_info", Fault.expire_tokens())
    call = sim.dataset.calls()[3]
    assert client.call_info(call.call_id)["case_id"] == call.case_id
    assert sim.request_count("call_info", 401) == 1
    assert sim.request_count("auth") == 2


def test_401_after_renewal_is_an_error_not_a_loop(harness: Harness, sim: AirudderSimulator) -> None:
    client = harness.client()
    sim.inject("call_info", Fault.unauthorized(times=10))
    with pytest.raises(AirudderApiError) as caught:
        client.call_info(sim.dataset.calls()[0].call_id)
    err = caught.value
    assert (err.endpoint, err.http_status, err.code) == ("call_info", 401, 401)
    assert sim.request_count("call_info") == 2  # the call, and one retry with the new token
    assert sim.request_count("auth") == 2
    assert sim.faults.pending("call_info") == 8
    assert harness.provider_calls == 2  # credentials re-read for the renewal (they may have rotated)


def test_wrong_credentials_fail_on_auth(sim: AirudderSimulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = AirudderClient(lambda: AirudderCredentials(APP_KEY, "wrong-secret"), AirudderApiSettings(base_url=sim.url))
    with pytest.raises(AirudderApiError) as caught:
        list(client.list_workflow_tasks(*WINDOW))
    assert (caught.value.endpoint, caught.value.http_status, caught.value.code) == ("auth", 401, 10302)
    assert sim.request_count("auth") == 1  # a refusal is not retried
    assert "wrong-secret" not in caplog.text and "wrong-secret" not in str(caught.value)


# --- retries ------------------------------------------------------------------------------------------------


def test_429_honours_retry_after_then_succeeds(harness: Harness, sim: AirudderSimulator) -> None:
    client = harness.client()
    sim.inject("task_detail", Fault.rate_limit(retry_after=7, times=2))
    assert len(list(client.task_details(first_task_id(sim)))) == 10
    assert harness.sleeps == [7.0, 7.0]
    assert sim.request_count("task_detail", 429) == 2
    assert client.counter.retries == 2


def test_retry_after_is_capped_and_missing_retry_after_backs_off(sim: AirudderSimulator) -> None:
    harness = Harness(sim, retry_after_cap=30.0, backoff_base=1.0, backoff_cap=5.0)
    client = harness.client()
    sim.inject("call_info", Fault.rate_limit(retry_after=3600), Fault.rate_limit(retry_after=None))
    client.call_info(sim.dataset.calls()[0].call_id)
    assert harness.sleeps[0] == 30.0
    assert 0.0 <= harness.sleeps[1] <= 2.0  # full jitter over base * 2**1


def test_5xx_retried_with_exponential_full_jitter_backoff(sim: AirudderSimulator) -> None:
    harness = Harness(sim, backoff_base=0.5, backoff_cap=3.0, max_retries=5)
    client = harness.client()
    sim.inject("workflow_list", Fault.server_error(503, times=2), Fault.server_error(500, times=2))
    assert len(list(client.list_workflow_tasks(*WINDOW))) == 3
    assert len(harness.sleeps) == 4
    for n, delay in enumerate(harness.sleeps):
        assert 0.0 <= delay <= min(3.0, 0.5 * 2**n)
    assert len(set(harness.sleeps)) == 4  # jittered, not fixed steps
    assert sim.request_count("workflow_list") == 5


def test_5xx_gives_up_after_max_retries(sim: AirudderSimulator) -> None:
    harness = Harness(sim, max_retries=3)
    client = harness.client()
    sim.inject("subtask_list", Fault.server_error(502, times=100))
    with pytest.raises(AirudderApiError) as caught:
        list(client.list_subtasks(sim.dataset.workflows()[0].workflow_id))
    err = caught.value
    assert (err.endpoint, err.http_status, err.code, err.retryable) == ("subtask_list", 502, 502, True)
    assert sim.request_count("subtask_list") == 4
    assert len(harness.sleeps) == 3


def test_auth_endpoint_is_retried_too(harness: Harness, sim: AirudderSimulator) -> None:
    sim.inject("auth", Fault.server_error(503))
    harness.client().token()
    assert sim.request_count("auth") == 2
    assert len(harness.sleeps) == 1


def test_timeout_is_retried(sim: AirudderSimulator) -> None:
    # A generous read timeout, so that prompt answers are in time on a busy machine; the held answer
    # waits for the client to hang up, so it times out whatever the timeout.
    harness = Harness(sim, read_timeout=5.0)
    client = harness.client()
    client.token()
    sim.inject("call_info", Fault.hold())
    call = sim.dataset.calls()[0]
    assert client.call_info(call.call_id)["call_id"] == call.call_id
    assert client.counter.by_outcome["timeout"] == 1
    assert len(harness.sleeps) == 1


def test_connection_errors_are_retried_then_reported(sim: AirudderSimulator) -> None:
    # A port bound here but not listening refuses every connection; a port just released could be taken
    # by another process before the client tries it.
    with socket.socket() as closed_port:
        closed_port.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{closed_port.getsockname()[1]}"
        harness = Harness(sim, max_retries=2)
        harness.settings = AirudderApiSettings(base_url=dead_url, max_retries=2, connect_timeout=5.0)
        with pytest.raises(AirudderApiError) as caught:
            harness.client().token()
    assert (caught.value.endpoint, caught.value.http_status, caught.value.retryable) == ("auth", None, True)
    assert len(harness.sleeps) == 2


# --- errors -------------------------------------------------------------------------------------------------


def test_200_with_an_error_code_is_an_error_with_endpoint_and_code(harness: Harness, sim: AirudderSimulator) -> None:
    client = harness.client()
    sim.inject("task_detail", Fault.error_code(10705, "The number of queries exceeds the number limit"))
    with pytest.raises(AirudderApiError) as caught:
        list(client.task_details(first_task_id(sim)))
    err = caught.value
    assert (err.endpoint, err.http_status, err.code) == ("task_detail", 200, 10705)
    assert "exceeds" in err.message and "task_detail" in str(err) and "10705" in str(err)
    assert sim.request_count("task_detail") == 1  # not retried
    assert harness.sleeps == []


def test_unknown_ids_are_errors(harness: Harness) -> None:
    client = harness.client()
    with pytest.raises(AirudderApiError) as caught:
        client.call_info("0" * 32)
    assert (caught.value.endpoint, caught.value.http_status, caught.value.code) == ("call_info", 200, 10609)
    with pytest.raises(AirudderApiError) as caught:
        list(client.task_details("f" * 32))
    assert (caught.value.endpoint, caught.value.code) == ("task_detail", 10702)
    with pytest.raises(ValueError):
        client.task_details()


def test_4xx_other_than_401_and_429_is_not_retried(harness: Harness, sim: AirudderSimulator) -> None:
    client = harness.client()
    sim.inject("outbound_task_list", Fault.http_status(403, message="forbidden"))
    with pytest.raises(AirudderApiError) as caught:
        list(client.list_outbound_tasks(sim.dataset.workflows()[0].workflow_id))
    assert (caught.value.endpoint, caught.value.http_status, caught.value.code) == ("outbound_task_list", 403, 403)
    assert sim.request_count("outbound_task_list") == 1


def test_error_messages_keep_numbers_out(harness: Harness, sim: AirudderSimulator) -> None:
    sim.inject("call_info", Fault.error_code(10510, "Incorrect phone number +6281234567890"))
    with pytest.raises(AirudderApiError) as caught:
        harness.client().call_info(sim.dataset.calls()[0].call_id)
    assert "6281234567890" not in str(caught.value)


# --- paging and walking -------------------------------------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, 3, 10, 11, 100])
def test_paging_yields_every_record_exactly_once(sim: AirudderSimulator, page_size: int) -> None:
    client = Harness(sim, page_size=page_size).client()
    task_id = first_task_id(sim)
    ids = [r["call_id"] for r in client.task_details(task_id)]
    assert sorted(ids) == sorted(sim.dataset.task(task_id).call_ids)  # type: ignore[union-attr]
    assert len(ids) == len(set(ids))
    pages = -(-10 // page_size)  # the listing ends as soon as `total` records are read
    assert client.counter.by_endpoint["task_detail"] == pages


def test_paging_survives_a_server_that_caps_page_size() -> None:
    with AirudderSimulator(app_key=APP_KEY, app_secret=APP_SECRET, calls_per_workflow=20, max_page_size=4) as sim:
        client = Harness(sim, page_size=100).client()
        ids = [r["call_id"] for r in client.task_details(first_task_id(sim))]
        assert len(ids) == len(set(ids)) == 10
        assert client.counter.by_endpoint["task_detail"] == 3


def test_page_scheme_without_total_stops_on_short_page() -> None:
    pages = {1: {"list": [{"n": 1}, {"n": 2}]}, 2: {"list": [{"n": 3}]}}
    asked: list[dict[str, int]] = []

    def fetch(params: dict[str, int]) -> Any:
        asked.append(params)
        return pages.get(params["page"], {"list": []})

    assert [r["n"] for r in PageScheme().iterate(fetch, page_size=2, max_pages=10)] == [1, 2, 3]
    assert asked == [{"page": 1, "page_size": 2}, {"page": 2, "page_size": 2}]
    # A different scheme is a different PageScheme, nothing else.
    other = PageScheme(page_param="pageNum", size_param="pageSize", first_page=0, items_key="rows")
    rows = {0: {"rows": [{"n": 1}], "total": 2}, 1: {"rows": [{"n": 2}], "total": 2}}
    assert [r["n"] for r in other.iterate(lambda p: rows[p["pageNum"]], 1, 10)] == [1, 2]
    # max_pages bounds a server that never ends.
    endless: Callable[[dict[str, int]], Any] = lambda p: {"list": [{"n": p["page"]}]}  # noqa: E731
    assert len(list(PageScheme().iterate(endless, 1, 5))) == 5


def test_walk_listings_and_records(harness: Harness, sim: AirudderSimulator) -> None:
    client = harness.client()
    workflows = list(client.list_workflow_tasks(*WINDOW))
    assert [w["workflow_id"] for w in workflows] == [w.workflow_id for w in sim.dataset.workflows()]
    wf = sim.dataset.workflows()[1]
    subtasks = list(client.list_subtasks(wf.workflow_id))
    assert [s["nodetask_id"] for s in subtasks] == [n.nodetask_id for n in wf.nodes]
    tasks = list(client.list_outbound_tasks(wf.workflow_id))
    assert {t["task_id"] for t in tasks} == {n.task_id for n in wf.nodes}
    only = list(client.list_outbound_tasks(wf.workflow_id, nodetask_id=wf.nodes[1].nodetask_id))
    assert [t["task_id"] for t in only] == [wf.nodes[1].task_id]
    by_node = list(client.task_details(nodetask_id=wf.nodes[1].nodetask_id))
    assert {r["call_id"] for r in by_node} == set(wf.nodes[1].call_ids)
    records = list(client.iter_call_records(*WINDOW))
    assert sorted(r["call_id"] for r in records) == sorted(c.call_id for c in sim.dataset.calls())
    one = records[5]
    assert client.call_info(one["call_id"]) == one


def test_request_counter_counts_every_http_request(harness: Harness, sim: AirudderSimulator) -> None:
    counter = RequestCounter()
    client = harness.client(counter)
    sim.inject("task_detail", Fault.server_error(), Fault.rate_limit(retry_after=1))
    sim.inject("call_info", Fault.expire_tokens())
    records = list(client.iter_call_records(*WINDOW))
    client.call_info(records[0]["call_id"])
    harness.client(counter).call_info(records[1]["call_id"])  # a second client adds to the shared counter
    assert counter.total == len(sim.requests) == sim.request_count()
    snap = counter.snapshot()
    assert snap["by_endpoint"]["auth"] == sim.request_count("auth") == 2
    assert snap["by_outcome"]["503"] == 1 and snap["by_outcome"]["429"] == 1 and snap["by_outcome"]["401"] == 1
    assert snap["retries"] == 2 and snap["renewals"] == 1
    # What a benchmark reports: API calls per record.
    assert 0 < counter.total / len(records) < 1
    counter.reset()
    assert counter.total == 0


def test_logs_carry_no_numbers_tokens_or_secrets(
    harness: Harness, sim: AirudderSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = harness.client()
    sim.inject("task_detail", Fault.server_error(), Fault.rate_limit(retry_after=1))
    sim.inject("call_info", Fault.expire_tokens())
    records = list(client.iter_call_records(*WINDOW))
    client.call_info(records[0]["call_id"])
    token = client.token()
    assert caplog.records  # retries and renewals were logged
    for forbidden in (token, APP_SECRET, APP_KEY, "+62812", records[0]["callee"]):
        assert forbidden not in caplog.text
