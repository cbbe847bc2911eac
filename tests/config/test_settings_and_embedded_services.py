"""The frame: settings from the environment (production refuses to start without a secret), and the embedded
PostgreSQL and Redis that `make run` and `make test` start on a bare machine. (Import boundaries: test_boundaries.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def test_production_settings_require_a_secret_key_from_the_environment():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
    code = "import django; django.setup()"
    missing = subprocess.run([PYTHON, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert missing.returncode != 0 and "DJANGO_SECRET_KEY" in missing.stderr
    env["DJANGO_SECRET_KEY"] = "x" * 50
    check = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.WEBHOOKS_ALLOW_PRIVATE_NETWORKS, s.DEBUG)"
    )
    ok = subprocess.run([PYTHON, "-c", check], cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().splitlines()[-1] == "False False"


def test_settings_come_from_the_environment():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_SECRET_KEY": "from-env",
        "DATABASE_URL": "postgres://u:p@db.example:6543/payments",
        "REDIS_URL": "redis://cache.example:6380/3",
    }
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "d = s.DATABASES['default']; print(s.SECRET_KEY, d['HOST'], d['PORT'], d['NAME'], s.CELERY_BROKER_URL)"
    )
    out = subprocess.run([PYTHON, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["from-env", "db.example", "6543", "payments", "redis://cache.example:6380/3"]


def test_unix_socket_redis_urls_become_kombu_socket_urls():
    from config.settings.base import _celery_broker_url

    assert _celery_broker_url("unix:///tmp/r.sock?db=2") == "redis+socket:///tmp/r.sock?virtual_host=2"
    assert _celery_broker_url("redis://h:1/0") == "redis://h:1/0"


@pytest.mark.slow
def test_embedded_postgres_and_redis_start_answer_and_stop(tmp_path: Path):
    """What `make run` uses on a machine with no DATABASE_URL/REDIS_URL: real servers from pip packages."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["CLEARHOUSE_DATA_DIR"] = str(data)
    script = (
        "from config import embedded; import psycopg, redis; s = embedded.ensure(); "
        "print(psycopg.connect(s.database_url).execute('select current_database()').fetchone()[0]); "
        "print(redis.Redis.from_url(s.redis_url).ping()); embedded.stop()"
    )
    out = subprocess.run([PYTHON, "-c", script], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["clearhouse", "True"]
    assert (data / "postgres" / "PG_VERSION").exists()
    assert not (data / "postgres" / "postmaster.pid").exists()  # stopped
