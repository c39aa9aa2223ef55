"""The ``runlayer`` command line."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import webbrowser
from pathlib import Path
from typing import Any

from . import __version__, config
from .errors import EXIT_CODES_HELP, FAILURE, NOT_FOUND, NOT_LOGGED_IN, USAGE, CliError

EXAMPLES = """examples:
  runlayer login --host https://runlayer.example.com
  runlayer whoami
  runlayer run 6f1c2a7e-0000-4000-8000-000000000001      (what an AI client launches)
  runlayer run github --host https://runlayer.example.com
  runlayer setup cursor                  write all your connectors into Cursor's mcp.json
  runlayer setup claude-desktop --print  show the entries instead of writing them
  runlayer logs --type security --limit 20
  runlayer logs --server-id ID --start 2026-11-01 --json
"""

LOG_TYPES = {
    "tools": ["tool_call_success", "tool_call_failure"],
    "security": ["security_violation", "access_denied", "security_decision"],
    "auth": ["auth_success", "auth_failed", "proxy_oauth_token_issued", "proxy_oauth_authorization_failed"],
    "servers": [
        "server_created", "server_updated", "server_deleted", "server_approved", "server_rejected",
        "server_disabled", "server_enabled",
    ],
    "requests": ["access_request_created", "access_request_approved", "access_request_rejected"],
    "agents": ["agent_created", "agent_updated", "agent_deleted", "agent_account_created"],
}  # fmt: skip


def _api(args, *, need_key: bool = True):
    from .api import Api

    host, key = config.resolve(getattr(args, "host", None), getattr(args, "secret", None), need_key=need_key)
    return Api(host, key or None)


# -- login / logout / whoami -------------------------------------------------------------------------
def cmd_login(args) -> int:
    if not args.host and not config.load().get("default_host"):
        raise CliError("pass --host URL (the address of your Runlayer server)", USAGE)
    api = _api(args, need_key=False)
    start = api.request("POST", "/api/v1/cli/device/authorize", json={"device_name": socket.gethostname()})
    from .api import check

    grant = check(start, api.host)
    print(f"To sign in, open {grant['verification_uri']} and enter the code {grant['user_code']}", file=sys.stderr)
    if not args.no_browser:
        try:
            webbrowser.open(grant["verification_uri_complete"])
        except Exception:
            pass
    interval = max(int(grant.get("interval", 5)), 1)
    deadline = time.monotonic() + int(grant.get("expires_in", 600))
    while time.monotonic() < deadline:
        time.sleep(interval)
        response = api.request("POST", "/api/v1/cli/device/token", json={"device_code": grant["device_code"]})
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code == 200 and body.get("api_key"):
            where = config.store_key(api.host, body["api_key"])
            from .api import Api

            me = Api(api.host, body["api_key"]).get("/api/v1/users/me")
            print(f"Logged in to {api.host} as {me.get('username') or me.get('email')} (key stored in {where}).")
            return 0
        if response.status_code == 202:
            if body.get("detail") == "slow_down":
                interval += 1
            continue
        raise CliError(f"login failed: {body.get('detail') or f'HTTP {response.status_code}'}", NOT_LOGGED_IN)
    raise CliError("login timed out: the code expired before it was approved", NOT_LOGGED_IN)


def cmd_logout(args) -> int:
    host = args.host or config.load().get("default_host")
    if not host:
        print("Not logged in anywhere.")
        return 0
    host = config.normalize_host(host)
    forgotten = config.forget_key(host)
    print(f"Logged out of {host}." if forgotten else f"No key was stored for {host}.")
    return 0


def cmd_whoami(args) -> int:
    api = _api(args)
    me = api.get("/api/v1/users/me")
    if args.json:
        print(json.dumps({"host": api.host, **me}, indent=2))
        return 0
    role = "admin" if me.get("is_admin") else "user"
    print(f"{me.get('username')} <{me.get('email', '')}> ({role}) on {api.host}")
    return 0


# -- run -----------------------------------------------------------------------------------------------
def cmd_run(args) -> int:
    import anyio

    from .bootstrap import server_details
    from .child import ChildProcess
    from .runenv import child_env, configure_logging, log_file_for

    host, key = config.resolve(args.host, args.secret)
    server_id, details = server_details(host, key, args.target)
    log_path = log_file_for(server_id)
    errlog = configure_logging(log_path)
    print(f"runlayer: serving {details.get('name')} (log: {log_path})", file=sys.stderr, flush=True)
    env = child_env(details.get("transport_config") or {}, dict(os.environ), args.pass_env or [], config.warn)

    async def main() -> int:
        child = None
        if details.get("transport_type") == "stdio":
            arguments = [str(a) for a in (details.get("transport_config") or {}).get("args") or []]
            try:  # started now, so its start-up overlaps the SDK's import below
                child = await ChildProcess.spawn(details["url"], arguments, env, errlog)
            except OSError as exc:
                config.warn(f"cannot start {details.get('url')!r}: {exc}")
        from .api import AsyncApi
        from .proxy import serve

        api = AsyncApi(host, key)
        try:
            await serve(api, server_id, details, env, errlog, child)
        finally:
            await api.aclose()
        return 0

    return anyio.run(main)


# -- setup ---------------------------------------------------------------------------------------------
def cmd_setup(args) -> int:
    from .setup_clients import default_config_path, entries_for, merge, write

    api = _api(args)
    if args.server:
        ids = args.server
    else:
        listing = api.get("/api/v1/servers", params={"scope": "accessible", "limit": 500})
        ids = [s["id"] for s in listing["data"] if s.get("status") in (None, "active")]
        if not ids:
            raise CliError("no connectors are available to you yet; ask an admin or request access", NOT_FOUND)
    materials = [api.get(f"/api/v1/servers/{server_id}/install") for server_id in ids]
    key = config.resolve(args.host, args.secret)[1]
    entries = entries_for(args.client, materials, key)
    path = Path(args.config).expanduser() if args.config else default_config_path(args.client)
    text, _ = merge(path, args.client, entries)
    if args.print:
        print(json.dumps(entries, indent=2))
        return 0
    backup = write(path, text)
    names = ", ".join(sorted(entries))
    if backup is None:
        print(f"{path} is already up to date ({names}).")
    else:
        kept = f"; the previous file is kept as {backup}" if backup else ""
        print(f"Wrote {len(entries)} server(s) to {path}: {names}{kept}. Restart {args.client} to load them.")
    return 0


# -- logs ----------------------------------------------------------------------------------------------
def cmd_logs(args) -> int:
    api = _api(args)
    params: dict[str, Any] = {"limit": args.limit}
    if args.type:
        types: list[str] = []
        for part in args.type.split(","):
            part = part.strip()
            types.extend(LOG_TYPES.get(part, [part]) if part else [])
        params["action_type"] = ",".join(types)
    for name in ("server_id", "start", "end"):
        value = getattr(args, name)
        if value:
            params[{"start": "start_date", "end": "end_date"}.get(name, name)] = value
    events = api.get("/api/v1/auditlogs", params=params)["data"]
    if args.json:
        print(json.dumps(events, indent=2))
        return 0
    if not events:
        print("No matching audit events.")
        return 0
    rows = [("TIME", "ACTION", "ACTOR", "SERVER", "ITEM", "DETAIL")]
    for e in events:
        details = e.get("details") or {}
        actor = (e.get("actor_info") or {}).get("email") or (e.get("actor_info") or {}).get("name") or "-"
        item = (e.get("resource_info") or {}).get("name") or details.get("resource_name") or ""
        detail = details.get("reason") or details.get("violation_reason") or details.get("client_name") or ""
        stamp = str(e.get("timestamp", ""))[:19].replace("T", " ")
        rows.append((stamp, e.get("action_type", ""), actor, details.get("server_name", ""), item, str(detail)[:60]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row[:5], widths, strict=True)) + "  " + row[5])
    return 0


# -- parser --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="runlayer",
        description="Use MCP servers governed by your self-hosted Runlayer.",
        epilog=EXAMPLES + "\n" + EXIT_CODES_HELP,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"runlayer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str, examples: str):
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=examples, formatter_class=fmt)
        p.add_argument("--host", "-H", help="Runlayer base URL (default: the host you logged in to)")
        return p

    p = command("login", "Sign in with your browser (device code) and store an API key for the host.",
                "example:\n  runlayer login --host https://runlayer.example.com")  # fmt: skip
    p.add_argument("--no-browser", action="store_true", help="only print the address, do not open a browser")
    p.set_defaults(func=cmd_login)

    p = command("logout", "Forget the API key stored for the host.", "example:\n  runlayer logout")
    p.set_defaults(func=cmd_logout)

    p = command("whoami", "Show who the stored key belongs to.", "example:\n  runlayer whoami --json")
    p.add_argument("--secret", "-s", help="API key to use instead of the stored one")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_whoami)

    p = command(
        "run",
        "Serve a local MCP server to your AI client over stdio, governed by Runlayer.",
        "examples:\n  runlayer run 6f1c2a7e-0000-4000-8000-000000000001\n"
        "  runlayer run github --pass-env GITHUB_TOKEN\n\n"
        "The local MCP gets a minimal environment: PATH, HOME and the like, proxy/TLS/locale variables,\n"
        "the connector's env and inherit_env, and your own values for the names the connector declares\n"
        "or --pass-env names (set them in the server's \"env\" in your AI client's config).",
    )
    p.add_argument("target", help="connector id, or its slug or name")
    p.add_argument("--secret", "-s", help="API key to use instead of the stored one")
    p.add_argument("--pass-env", action="append", metavar="NAME", help="pass this variable to the local MCP")
    p.set_defaults(func=cmd_run)

    p = command(
        "setup",
        "Write your connectors into an AI client's MCP config (keeps other entries, backs up the file).",
        "examples:\n  runlayer setup cursor\n  runlayer setup vscode --server ID --server ID2\n"
        "  runlayer setup claude-desktop --print",
    )
    p.add_argument("client", choices=["claude-desktop", "claude-code", "cursor", "vscode"])
    p.add_argument("--server", action="append", metavar="ID", help="only these connectors (default: all yours)")
    p.add_argument("--config", help="the client's config file (default: its usual place)")
    p.add_argument("--print", action="store_true", help="show the entries instead of writing them")
    p.add_argument("--secret", "-s", help="API key to use instead of the stored one")
    p.set_defaults(func=cmd_setup)

    p = command(
        "logs",
        "Show audit events (yours; admins see everyone's).",
        "examples:\n  runlayer logs --type tools,security --limit 50\n  runlayer logs --server-id ID --json\n\n"
        "types: " + ", ".join(LOG_TYPES) + " (or any action type, e.g. access_denied)",
    )
    p.add_argument("--type", help="comma-separated: " + ",".join(LOG_TYPES))
    p.add_argument("--server-id", help="only this connector")
    p.add_argument("--start", help="from this ISO-8601 date or time")
    p.add_argument("--end", help="until this ISO-8601 date or time")
    p.add_argument("--limit", type=int, default=50, help="at most this many events (max 2000)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--secret", "-s", help="API key to use instead of the stored one")
    p.set_defaults(func=cmd_logs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return USAGE
    try:
        return args.func(args)
    except CliError as exc:
        print(f"runlayer: {exc.message}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return FAILURE


if __name__ == "__main__":
    sys.exit(main())
