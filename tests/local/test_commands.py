"""The CLI's other commands as a user runs them: login (device flow, approved in the web page), whoami,
logout, setup and logs, against a real server."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import time

import httpx

from .conftest import RUNLAYER, cli_env


def _cli(tmp_path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([RUNLAYER, *args], env=cli_env(tmp_path), capture_output=True, text=True, timeout=timeout)


def _approve_in_browser(server, username: str, user_code: str) -> None:
    """Sign in through the login form and approve the code, as a person in a browser would."""
    with httpx.Client(base_url=server.url, follow_redirects=True, timeout=30) as browser:
        login_page = browser.get("/accounts/login/?next=/device")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
        signed_in = browser.post(
            "/accounts/login/?next=/device",
            data={"username": username, "password": f"pw-{username}", "csrfmiddlewaretoken": token},
        )
        assert signed_in.status_code == 200 and "Sign in a device" in signed_in.text
        confirm = browser.get("/device", params={"code": user_code})
        assert user_code in confirm.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', confirm.text).group(1)
        done = browser.post("/device", data={"code": user_code, "decision": "approve", "csrfmiddlewaretoken": token})
        assert "Approved" in done.text


def test_login_whoami_logout(server, tmp_path):
    proc = subprocess.Popen(
        [RUNLAYER, "login", "--host", server.url, "--no-browser"],
        env=cli_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stderr.readline()
    code = re.search(r"enter the code (\S+)", line).group(1)
    assert f"{server.url}/device" in line
    _approve_in_browser(server, "alice", code)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Logged in" in out and "alice" in out

    stored = tmp_path / ".runlayer" / "config.yaml"
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600  # no keychain here: the 0600 file
    who = _cli(tmp_path, "whoami")
    assert who.returncode == 0 and who.stdout.startswith("alice <alice@example.com>")
    keys = server.api("GET", "/api/v1/api-keys", user="alice").json()
    assert any(k["name"].startswith("CLI on ") for k in keys["data"])

    assert _cli(tmp_path, "logout").returncode == 0
    after = _cli(tmp_path, "whoami")
    assert after.returncode == 3 and "runlayer login" in after.stderr


def test_setup_writes_merges_and_backs_up(server, local_connector, tmp_path):
    hosted = server.create_connector(url="http://127.0.0.1:9/mcp", users=["alice"], name="hosted-for-setup")
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"mine": {"command": "my-own-server"}}, "theme": "dark"}))
    key = server.keys["alice"]
    args = ["setup", "cursor", "--host", server.url, "--secret", key, "--config", str(path)]

    shown = _cli(tmp_path, *args, "--print")
    assert shown.returncode == 0 and "demo-local" in shown.stdout
    assert json.loads(path.read_text())["mcpServers"].keys() == {"mine"}  # --print writes nothing

    first = _cli(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    config = json.loads(path.read_text())
    assert config["theme"] == "dark" and config["mcpServers"]["mine"] == {"command": "my-own-server"}
    local = config["mcpServers"]["demo-local"]
    assert local["args"] == ["run", local_connector, "--host", server.url]
    assert os.path.basename(local["command"]) == "runlayer"
    remote = config["mcpServers"]["hosted-for-setup"]
    assert remote["url"] == f"{server.url}/api/v1/proxy/{hosted}/mcp" and remote["headers"]["x-runlayer-api-key"] == key
    assert json.loads((tmp_path / "mcp.json.bak").read_text())["mcpServers"].keys() == {"mine"}

    again = _cli(tmp_path, *args)
    assert again.returncode == 0 and "already up to date" in again.stdout

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    bad = _cli(tmp_path, "setup", "vscode", "--host", server.url, "--secret", key, "--config", str(broken))
    assert bad.returncode == 2 and "not valid JSON" in bad.stderr and broken.read_text() == "{not json"


def test_logs_table_and_json(server, local_connector, tmp_path):
    body = {"method": "tools/call", "params": {"name": "ghost-tool", "arguments": {}}}
    denied = server.api("POST", f"/api/v1/local/{local_connector}/pre", user="bob", json=body)
    assert denied.status_code == 200 and denied.json()["quick_tool_result"]
    deadline = time.monotonic() + 10
    while True:
        bob = ["--host", server.url, "--secret", server.keys["bob"]]
        out = _cli(tmp_path, "logs", *bob, "--type", "security", "--json")
        events = json.loads(out.stdout)
        if events or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert events and {e["action_type"] for e in events} == {"access_denied"}
    assert all(e["actor_info"]["email"] == "bob@example.com" for e in events)  # only bob's own
    table = _cli(tmp_path, "logs", "--host", server.url, "--secret", server.keys["bob"], "--limit", "5")
    assert table.returncode == 0 and table.stdout.startswith("TIME") and "access_denied" in table.stdout
    assert "do not have access" in table.stdout
