"""What a user pastes into (or clicks to open in) an MCP client to use a connector."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote, urlencode

from django.conf import settings

from .models import Connector

API_KEY_PLACEHOLDER = "<YOUR_RUNLAYER_API_KEY>"


def proxy_url(connector: Connector, base_url: str | None = None) -> str:
    return f"{(base_url or settings.PUBLIC_URL).rstrip('/')}/api/v1/proxy/{connector.id}/mcp"


def _entry_name(connector: Connector) -> str:
    return connector.slug


def install_material(
    connector: Connector, *, base_url: str | None = None, api_key: str | None = None
) -> dict[str, Any]:
    """Config entries for Claude Desktop, Claude Code, Cursor and VS Code, and Cursor/VS Code deep links.

    Hosted connectors point the client at the gateway URL with the user's API key in a header; local ones
    have the client launch ``runlayer run <id> --host <base>``, which reads the key stored by ``runlayer login``.
    """
    base = (base_url or settings.PUBLIC_URL).rstrip("/")
    key = api_key or API_KEY_PLACEHOLDER
    name = _entry_name(connector)
    if connector.is_hosted:
        url = proxy_url(connector, base)
        headers = {"x-runlayer-api-key": key}
        claude_desktop = {
            "command": "npx",
            "args": ["-y", "mcp-remote", url, "--header", f"x-runlayer-api-key:{key}"],
        }
        claude_code = {"type": "http", "url": url, "headers": headers}
        cursor = {"url": url, "headers": headers}
        vscode = {"type": "http", "url": url, "headers": headers}
        claude_code_command = f"claude mcp add --transport http {name} {url} --header 'x-runlayer-api-key: {key}'"
    else:
        stdio = {"command": "runlayer", "args": ["run", str(connector.id), "--host", base]}
        claude_desktop = dict(stdio)
        claude_code = {"type": "stdio", **stdio}
        cursor = dict(stdio)
        vscode = {"type": "stdio", **stdio}
        claude_code_command = f"claude mcp add {name} -- runlayer run {connector.id} --host {base}"

    cursor_link = "cursor://anysphere.cursor-deeplink/mcp/install?" + urlencode(
        {"name": name, "config": base64.b64encode(json.dumps(cursor).encode()).decode()}
    )
    vscode_link = "vscode:mcp/install?" + quote(json.dumps({"name": name, **vscode}, separators=(",", ":")))
    return {
        "server_id": str(connector.id),
        "name": connector.name,
        "entry_name": name,
        "deployment_mode": connector.deployment_mode,
        "proxy_url": proxy_url(connector, base) if connector.is_hosted else None,
        "clients": {
            "claude_desktop": {"config": {"mcpServers": {name: claude_desktop}}},
            "claude_code": {"config": {"mcpServers": {name: claude_code}}, "command": claude_code_command},
            "cursor": {"config": {"mcpServers": {name: cursor}}, "deeplink": cursor_link},
            "vscode": {"config": {"servers": {name: vscode}}, "deeplink": vscode_link},
        },
    }
