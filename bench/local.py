"""Local MCP overhead: ``runlayer run`` (pre + post round trips to the server) vs the same stdio server called
directly, measured in one run; and the CLI's start-up time to the first ``tools/list``.

    .venv/bin/python bench/local.py [--calls 1000] [--starts 5]

Starts a real Runlayer (uvicorn, one worker, audit on) and registers the shipped demo MCP server as a local
stdio connector. One MCP SDK client talks to the demo server directly, another to ``runlayer run`` launching
the same server; calls alternate between them. Prints p50/p95/p99 of each, the added latency, and start-up
times (process spawn to first tools/list answered) for both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import runlayer_server  # noqa: E402

DEMO = str(ROOT / "connectors" / "demo_server.py")
RUNLAYER = str(Path(sys.executable).parent / "runlayer")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(name: str, values: list[float]) -> str:
    return f"{name:<22} p50 {pct(values, 50):7.2f} ms   p95 {pct(values, 95):7.2f} ms   p99 {pct(values, 99):7.2f} ms"


async def timed_call(client: Client, i: int) -> float:
    start = time.perf_counter()
    result = await client.call_tool("add", {"a": i, "b": 1})
    elapsed = (time.perf_counter() - start) * 1000
    if result.is_error or result.content[0].text != str(i + 1):
        raise RuntimeError(f"unexpected result: {result}")
    return elapsed


async def start_to_first_list(params: StdioServerParameters, errlog) -> float:
    start = time.perf_counter()
    async with Client(stdio_client(params, errlog=errlog), mode="legacy", cache=None) as client:
        await client.list_tools()
        return (time.perf_counter() - start) * 1000


async def main(calls: int, starts: int, server, connector: str, home: str, published: str | None) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": home, "RUNLAYER_CONFIG_DIR": f"{home}/.runlayer",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}  # fmt: skip
    direct = StdioServerParameters(command=sys.executable, args=[DEMO], env=env)
    governed = StdioServerParameters(
        command=RUNLAYER, args=["run", connector, "--host", server.url, "--secret", server.keys["alice"]], env=env
    )
    errlog = open(Path(home) / "stderr.log", "w")
    async with (
        Client(stdio_client(direct, errlog=errlog), mode="legacy", cache=None) as d,
        Client(stdio_client(governed, errlog=errlog), mode="legacy", cache=None) as g,
    ):
        await d.list_tools()
        await g.list_tools()
        for i in range(50):  # warm up both paths
            await timed_call(d, i)
            await timed_call(g, i)
        direct_ms, governed_ms = [], []
        for i in range(calls):
            direct_ms.append(await timed_call(d, i))
            governed_ms.append(await timed_call(g, i))
    print(f"tools/call 'add', {calls} calls each, alternating (loopback, 2 cores)")
    print(summary("direct stdio", direct_ms))
    print(summary("runlayer run", governed_ms))
    added = [g - d for g, d in zip(governed_ms, direct_ms, strict=True)]
    print(
        f"added per governed call: p50 {pct(governed_ms, 50) - pct(direct_ms, 50):.2f} ms, "
        f"p99 {pct(governed_ms, 99) - pct(direct_ms, 99):.2f} ms (median of pairwise differences "
        f"{statistics.median(added):.2f} ms); ratio p50 {pct(governed_ms, 50) / pct(direct_ms, 50):.2f}"
    )
    direct_starts = [await start_to_first_list(direct, errlog) for _ in range(starts)]
    governed_starts = [await start_to_first_list(governed, errlog) for _ in range(starts)]
    print(f"start-up to first tools/list, median of {starts}:")
    print(f"  direct demo server     {statistics.median(direct_starts):7.0f} ms")
    print(f"  runlayer run (+child)  {statistics.median(governed_starts):7.0f} ms")
    if published:
        other = StdioServerParameters(
            command=published, args=["run", connector, "--host", server.url, "--secret", server.keys["alice"]], env=env
        )
        async with (
            Client(stdio_client(direct, errlog=errlog), mode="legacy", cache=None) as d,
            Client(stdio_client(other, errlog=errlog), mode="legacy", cache=None) as p,
        ):
            await p.list_tools()
            for i in range(20):
                await timed_call(d, i)
                await timed_call(p, i)
            direct_ms, published_ms = [], []
            for i in range(min(calls, 300)):
                direct_ms.append(await timed_call(d, i))
                published_ms.append(await timed_call(p, i))
        print(f"for comparison, the published runlayer==0.31.17 CLI, {len(published_ms)} calls each, alternating:")
        print(summary("direct stdio", direct_ms))
        print(summary("published runlayer", published_ms))
        starts_p = [await start_to_first_list(other, errlog) for _ in range(starts)]
        print(f"  published CLI start-up to first tools/list: {statistics.median(starts_p):.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--published", action="store_true", help="also measure the published runlayer==0.31.17")
    args = parser.parse_args()
    published = None
    if args.published:
        from tests.support import cached_venv

        published = str(cached_venv("published-runlayer", "runlayer==0.31.17") / "bin" / "runlayer")
    with (
        tempfile.TemporaryDirectory() as tmp,
        runlayer_server(tmp_dir=Path(tmp), env={"RUNLAYER_CACHE_CHECK_SECONDS": "0.2"}) as server,
    ):
        body = {"name": "bench-local", "deployment_mode": "local", "transport_type": "stdio", "url": sys.executable,
                "transport_config": {"args": [DEMO]}, "status": "active"}  # fmt: skip
        resp = server.api("POST", "/api/v1/servers", json=body)
        connector = resp.json()["id"]
        server.api("PUT", f"/api/v1/servers/{connector}/access", json={"users": ["alice"]})
        anyio.run(main, args.calls, args.starts, server, connector, tmp, published)
