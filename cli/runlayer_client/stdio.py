"""The AI client's end of ``runlayer run``: JSON-RPC lines on stdin and stdout.

The protocol gets private duplicates of fds 0 and 1; fd 1 itself is pointed at stderr, so stray output
(a library's print, a C extension's warning) can never corrupt the MCP stream.
"""

from __future__ import annotations

import asyncio
import os
import sys

MAX_LINE = 64 * 1024 * 1024


class ClientPipe:
    def __init__(self) -> None:
        self._in_fd = os.dup(0)
        self._out_fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self._reader: asyncio.StreamReader | None = None
        self._file = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self._file = os.fdopen(self._in_fd, "rb", buffering=0)
        reader = asyncio.StreamReader(limit=MAX_LINE)
        try:
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), self._file)
            self._reader = reader
        except ValueError:  # not a pipe (a file or a terminal): read it in a thread
            self._reader = None

    async def readline(self) -> bytes | None:
        """The next non-empty line, or None at end of input (the client went away)."""
        while True:
            if self._reader is not None:
                try:
                    line = await self._reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    continue  # an oversized line: dropped, as no valid message is that large
            else:
                import anyio

                assert self._file is not None
                line = await anyio.to_thread.run_sync(self._file.readline)
            if not line:
                return None
            if line.strip():
                return line

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._out_fd, view)
            view = view[written:]


async def sdk_server_streams(pipe: ClientPipe, first_line: bytes, run) -> None:
    """Run ``run(read_stream, write_stream)`` (an MCP SDK server) over the pipe, starting with ``first_line``."""
    import anyio
    from mcp.shared.message import SessionMessage
    from mcp_types import jsonrpc_message_adapter

    to_server, read_stream = anyio.create_memory_object_stream(0)
    write_stream, from_server = anyio.create_memory_object_stream(0)

    async def reader() -> None:
        async with to_server:
            line: bytes | None = first_line
            while line is not None:
                try:
                    message = SessionMessage(jsonrpc_message_adapter.validate_json(line, by_name=False))
                except ValueError as exc:
                    message = exc
                await to_server.send(message)
                line = await pipe.readline()

    async def writer() -> None:
        async with from_server:
            async for session_message in from_server:
                json = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
                pipe.write(json.encode() + b"\n")

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        tg.start_soon(writer)
        await run(read_stream, write_stream)
        tg.cancel_scope.cancel()
