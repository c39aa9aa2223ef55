"""Where the CLI keeps hosts and keys: the OS keychain when there is one, else a 0600 file.

``~/.runlayer/config.yaml`` (or ``$RUNLAYER_CONFIG_DIR/config.yaml``) holds the default host and, only
when no keychain is available, the keys themselves.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

from .errors import NOT_LOGGED_IN, USAGE, CliError

KEYRING_SERVICE = "runlayer"


def config_dir() -> Path:
    return Path(os.environ.get("RUNLAYER_CONFIG_DIR") or Path.home() / ".runlayer")


def _config_path() -> Path:
    return config_dir() / "config.yaml"


def load() -> dict[str, Any]:
    try:
        data = yaml.safe_load(_config_path().read_text()) or {}
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(f"cannot read {_config_path()}: {exc}") from None
    return data if isinstance(data, dict) else {}


def save(data: dict[str, Any]) -> None:
    path = _config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(data, handle, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def normalize_host(host: str) -> str:
    host = host.strip().rstrip("/")
    if not host.startswith(("http://", "https://")):
        raise CliError(f"--host must be a URL such as https://runlayer.example.com, not {host!r}", USAGE)
    return host


def _keyring():
    try:
        import keyring
        from keyring.backends.fail import Keyring as FailKeyring

        backend = keyring.get_keyring()
        if isinstance(backend, FailKeyring):
            return None
        return keyring
    except Exception:
        return None


def store_key(host: str, key: str) -> str:
    """Remember ``key`` for ``host`` and make it the default host; returns where it was stored."""
    data = load()
    hosts = data.setdefault("hosts", {})
    entry = hosts.setdefault(host, {})
    where = str(_config_path())
    ring = _keyring()
    if ring is not None:
        try:
            ring.set_password(KEYRING_SERVICE, host, key)
            entry.pop("api_key", None)
            entry["keychain"] = True
            where = "the OS keychain"
        except Exception:
            ring = None
    if ring is None:
        entry["api_key"] = key
        entry.pop("keychain", None)
    data["default_host"] = host
    save(data)
    return where


def forget_key(host: str) -> bool:
    data = load()
    entry = data.get("hosts", {}).pop(host, None)
    ring = _keyring()
    if ring is not None:
        try:
            ring.delete_password(KEYRING_SERVICE, host)
            entry = entry or {}
        except Exception:
            pass
    if data.get("default_host") == host:
        data.pop("default_host")
        remaining = list(data.get("hosts", {}))
        if remaining:
            data["default_host"] = remaining[0]
    save(data)
    return entry is not None


def resolve(host: str | None, secret: str | None, *, need_key: bool = True) -> tuple[str, str]:
    """(host, key) from the options, the environment, then the stored config."""
    data = load()
    host = host or os.environ.get("RUNLAYER_HOST") or data.get("default_host")
    if not host:
        raise CliError("no Runlayer host: pass --host URL or run `runlayer login --host URL` first", NOT_LOGGED_IN)
    host = normalize_host(host)
    key = secret or os.environ.get("RUNLAYER_API_KEY") or ""
    if not key:
        entry = data.get("hosts", {}).get(host, {})
        if entry.get("keychain"):
            ring = _keyring()
            key = (ring.get_password(KEYRING_SERVICE, host) if ring else None) or ""
        key = key or entry.get("api_key") or ""
    if need_key and not key:
        raise CliError(f"not logged in to {host}: run `runlayer login --host {host}` or pass --secret", NOT_LOGGED_IN)
    return host, key


def warn(message: str) -> None:
    print(f"runlayer: {message}", file=sys.stderr, flush=True)
