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
def running(args: list[str], *, port: int, env: dict[str, str] | None = None, log: Path | None = None) -> Iterator[subprocess.Popen]:
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
    *, transport: str = "streamable-http", json_response: bool = False, stateless: bool = False,
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
