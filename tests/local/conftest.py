from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.support import ROOT, runlayer_server

DEMO = str(ROOT / "connectors" / "demo_server.py")
RUNLAYER = shutil.which("runlayer", path=str(Path(sys.executable).parent)) or "runlayer"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Runlayer with two uvicorn workers: pre and post of one call may land on different workers."""
    with runlayer_server(
        workers=2, env={"RUNLAYER_DEVICE_POLL_INTERVAL_SECONDS": "1"}, tmp_dir=tmp_path_factory.mktemp("srv")
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def record_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("child") / "calls.jsonl"


def create_local(server, *, users=("alice",), name=None, command=sys.executable, args=None, env=None, **extra) -> str:
    body = {
        "name": name or f"local-{os.urandom(3).hex()}",
        "deployment_mode": "local",
        "transport_type": extra.pop("transport_type", "stdio"),
        "url": command,
        "transport_config": {"args": [DEMO] if args is None else args, "env": env or {}, **extra.pop("config", {})},
        "status": "active",
        **extra,
    }
    resp = server.api("POST", "/api/v1/servers", json=body)
    assert resp.status_code == 201, resp.text
    connector_id = resp.json()["id"]
    if users:
        resp = server.api("PUT", f"/api/v1/servers/{connector_id}/access", json={"users": list(users)})
        assert resp.status_code == 200, resp.text
    return connector_id


@pytest.fixture(scope="module")
def local_connector(server, record_file) -> str:
    return create_local(server, name="demo-local", env={"DEMO_RECORD_FILE": str(record_file)})


def recorded(record_file: Path) -> list[dict]:
    if not record_file.exists():
        return []
    return [json.loads(line) for line in record_file.read_text().splitlines() if line.strip()]


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment an AI client would give `runlayer run` (plus an isolated config dir, no keychain)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "RUNLAYER_CONFIG_DIR": str(tmp_path / ".runlayer"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def run_cli(server, target: str, tmp_path: Path, *, user="alice", key=None, env=None, mode="legacy", args=()):
    """An SDK stdio client launching `runlayer run`, as an AI client does."""
    params = StdioServerParameters(
        command=RUNLAYER,
        args=["run", target, "--host", server.url, "--secret", key or server.keys[user], *args],
        env=cli_env(tmp_path, **(env or {})),
    )
    errlog = open(tmp_path / "cli-stderr.log", "a")
    try:
        async with Client(stdio_client(params, errlog=errlog), mode=mode, cache=None) as client:
            yield client
    finally:
        errlog.close()
