from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from connectors.validation import is_loopback_host, validate_connector_config


def config(**overrides):
    base = {
        "name": "X",
        "deployment_mode": "hosted",
        "transport": "streaming-http",
        "url": "https://mcp.example.com/mcp",
        "args": [],
        "env": {},
        "headers": {},
        "inherit_env": [],
    }
    base.update(overrides)
    return base


def errors_of(**overrides) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        validate_connector_config(config(**overrides))
    return info.value.message_dict


def test_valid_hosted_and_local_configs_pass():
    validate_connector_config(config())
    validate_connector_config(config(deployment_mode="local", transport="stdio", url="uvx", args=["mcp-server-time"]))
    validate_connector_config(config(deployment_mode="local", transport="sse", url="http://127.0.0.1:3000/sse"))
    validate_connector_config(config(deployment_mode="local", transport="streaming-http", url="http://[::1]:3000/mcp"))


def test_stdio_needs_a_command():
    assert "url" in errors_of(deployment_mode="local", transport="stdio", url="  ")


def test_hosted_needs_http_url():
    assert "url" in errors_of(url="ftp://example.com/x")
    assert "url" in errors_of(url="")
    assert "url" in errors_of(url="https://user:pw@example.com/mcp")


def test_hosted_cannot_be_stdio():
    assert "transport_type" in errors_of(transport="stdio", url="uvx")


def test_local_http_must_be_loopback():
    messages = errors_of(deployment_mode="local", transport="streaming-http", url="http://10.0.0.5:3000/mcp")
    assert "loopback" in messages["url"][0]


@pytest.mark.parametrize(
    "field,value",
    [
        ("args", "not-a-list"),
        ("args", [1, 2]),
        ("env", {"BAD-NAME": "x"}),
        ("env", {"OK": 3}),
        ("headers", {"X-Test": "a\r\nInjected: yes"}),
        ("headers", {"Host": "evil"}),
        ("inherit_env", ["1BAD"]),
        ("name", ""),
        ("deployment_mode", "cloud"),
        ("status", "maybe"),
    ],
)
def test_bad_values_name_the_field(field, value):
    assert field in errors_of(**{field: value}) or (
        field == "transport" and "transport_type" in errors_of(**{field: value})
    )


@pytest.mark.parametrize(
    "host,expected",
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("10.0.0.1", False),
        (None, False),
        ("example.com", False),
    ],
)
def test_loopback(host, expected):
    assert is_loopback_host(host) is expected
