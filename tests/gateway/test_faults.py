"""security.md items 15–17: exactly one audit event per call under load and faults, bounded failures."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support import ROOT, free_port, runlayer_server

from .test_security import INIT, open_session, post


def tool_call(name: str, arguments: dict, request_id: int = 1) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def test_concurrent_calls_give_exactly_one_event_each(server, connector):
    marker = uuid.uuid4().hex
    sid = open_session(server, connector)
    calls = [("echo", {"text": f"{marker}-{i}"}) for i in range(40)] + [("fail", {"message": marker})] * 10

    def run(item):
        name, arguments = item
        return post(server, connector, tool_call(name, arguments), headers={"mcp-session-id": sid})

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(run, calls))
    assert all(r.status_code == 200 for r in responses)
    ok = [
        e
        for e in server.audit(action_type="tool_call_success", server_id=connector, wait_for=40)
        if marker in str(e["details"].get("arguments"))
    ]
    assert len(ok) == 40 and len({e["details"]["correlation_id"] for e in ok}) == 40
    failed = [
        e
        for e in server.audit(action_type="tool_call_failure", server_id=connector, wait_for=10)
        if marker in str(e["details"].get("arguments"))
    ]
    assert len(failed) == 10


def test_unreachable_upstream_is_a_clean_error_and_audited(server):
    cid = server.create_connector(url=f"http://127.0.0.1:{free_port()}/mcp", users=["alice"], name="down")
    resp = post(server, cid, INIT)
    assert resp.status_code == 200
    error = resp.json()["error"]
    assert "could not be reached" in error["message"] and "Traceback" not in resp.text
    events = server.audit(server_id=cid, action_type="tool_call_failure", wait_for=1)
    assert events[0]["details"]["upstream_error"]["type"] == "unreachable"


@pytest.mark.parametrize(
    "path,kind,words",
    [
        ("/500", "http_status", "answered HTTP 500"),
        ("/malformed", "protocol", "malformed"),
        ("/reset", "unreachable", "could not be reached"),
        ("/huge", "too_large", "size limit"),
        ("/hang", "timeout", "did not answer within 3 s"),
    ],
)
def test_misbehaving_upstream_gives_a_bounded_generic_error(server, bad_upstream, path, kind, words):
    cid = server.create_connector(url=bad_upstream + path, users=["alice"], name=f"bad{path.strip('/')}")
    sid = open_session(server, cid)
    start = time.monotonic()
    resp = post(server, cid, tool_call("boom", {}), headers={"mcp-session-id": sid})
    assert time.monotonic() - start < 10
    assert resp.status_code == 200
    error = resp.json()["error"]
    assert words in error["message"]
    assert "Traceback" not in resp.text and "/srv/secret" not in resp.text
    event = server.audit(server_id=cid, action_type="tool_call_failure", wait_for=1)[0]
    assert event["details"]["upstream_error"]["type"] == kind


def test_breaker_opens_and_half_opens(server, bad_upstream):
    cid = server.create_connector(url=bad_upstream + "/500", users=["alice"], name="flaky")
    sid = open_session(server, cid)
    with httpx.Client(
        headers={
            "x-runlayer-api-key": server.keys["alice"],
            "mcp-session-id": sid,
            "accept": "application/json, text/event-stream",
        }
    ) as client:  # one keep-alive connection: one worker
        messages = [
            client.post(server.mcp_url(cid), json=tool_call("boom", {})).json()["error"]["message"] for _ in range(8)
        ]
    assert any("answered HTTP 500" in m for m in messages)
    assert "calls are paused" in messages[-1]


def test_missing_user_secret_is_named_and_then_used(server, upstream, record_file):
    cid = server.create_connector(
        url=upstream,
        users=["alice"],
        name="needs-secret",
        transport_config={"headers": {"X-Upstream-Token": "Bearer {{ user.secret.UPSTREAM_TOKEN }}"}},
    )
    resp = post(server, cid, INIT)
    assert "UPSTREAM_TOKEN" in resp.json()["error"]["message"]
    assert (
        server.api("PUT", "/api/v1/secrets/UPSTREAM_TOKEN", user="alice", json={"value": "tok-alice"}).status_code
        == 200
    )
    sid = open_session(server, cid)
    marker = uuid.uuid4().hex
    ok = post(server, cid, tool_call("echo", {"text": marker}), headers={"mcp-session-id": sid})
    assert ok.json()["result"]["content"][0]["text"] == marker
    from .conftest import recorded

    call = next(c for c in recorded(record_file) if c["arguments"].get("text") == marker)
    assert call["headers"]["x-upstream-token"] == "Bearer tok-alice"


def test_graceful_shutdown_flushes_every_event(tmp_path):
    from tests.support import demo_server

    with demo_server(json_response=True) as url:
        with runlayer_server(workers=1, tmp_dir=tmp_path) as srv:
            cid = srv.create_connector(url=url, users=["alice"], name="flush")
            sid = open_session(srv, cid)
            for i in range(30):
                assert (
                    post(srv, cid, tool_call("add", {"a": i, "b": 1}), headers={"mcp-session-id": sid}).status_code
                    == 200
                )
            env = srv.env
        # the server is stopped (SIGTERM) by now; count what reached the database
        script = (
            "from audit.models import AuditEvent;"
            f"print(AuditEvent.objects.filter(action_type='tool_call_success', server_id='{cid}').count())"
        )
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    assert out.strip().splitlines()[-1] == "30"


def test_rate_limit_holds_across_workers(tmp_path):
    from tests.support import demo_server

    with (
        demo_server(json_response=True) as url,
        runlayer_server(workers=2, tmp_dir=tmp_path, env={"RUNLAYER_RATE_LIMIT_PER_MINUTE": "20"}) as srv,
    ):
        cid = srv.create_connector(url=url, users=["alice", "bob"], name="limited")
        if time.time() % 60 > 45:  # keep the whole test inside one one-minute window
            time.sleep(61 - time.time() % 60)
        sid = open_session(srv, cid)  # request 1
        statuses = []
        for i in range(30):  # a fresh connection each time: the requests spread over both workers
            resp = post(srv, cid, tool_call("add", {"a": i, "b": 0}), headers={"mcp-session-id": sid})
            statuses.append(resp.status_code)
        assert statuses.count(200) == 19 and statuses.count(429) == 11
        limited = post(srv, cid, tool_call("add", {"a": 1, "b": 0}), headers={"mcp-session-id": sid})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        # another user has a budget of their own
        assert post(srv, cid, INIT, user="bob").status_code == 200
        denied = srv.audit(action_type="access_denied", server_id=cid, wait_for=12)
        assert sum(1 for e in denied if e["details"].get("rule") == "rate-limit") == 12


def test_upstream_restart_is_survived_without_a_client_error(server):
    """The pooled upstream session goes stale when the upstream restarts; the gateway re-opens it."""
    from tests.support import running

    port = free_port()
    args = [sys.executable, "-m", "connectors.demo_server", "--transport", "streamable-http", "--port", str(port)]
    url = f"http://127.0.0.1:{port}/mcp"
    with running(args, port=port):
        cid = server.create_connector(url=url, users=["alice"], name="restarts")
        sid = open_session(server, cid)
        with httpx.Client(
            headers={
                "x-runlayer-api-key": server.keys["alice"],
                "mcp-session-id": sid,
                "accept": "application/json, text/event-stream",
            }
        ) as client:
            first = client.post(server.mcp_url(cid), json=tool_call("add", {"a": 1, "b": 1}))
            assert first.json()["result"]["content"][0]["text"] == "2"
    with running(args, port=port):  # same address, new process: it knows none of the old sessions
        with httpx.Client(
            headers={
                "x-runlayer-api-key": server.keys["alice"],
                "mcp-session-id": sid,
                "accept": "application/json, text/event-stream",
            }
        ) as client:
            again = client.post(server.mcp_url(cid), json=tool_call("add", {"a": 2, "b": 2}))
    assert again.status_code == 200 and again.json()["result"]["content"][0]["text"] == "4"
