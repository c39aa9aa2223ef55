"""The first calls of ``runlayer run``, with the standard library only: they run before the MCP SDK (about a
second of imports) is loaded, so the local server can already be starting while the SDK loads."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

from . import __version__
from .errors import FAILURE, NOT_FOUND, NOT_LOGGED_IN, UNREACHABLE, CliError


def get_json(host: str, key: str, path: str, params: dict[str, str] | None = None) -> Any:
    url = f"{host}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    request = urllib.request.Request(
        url,
        headers={
            "x-runlayer-api-key": key,
            "User-Agent": f"Runlayer CLI (self-hosted {__version__})",
            "X-Runlayer-Client": "cli",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail") or f"HTTP {exc.code}"
        except (ValueError, AttributeError):
            detail = f"HTTP {exc.code}"
        if exc.code == 401:
            raise CliError(f"{host} refused the API key ({detail})", NOT_LOGGED_IN) from None
        if exc.code in (403, 404):
            raise CliError(str(detail), NOT_FOUND) from None
        raise CliError(f"{host} answered {exc.code}: {detail}", FAILURE) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(
            f"cannot reach Runlayer at {host} ({type(reason).__name__}); is the server running?", UNREACHABLE
        ) from None


def server_details(host: str, key: str, target: str) -> tuple[str, dict[str, Any]]:
    """(connector id, its details) for an id or an alias (slug, name, catalog entry)."""
    try:
        server_id = str(uuid.UUID(target))
    except ValueError:
        server_id = get_json(host, key, "/api/v1/local/resolve", {"target": target})["server_id"]
    return server_id, get_json(host, key, f"/api/v1/local/{server_id}")
