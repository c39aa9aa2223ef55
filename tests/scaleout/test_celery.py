"""Real Celery processes: a worker and the scheduler, on the embedded broker or on Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.support import ROOT, _database_url_for_server, demo_server

pytestmark = pytest.mark.slow


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["RUNLAYER_DATA_DIR"] = str(data_dir)
    database_url = _database_url_for_server()
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def count_tools(env: dict[str, str]) -> int:
    out = manage(
        env,
        "shell",
        "-c",
        "from connectors.models import ConnectorCapability as C; print('N', C.objects.filter(kind='tool').count())",
    )
    return int(out.split("N ", 1)[1].split()[0])


def test_worker_and_scheduler_sync_capabilities_through_the_broker():
    data_dir = Path(tempfile.mkdtemp(prefix="runlayer-celery-"))
    env = {**_env(data_dir), "RUNLAYER_CAPABILITY_SYNC_SECONDS": "1"}
    manage(env, "migrate", "-v0")
    broker = "Redis" if env.get("REDIS_URL") else "SQLAlchemy/SQLite"
    with demo_server(json_response=True) as url:
        manage(
            env,
            "shell",
            "-c",
            "from connectors.services import connector_create;"
            "connector_create(actor=None, name='celery', deployment_mode='hosted', transport='streaming-http',"
            f" url='{url}', status='active')",
        )
        log = open(data_dir / "celery.log", "wb")
        celery = [sys.executable, "-m", "celery", "-A", "runlayer"]
        worker = subprocess.Popen(
            [*celery, "worker", "--pool", "threads", "-c", "2", "--loglevel", "INFO"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        beat = subprocess.Popen(
            [*celery, "beat", "--loglevel", "INFO", "-s", str(data_dir / "beat-schedule")],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and count_tools(env) == 0:
                time.sleep(0.5)
            tools = count_tools(env)
        finally:
            for proc in (beat, worker):
                proc.terminate()
            for proc in (beat, worker):
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.close()
    output = (data_dir / "celery.log").read_text(errors="replace")
    assert tools == 6, f"no sync through the {broker} broker:\n{output[-3000:]}"
    assert "sync_all_hosted_capabilities" in output and "connectors.tasks.sync_capabilities" in output


@pytest.mark.scaleout
def test_scale_out_settings_use_postgres_and_redis(settings):
    if not (os.environ.get("REDIS_URL") and os.environ.get("DATABASE_URL", "").startswith("postgres")):
        pytest.skip("the scale-out pass sets DATABASE_URL (PostgreSQL) and REDIS_URL")
    from django.core.cache import cache
    from django.db import connection

    assert connection.vendor == "postgresql"
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    cache.set("runlayer-scaleout-probe", "ok", 10)
    assert cache.get("runlayer-scaleout-probe") == "ok"
    assert "RedisCache" in settings.CACHES["default"]["BACKEND"]
