"""Gateway overhead: direct vs proxied ``tools/call`` against the same upstream, measured in one run.

    .venv/bin/python bench/gateway.py [--calls 1000] [--workers 1]

Starts the demo MCP server (JSON-response mode) and a real Runlayer (uvicorn) with authentication,
authorization and audit on, then alternates a direct call and a proxied call through the same kind of
client (raw JSON-RPC over a keep-alive HTTP connection, after one ``initialize``), and prints p50/p95/p99
of each and their ratios. Then throughput with 32 concurrent clients, and again with a 50 ms upstream.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import demo_server, runlayer_server  # noqa: E402

INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
}


class Session:
    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.client = httpx.AsyncClient(
            headers={
                "accept": "application/json, text/event-stream",
                "content-type": "application/json",
                **(headers or {}),
            },
            timeout=60,
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
        )
        self.ids = 0

    async def open(self) -> None:
        resp = await self.client.post(self.url, json=INIT)
        resp.raise_for_status()
        self.client.headers["mcp-session-id"] = resp.headers["mcp-session-id"]
        self.client.headers["mcp-protocol-version"] = "2025-11-25"
        await self.client.post(self.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def call(self, name: str, arguments: dict) -> float:
        self.ids += 1
        body = {
            "jsonrpc": "2.0",
            "id": self.ids,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }
        start = time.perf_counter()
        resp = await self.client.post(self.url, json=body)
        elapsed = (time.perf_counter() - start) * 1000
        data = resp.json()
        if resp.status_code != 200 or "result" not in data or data["result"].get("isError"):
            raise RuntimeError(f"call failed: {resp.status_code} {resp.text[:300]}")
        return elapsed

    async def close(self) -> None:
        await self.client.aclose()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def latency(direct: Session, proxied: Session, calls: int) -> tuple[list[float], list[float]]:
    for _ in range(50):  # warm up both paths (connections, caches, upstream session)
        await direct.call("add", {"a": 1, "b": 2})
        await proxied.call("add", {"a": 1, "b": 2})
    d, p = [], []
    for i in range(calls):
        if i % 2:
            d.append(await direct.call("add", {"a": i, "b": 2}))
            p.append(await proxied.call("add", {"a": i, "b": 2}))
        else:
            p.append(await proxied.call("add", {"a": i, "b": 2}))
            d.append(await direct.call("add", {"a": i, "b": 2}))
    return d, p


async def throughput(make, clients: int, per_client: int, tool: str, arguments: dict) -> tuple[float, float]:
    sessions = [make() for _ in range(clients)]
    await asyncio.gather(*(s.open() for s in sessions))
    latencies: list[float] = []

    async def run(s: Session) -> None:
        for _ in range(per_client):
            latencies.append(await s.call(tool, arguments))

    start = time.perf_counter()
    await asyncio.gather(*(run(s) for s in sessions))
    elapsed = time.perf_counter() - start
    await asyncio.gather(*(s.close() for s in sessions))
    return clients * per_client / elapsed, statistics.median(latencies)


async def main_async(server, upstream_url: str, connector_id: str, args) -> None:
    key = {"x-runlayer-api-key": server.keys["alice"]}
    direct, proxied = Session(upstream_url), Session(server.mcp_url(connector_id), key)
    await direct.open()
    await proxied.open()
    d, p = await latency(direct, proxied, args.calls)
    await direct.close()
    await proxied.close()
    print(f"sequential tools/call, {args.calls} each, alternating (ms):")
    print(f"  {'':8} {'p50':>7} {'p95':>7} {'p99':>7}")
    for label, values in (("direct", d), ("proxied", p)):
        print(f"  {label:8} {pct(values, 50):7.2f} {pct(values, 95):7.2f} {pct(values, 99):7.2f}")
    print(
        f"  ratio    {pct(p, 50) / pct(d, 50):7.2f} {pct(p, 95) / pct(d, 95):7.2f} {pct(p, 99) / pct(d, 99):7.2f}"
        "   (targets: p50 <= 1.5, p99 <= 2.0)"
    )
    for label, tool, arguments, per in (
        ("fast upstream", "add", {"a": 1, "b": 2}, 40),
        ("50 ms upstream", "sleep_ms", {"ms": 50}, 10),
    ):
        d_rate, d_med = await throughput(lambda: Session(upstream_url), 32, per, tool, arguments)
        p_rate, p_med = await throughput(lambda: Session(server.mcp_url(connector_id), key), 32, per, tool, arguments)
        print(f"32 concurrent clients, {label}:")
        print(f"  direct  {d_rate:8.1f} calls/s   median {d_med:7.2f} ms")
        print(f"  proxied {p_rate:8.1f} calls/s   median {p_med:7.2f} ms   (added median {p_med - d_med:+.2f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes for Runlayer")
    args = parser.parse_args()
    with (
        demo_server(json_response=True) as upstream_url,
        runlayer_server(workers=args.workers, env={"RUNLAYER_CACHE_CHECK_SECONDS": "0.2"}) as server,
    ):
        connector_id = server.create_connector(url=upstream_url, users=["alice"], name="bench")
        asyncio.run(main_async(server, upstream_url, connector_id, args))
        events = server.audit(wait_for=1, action_type="tool_call_success")
        print(f"audit: tool_call_success events recorded (latest page): {len(events)}")


if __name__ == "__main__":
    main()
