"""Helpers that start real processes for tests: MCP servers, the ASGI server, workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout} s")


def stop(proc: subprocess.Popen, *, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running(
    args: list[str], *, port: int, env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[subprocess.Popen]:
    """Run a process until the block ends, waiting until it listens on ``port``."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc=proc)
        yield proc
    finally:
        stop(proc)
        if log:
            out.close()


@contextmanager
def demo_server(
    *,
    transport: str = "streamable-http",
    json_response: bool = False,
    stateless: bool = False,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """The shipped demo MCP server in its own process; yields its URL."""
    port = free_port()
    args = [sys.executable, "-m", "connectors.demo_server", "--transport", transport, "--port", str(port)]
    if json_response:
        args.append("--json")
    if stateless:
        args.append("--stateless")
    with running(args, port=port, env=env):
        yield f"http://127.0.0.1:{port}/sse" if transport == "sse" else f"http://127.0.0.1:{port}/mcp"


BOOTSTRAP = """
import json
from django.contrib.auth.models import Group, User
from runlayer.services import api_key_create
out = {}
admin = User.objects.create_user("root", "root@example.com", "x", is_staff=True, is_superuser=True)
out["root"] = api_key_create(user=admin, name="harness").key
team = Group.objects.create(name="team")
for name in USERS:
    user = User.objects.create_user(name, f"{name}@example.com", f"pw-{name}")
    out[name] = api_key_create(user=user, name="harness").key
print("BOOTSTRAP" + json.dumps(out))
"""


class RunlayerServer:
    """A running Runlayer (uvicorn, real ASGI) on its own database, driven over HTTP like a client would."""

    def __init__(self, url: str, keys: dict[str, str], env: dict[str, str], data_dir: Path) -> None:
        self.url, self.keys, self.env, self.data_dir = url, keys, env, data_dir
        self.proc: subprocess.Popen | None = None

    def api(self, method: str, path: str, *, user: str = "root", **kwargs):
        import httpx

        headers = {"x-runlayer-api-key": self.keys[user], **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def create_connector(self, *, url: str, transport: str = "streaming-http", users: list[str] = (), **extra) -> str:
        body = {
            "name": extra.pop("name", f"upstream-{free_port()}"),
            "deployment_mode": "hosted",
            "transport_type": transport,
            "url": url,
            "status": "active",
            **extra,
        }
        resp = self.api("POST", "/api/v1/servers", json=body)
        assert resp.status_code == 201, resp.text
        connector_id = resp.json()["id"]
        if users:
            resp = self.api("PUT", f"/api/v1/servers/{connector_id}/access", json={"users": list(users)})
            assert resp.status_code == 200, resp.text
        return connector_id

    def mcp_url(self, connector_id: str) -> str:
        return f"{self.url}/api/v1/proxy/{connector_id}/mcp"

    def audit(self, *, wait_for: int | None = None, timeout: float = 10.0, **filters) -> list[dict]:
        """Audit events (newest first); with ``wait_for``, polls until at least that many match."""
        deadline = time.monotonic() + timeout
        while True:
            params = {"limit": 2000, **filters}
            data = self.api("GET", "/api/v1/auditlogs", params=params).json()["data"]
            if wait_for is None or len(data) >= wait_for or time.monotonic() > deadline:
                return data
            time.sleep(0.1)


def _database_url_for_server() -> str | None:
    """A fresh PostgreSQL database when the suite runs against PostgreSQL; None means SQLite in the data dir."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    import uuid

    import psycopg

    name = f"rl_srv_{uuid.uuid4().hex[:12]}"
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


@contextmanager
def runlayer_server(
    *,
    workers: int = 1,
    users: tuple[str, ...] = ("alice", "bob"),
    env: dict[str, str] | None = None,
    tmp_dir: Path | None = None,
) -> Iterator[RunlayerServer]:
    import json
    import tempfile

    data_dir = Path(tempfile.mkdtemp(prefix="runlayer-", dir=tmp_dir))
    port = free_port()
    server_env = {
        **{k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)},
        "RUNLAYER_DATA_DIR": str(data_dir),
        "RUNLAYER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RUNLAYER_CACHE_CHECK_SECONDS": "0",
        **(env or {}),
    }
    server_env.pop("DATABASE_URL", None)
    database_url = _database_url_for_server()
    if database_url:
        server_env["DATABASE_URL"] = database_url
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=server_env, check=True, timeout=300)
    script = f"USERS = {list(users)!r}\n" + BOOTSTRAP
    out = subprocess.run(
        [*manage, "shell", "-c", script],
        cwd=ROOT,
        env=server_env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    keys = json.loads(out.split("BOOTSTRAP", 1)[1])
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "runlayer.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    log = data_dir / "server.log"
    with running(args, port=port, env=server_env, log=log) as proc:
        server = RunlayerServer(f"http://127.0.0.1:{port}", keys, server_env, data_dir)
        server.proc = proc
        yield server


def cached_venv(name: str, *requirements: str) -> Path:
    """A virtualenv under var/ holding published packages (installed once, shared by parallel workers)."""
    import fcntl
    import venv

    home = ROOT / "var" / name
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = home / ".installed"
        if not done.exists() or done.read_text() != "\n".join(requirements):
            venv.create(home, with_pip=True, clear=True)
            subprocess.run(
                [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 *requirements],
                check=True,
                timeout=900,
            )  # fmt: skip
            done.write_text("\n".join(requirements))
    return home
