"""What ``runlayer run`` sets up before the MCP SDK is imported: the local server's environment and the log."""

from __future__ import annotations

import logging
import os
from typing import Any, TextIO

SDK_DEFAULT_ENV = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER")
ALLOWED_ENV = (
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
    "LANG", "LC_ALL", "TMPDIR",
)  # fmt: skip


def child_env(config: dict[str, Any], environ: dict[str, str], pass_env: list[str], warn) -> dict[str, str]:
    """The local MCP's environment: the SDK's default set, proxy/TLS/locale variables, the connector's
    ``env`` and ``inherit_env``, and the user's own values for the names the connector declares (or that
    ``--pass-env`` names). An empty value never replaces a real one; both cases are reported."""
    env = {name: environ[name] for name in (*SDK_DEFAULT_ENV, *ALLOWED_ENV) if name in environ}
    declared = config.get("env") if isinstance(config.get("env"), dict) else {}
    for name, value in declared.items():
        if isinstance(name, str) and isinstance(value, str):
            env[name] = value
    inherit = [n for n in config.get("inherit_env") or [] if isinstance(n, str)]
    for name in dict.fromkeys([*inherit, *declared, *pass_env]):
        if name.upper().startswith("RUNLAYER_"):
            warn(f"{name} is never passed to a local MCP server (Runlayer's own settings stay with the CLI)")
            env.pop(name, None)
            continue
        value = environ.get(name)
        if value is None:
            if env.get(name) == "":
                warn(f"{name} is empty: set it in this server's \"env\" in your AI client's MCP config")
            continue
        if value == "" and env.get(name):
            warn(f"ignoring the empty {name} from your environment: the connector's value is kept")
            continue
        if value == "":
            warn(f"{name} is empty")
        env[name] = value
    return env


def log_file_for(server_id: str) -> str:
    from .config import config_dir

    directory = config_dir() / "logs"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return str(directory / f"run-{server_id}.log")


def configure_logging(path: str) -> TextIO:
    handle = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    logging.basicConfig(
        stream=handle,
        level=os.environ.get("RUNLAYER_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(message)s",
    )
    return handle
