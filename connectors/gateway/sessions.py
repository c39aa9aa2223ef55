"""Downstream MCP session ids that any worker can check without shared state.

A session id is ``<payload>.<signature>``: the payload names the user, the connector, the negotiated
protocol version and the client, and the HMAC (keyed from SECRET_KEY) binds them together. A session
opened by one user on one connector is refused for any other user or path, and every worker of the
deployment accepts it, so no sticky routing is needed. Ending a session (DELETE) records its id in the
shared cache until it would have expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from django.conf import settings

SESSION_TTL = 24 * 3600


def _key() -> bytes:
    return hashlib.sha256(f"runlayer-mcp-session:{settings.SECRET_KEY}".encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: str
    user_id: int | None
    agent_id: str | None
    connector_id: str
    protocol_version: str
    client_name: str
    client_version: str
    issued_at: int


def session_issue(
    *,
    user_id: int | None,
    agent_id: str | None,
    connector_id: str,
    protocol_version: str,
    client_name: str,
    client_version: str,
) -> str:
    payload = {
        "u": user_id,
        "a": agent_id,
        "c": connector_id,
        "v": protocol_version,
        "n": client_name[:100],
        "cv": client_version[:50],
        "t": int(time.time()),
        "r": secrets.token_hex(8),
    }
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signature = _b64(hmac.new(_key(), body.encode(), hashlib.sha256).digest()[:20])
    return f"{body}.{signature}"


def session_check(session_id: str) -> SessionInfo | None:
    """The session's claims when the id is ours, intact and not expired; None otherwise."""
    if not session_id or len(session_id) > 1024 or session_id.count(".") != 1:
        return None
    body, signature = session_id.split(".")
    expected = _b64(hmac.new(_key(), body.encode(), hashlib.sha256).digest()[:20])
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        payload = json.loads(_unb64(body))
        issued = int(payload["t"])
        info = SessionInfo(
            session_id=session_id,
            user_id=payload["u"],
            agent_id=payload["a"],
            connector_id=str(payload["c"]),
            protocol_version=str(payload["v"]),
            client_name=str(payload["n"]),
            client_version=str(payload["cv"]),
            issued_at=issued,
        )
    except (ValueError, KeyError, TypeError):
        return None
    if time.time() - issued > SESSION_TTL:
        return None
    return info
