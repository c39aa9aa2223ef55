from __future__ import annotations

import time

import pytest

from connectors.gateway import sessions
from connectors.gateway.breaker import CircuitBreaker
from connectors.gateway.upstream import _strip_envelope


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_and_half_opens_after_cooldown():
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    assert breaker.retry_after() == pytest.approx(10)
    clock.now += 10
    assert breaker.state == "half-open"
    assert breaker.allow()  # one probe
    assert not breaker.allow()  # and only one
    breaker.record_failure()  # the probe failed: open again
    assert breaker.state == "open"
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow() and breaker.failures == 0


def issue(**overrides) -> str:
    claims = dict(
        user_id=7,
        agent_id=None,
        connector_id="c1",
        protocol_version="2025-11-25",
        client_name="cursor",
        client_version="1.0",
    )
    claims.update(overrides)
    return sessions.session_issue(**claims)


def test_session_ids_carry_their_binding_and_resist_tampering():
    sid = issue()
    info = sessions.session_check(sid)
    assert (info.user_id, info.connector_id, info.client_name) == (7, "c1", "cursor")
    body, signature = sid.split(".")
    forged_body = sessions._b64(sessions._unb64(body).replace(b'"u":7', b'"u":8'))
    assert sessions.session_check(f"{forged_body}.{signature}") is None
    assert sessions.session_check(sid + "x") is None
    assert sessions.session_check("nonsense") is None
    assert sessions.session_check("") is None
    assert issue() != issue()  # each one is new


def test_sessions_expire(monkeypatch):
    sid = issue()
    real = time.time
    monkeypatch.setattr(sessions.time, "time", lambda: real() + sessions.SESSION_TTL + 1)
    assert sessions.session_check(sid) is None


def test_envelope_is_stripped_but_other_meta_kept():
    params = {
        "name": "x",
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "progressToken": 5,
        },
    }
    assert _strip_envelope(params) == {"name": "x", "_meta": {"progressToken": 5}}
    assert _strip_envelope({"name": "x"}) == {"name": "x"}
    assert _strip_envelope(None) is None
