"""Settings come from the environment and fail loudly on invalid values."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from tests.support import ROOT


def run_manage(*args: str, env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    base.update({"RUNLAYER_DATA_DIR": str(tmp_path)})
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "env,message",
    [
        ({"DEBUG": "maybe"}, "DEBUG must be a boolean"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY must be at least 32"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL is not a usable database URL"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL must be a redis://"),
        ({"RUNLAYER_ENCRYPTION_KEY": "not-a-key"}, "RUNLAYER_ENCRYPTION_KEY must be"),
        ({"RUNLAYER_PUBLIC_URL": "localhost:8000"}, "RUNLAYER_PUBLIC_URL must be an http(s) URL"),
        ({"RUNLAYER_CAPABILITY_SYNC_SECONDS": "soon"}, "must be an integer"),
    ],
)
def test_invalid_values_fail_loudly(tmp_path, env, message):
    result = run_manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_settings_pass_check_deploy(tmp_path):
    env = {
        "SECRET_KEY": Fernet.generate_key().decode() * 2,
        "RUNLAYER_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "RUNLAYER_PUBLIC_URL": "https://runlayer.example.com",
        "SECURE_SSL_REDIRECT": "true",
        "DEBUG": "false",
    }
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_apikey_create_prints_only_the_key_on_stdout(tmp_path):
    assert run_manage("migrate", "-v0", env={}, tmp_path=tmp_path).returncode == 0
    created = run_manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; User.objects.create(username='sam')",
        env={},
        tmp_path=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    result = run_manage("apikey", "create", "--user", "sam", env={}, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rl_")
