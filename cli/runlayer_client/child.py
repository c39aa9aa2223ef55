"""The local MCP server's process, for ``runlayer run``.

Spawned with an argument list (never a shell) in its own process group (on Linux it also gets SIGTERM if
the CLI dies without cleaning up), its stderr appended to the log
file. It is started before the MCP SDK is imported, so the CLI's and the child's start-ups overlap.
Stopped the way the MCP specification asks: close stdin, wait, SIGTERM the group, wait, SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import TextIO

import anyio

GRACE_SECONDS = 2.0
MAX_LINE = 64 * 1024 * 1024
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM if the CLI itself dies without cleaning up (e.g. SIGKILL)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass


class ChildProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.pid = process.pid
        self._send_lock = anyio.Lock()
        self._buffer = b""

    @classmethod
    async def spawn(cls, command: str, args: list[str], env: dict[str, str], errlog: TextIO) -> ChildProcess:
        process = await asyncio.create_subprocess_exec(
            command,
            *args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            limit=MAX_LINE,
        )
        return cls(process)

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def send(self, data: bytes) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        async with self._send_lock:
            if stdin.is_closing():
                raise anyio.BrokenResourceError("the local MCP server's stdin is closed")
            stdin.write(data)
            await stdin.drain()

    async def lines(self) -> AsyncIterator[bytes]:
        """The child's stdout, one JSON-RPC message (line) at a time, until it closes."""
        stdout = self.process.stdout
        assert stdout is not None
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                newline = self._buffer.find(b"\n")
                if newline >= 0:
                    line, self._buffer = self._buffer[:newline], self._buffer[newline + 1 :]
                    if line.strip():
                        yield line
                    continue
                if len(self._buffer) > MAX_LINE:
                    raise OSError("the local MCP server sent a line larger than 64 MB")
                chunk = await stdout.read(1024 * 1024)
                if not chunk:
                    return
                self._buffer += chunk

    async def stop(self) -> None:
        """stdin close → wait → SIGTERM to the group → wait → SIGKILL; safe to call twice."""
        with anyio.CancelScope(shield=True):
            if self.process.stdin is not None:
                with contextlib.suppress(Exception):
                    self.process.stdin.close()
            if await self._exited_within(GRACE_SECONDS):
                return self._reap()
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, sig)
                if await self._exited_within(GRACE_SECONDS):
                    break
            self._reap()

    def _reap(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # grandchildren left in the group go with it

    async def _exited_within(self, seconds: float) -> bool:
        # Polls returncode: Process.wait() would also wait for pipe EOF, which a grandchild can hold open.
        deadline = anyio.current_time() + seconds
        while self.process.returncode is None:
            if anyio.current_time() >= deadline:
                return False
            await anyio.sleep(0.02)
        return True


@contextlib.asynccontextmanager
async def sdk_transport(child: ChildProcess):
    """The child as an MCP SDK client transport (read and write streams of ``SessionMessage``)."""
    from mcp.shared.message import SessionMessage
    from mcp_types import jsonrpc_message_adapter

    to_session, read_stream = anyio.create_memory_object_stream(0)
    write_stream, from_session = anyio.create_memory_object_stream(0)

    async def reader() -> None:
        async with to_session:
            async for line in child.lines():
                try:
                    message = SessionMessage(jsonrpc_message_adapter.validate_json(line, by_name=False))
                except ValueError as exc:
                    message = exc
                try:
                    await to_session.send(message)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return

    async def writer() -> None:
        async with from_session:
            async for session_message in from_session:
                data = session_message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                try:
                    await child.send(data.encode())
                except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                    await to_session.aclose()
                    return

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        tg.start_soon(writer)
        try:
            yield read_stream, write_stream
        finally:
            await child.stop()
            tg.cancel_scope.cancel()
