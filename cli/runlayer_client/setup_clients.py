"""``runlayer setup``: write the user's connectors into an AI client's MCP config, keeping everything else."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .errors import USAGE, CliError

API_KEY_PLACEHOLDER = "<YOUR_RUNLAYER_API_KEY>"
# client → (key in the server's install material, top-level key in the client's config file)
CLIENTS = {
    "claude-desktop": ("claude_desktop", "mcpServers"),
    "claude-code": ("claude_code", "mcpServers"),
    "cursor": ("cursor", "mcpServers"),
    "vscode": ("vscode", "servers"),
}


def _app_support(*parts: str) -> Path:
    home = Path.home()
    if sys.platform == "darwin":
        return home.joinpath("Library", "Application Support", *parts)
    if os.name == "nt":
        return Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming").joinpath(*parts)
    return Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config").joinpath(*parts)


def default_config_path(client: str) -> Path:
    if client == "claude-desktop":
        return _app_support("Claude", "claude_desktop_config.json")
    if client == "claude-code":
        return Path.home() / ".claude.json"
    if client == "cursor":
        return Path.home() / ".cursor" / "mcp.json"
    return _app_support("Code", "User", "mcp.json")


def runlayer_command() -> str:
    """The command an AI client should launch: this very executable when it can be found."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "runlayer" and argv0.exists():
        return str(argv0.resolve())
    return shutil.which("runlayer") or "runlayer"


def entries_for(client: str, materials: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """The config entries for ``client``, with the user's key in hosted entries and our command in local ones."""
    material_key, section = CLIENTS[client]
    command = runlayer_command()
    entries: dict[str, dict[str, Any]] = {}
    for material in materials:
        config = material["clients"][material_key]["config"][section]
        for name, entry in config.items():
            entry = json.loads(json.dumps(entry).replace(API_KEY_PLACEHOLDER, key))
            if entry.get("command") == "runlayer":
                entry["command"] = command
            entries[name] = entry
    return entries


def merge(path: Path, client: str, entries: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """(new file text, the parsed document); other entries and settings are kept as they are."""
    section = CLIENTS[client][1]
    document: dict[str, Any] = {}
    if path.exists():
        text = path.read_text() or "{}"
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise CliError(f"{path} is not valid JSON ({exc}); fix it or pass --config another file", USAGE) from None
        if not isinstance(document, dict):
            raise CliError(f"{path} does not hold a JSON object", USAGE)
    servers = document.get(section)
    if servers is None:
        servers = document[section] = {}
    if not isinstance(servers, dict):
        raise CliError(f"{path}: {section!r} is not an object", USAGE)
    servers.update(entries)
    return json.dumps(document, indent=2) + "\n", document


def write(path: Path, text: str) -> str | None:
    """Write ``text`` atomically, keeping the previous file as ``<name>.bak``; None when nothing changed."""
    if path.exists() and path.read_text() == text:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        shutil.copy2(path, backup)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    if path.exists():
        shutil.copymode(path, tmp)
    else:
        os.chmod(tmp, 0o600)  # it may hold an API key
    os.replace(tmp, path)
    return str(backup) if backup else ""
