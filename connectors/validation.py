"""Validation of connector configuration, shared by the services, the admin forms and the API."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlparse

from django.core.exceptions import ValidationError

from .models import ConnectorStatus, DeploymentMode, Transport

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers the gateway owns: a connector may not set them.
RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "mcp-session-id"}


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_http_url(url: str) -> str | None:
    if not url:
        return "a URL is required for an HTTP or SSE server"
    if len(url) > 2000:
        return "the URL is longer than 2000 characters"
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return "must be an http:// or https:// URL with a host"
    if parsed.username or parsed.password:
        return "must not carry credentials; put them in a header instead"
    if any(ch.isspace() for ch in url):
        return "must not contain white space"
    return None


def _check_string_list(value: Any, *, what: str, pattern: re.Pattern[str] | None = None) -> list[str]:
    errors: list[str] = []
    if not isinstance(value, list):
        return [f"{what} must be a list of strings"]
    for item in value:
        if not isinstance(item, str):
            errors.append(f"{what} must contain only strings, got {type(item).__name__}")
        elif "\x00" in item:
            errors.append(f"{what} must not contain NUL characters")
        elif pattern is not None and not pattern.match(item):
            errors.append(f"{item!r} is not a valid environment variable name")
    return errors


def _check_mapping(value: Any, *, what: str, key_pattern: re.Pattern[str], key_label: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{what} must be an object mapping names to string values"]
    errors: list[str] = []
    for key, item in value.items():
        if not isinstance(key, str) or not key_pattern.match(key):
            errors.append(f"{key!r} is not a valid {key_label}")
        if not isinstance(item, str):
            errors.append(f"the value of {key!r} must be a string")
        elif "\x00" in item or "\r" in item or "\n" in item:
            errors.append(f"the value of {key!r} must not contain line breaks or NUL characters")
    return errors


def validate_connector_config(config: dict[str, Any]) -> None:
    """Raise ``ValidationError`` (a field → messages mapping) unless the configuration can be run."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    name = config.get("name")
    if not isinstance(name, str) or not name.strip():
        add("name", "a name is required")
    elif len(name) > 200:
        add("name", "must be at most 200 characters")

    status = config.get("status", ConnectorStatus.DRAFT)
    if status not in ConnectorStatus.values:
        add("status", f"must be one of {', '.join(ConnectorStatus.values)}")

    mode = config.get("deployment_mode")
    transport = config.get("transport")
    if mode not in DeploymentMode.values:
        add("deployment_mode", f"must be one of {', '.join(DeploymentMode.values)}")
    if transport not in Transport.values:
        add("transport_type", f"must be one of {', '.join(Transport.values)}")

    url = config.get("url") or ""
    if not isinstance(url, str):
        add("url", "must be a string")
        url = ""

    if mode == DeploymentMode.HOSTED and transport == Transport.STDIO:
        add("transport_type", "a hosted connector is reached over HTTP: use streaming-http or sse")
    elif transport == Transport.STDIO:
        command = url.strip()
        if not command:
            add("url", "a stdio connector needs the command to launch")
        elif "\x00" in command or "\n" in command or "\r" in command:
            add("url", "the command must be a single line")
        elif len(command) > 2000:
            add("url", "the command is longer than 2000 characters")
    elif transport in (Transport.SSE, Transport.STREAMING_HTTP):
        problem = _check_http_url(url)
        if problem:
            add("url", problem)
        elif mode == DeploymentMode.LOCAL and not is_loopback_host(urlparse(url).hostname):
            add("url", "a local HTTP or SSE server must listen on loopback (localhost, 127.0.0.1 or ::1)")

    for problem in _check_string_list(config.get("args", []), what="args"):
        add("args", problem)
    for problem in _check_string_list(config.get("inherit_env", []), what="inherit_env", pattern=ENV_NAME):
        add("inherit_env", problem)
    for problem in _check_mapping(config.get("env", {}), what="env", key_pattern=ENV_NAME, key_label="variable name"):
        add("env", problem)
    headers = config.get("headers", {})
    for problem in _check_mapping(headers, what="headers", key_pattern=HEADER_NAME, key_label="header name"):
        add("headers", problem)
    if isinstance(headers, dict):
        for key in headers:
            if isinstance(key, str) and key.lower() in RESERVED_HEADERS:
                add("headers", f"{key!r} is set by the gateway and cannot be configured")
    if transport == Transport.STDIO and isinstance(headers, dict) and headers:
        add("headers", "a stdio connector has no HTTP headers")

    icon_url = config.get("icon_url") or ""
    if icon_url and _check_http_url(icon_url):
        add("icon_url", "must be an http:// or https:// URL")

    if errors:
        raise ValidationError(errors)
