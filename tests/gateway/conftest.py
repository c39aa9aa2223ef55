from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.support import ROOT, demo_server, free_port, runlayer_server, running


@pytest.fixture(scope="module")
def record_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("upstream") / "calls.jsonl"


@pytest.fixture(scope="module")
def upstream(record_file):
    """The demo MCP server (SSE responses, sessions), recording every tool call it receives."""
    with demo_server(env={"DEMO_RECORD_FILE": str(record_file), "UPSTREAM_ONLY_SECRET": "s3"}) as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Runlayer with two uvicorn workers behind one port (no sticky sessions)."""
    with runlayer_server(
        workers=2, env={"RUNLAYER_UPSTREAM_TIMEOUT_SECONDS": "3"}, tmp_dir=tmp_path_factory.mktemp("srv")
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def connector(server, upstream) -> str:
    return server.create_connector(url=upstream, users=["alice"], name="demo")


@pytest.fixture(scope="module")
def bad_upstream():
    port = free_port()
    with running([sys.executable, str(ROOT / "tests" / "gateway" / "bad_upstream.py"), str(port)], port=port):
        yield f"http://127.0.0.1:{port}"


def recorded(record_file: Path) -> list[dict]:
    if not record_file.exists():
        return []
    return [json.loads(line) for line in record_file.read_text().splitlines() if line.strip()]


@contextlib.asynccontextmanager
async def mcp_client(url: str, key: str | None, *, mode: str = "legacy", headers: dict | None = None, **kwargs):
    base = {"x-runlayer-api-key": key} if key else {}
    http = httpx2.AsyncClient(headers={**base, **(headers or {})}, timeout=30)
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode, cache=None, **kwargs) as client:
        yield client
