"""The development stack behind `make run` and `make test` (run with `.venv/bin/python -m config.devstack …`).

`run`: uses the PostgreSQL and Redis named by DATABASE_URL/REDIS_URL, or starts the embedded ones
(config/embedded.py); migrates; on the first start creates a demo merchant and an admin user and prints their
credentials (also kept in `.data/demo.json`); then runs, each in its own process group:

- gunicorn with the API and admin on http://127.0.0.1:8000 (PORT);
- a Celery worker and Celery beat (the outbox drain and its periodic sweep);
- the sandbox acquirer on http://127.0.0.1:8001 (SANDBOX_PORT).

Ctrl-C (SIGINT) or SIGTERM stops them in order (beat, API, worker with a warm shutdown, acquirer) and then the
embedded servers it started. If any process dies on its own, the rest are stopped and the exit status is 1.

`test [pytest args…]`: runs pytest against DATABASE_URL/REDIS_URL, or the embedded servers when those are unset.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from config import embedded

BASE_DIR = embedded.BASE_DIR
VENV_BIN = Path(sys.executable).parent
DEMO_FILE = embedded.DATA_DIR / "demo.json"


def _say(text: str) -> None:
    print(f"[clearhouse] {text}", flush=True)


def _manage(*args: str, capture: bool = False) -> str:
    result = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        check=True,
        cwd=BASE_DIR,
        text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    return result.stdout or ""


def _first_start() -> dict[str, str]:
    if DEMO_FILE.exists():
        return json.loads(DEMO_FILE.read_text())
    merchant = json.loads(_manage("create_merchant", "Demo Merchant", capture=True).strip().splitlines()[-1])
    password = secrets.token_urlsafe(12)
    _manage(
        "shell",
        "-v",
        "0",
        "-c",
        "from django.contrib.auth import get_user_model; U = get_user_model(); "
        f"U.objects.filter(username='admin').exists() or U.objects.create_superuser('admin', '', '{password}')",
    )
    demo = {
        "merchant_id": merchant["id"],
        "api_key": merchant["api_key"],
        "admin_user": "admin",
        "admin_password": password,
    }
    DEMO_FILE.write_text(json.dumps(demo, indent=2) + "\n")
    DEMO_FILE.chmod(0o600)
    demo["first_start"] = "yes"
    return demo


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local URL)
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


class Stack:
    """The child processes of `run`, each in its own session so a terminal Ctrl-C reaches only us."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        """Start `argv` as child `name`."""
        proc = subprocess.Popen(argv, cwd=BASE_DIR, env=env, start_new_session=True)
        self.children.append((name, proc))

    def dead_child(self) -> str | None:
        """The name of a child that has exited, if any."""
        for name, proc in self.children:
            if proc.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        """SIGTERM each child in start order reversed (warm shutdowns), SIGKILL whatever lingers after 20 s."""
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                _say(f"stopping {name}")
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def run() -> int:
    """`make run`: start the whole stack and block until Ctrl-C. Returns the exit status."""
    started_embedded = embedded.export_environment() is not None
    if started_embedded:
        _say(f"using embedded PostgreSQL and Redis (data in {embedded.DATA_DIR})")
    else:
        _say("using DATABASE_URL and REDIS_URL from the environment")
    embedded.DATA_DIR.mkdir(parents=True, exist_ok=True)
    port = os.environ.get("PORT", "8000")
    sandbox_port = os.environ.get("SANDBOX_PORT", "8001")
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env.setdefault("SANDBOX_ACQUIRER_URL", f"http://127.0.0.1:{sandbox_port}")
    env.setdefault("SANDBOX_ACQUIRER_DB", str(embedded.DATA_DIR / "sandbox_acquirer.sqlite3"))
    prometheus_dir = embedded.DATA_DIR / "prometheus"
    prometheus_dir.mkdir(exist_ok=True)
    for stale in prometheus_dir.glob("*.db"):
        stale.unlink()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(prometheus_dir)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE",)})

    _say("applying migrations")
    _manage("migrate", "--noinput", "-v", "0")
    demo = _first_start()

    stack = Stack()
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    bin_ = str(VENV_BIN)
    stack.start(
        "sandbox acquirer",
        [
            f"{bin_}/gunicorn",
            "sandbox_acquirer.app:application",
            "--bind",
            f"127.0.0.1:{sandbox_port}",
            "--worker-class",
            "gthread",
            "--workers",
            "1",
            "--threads",
            "32",
            "--timeout",
            "120",
            "--log-level",
            "warning",
        ],
        env,
    )
    stack.start(
        "celery worker",
        [
            f"{bin_}/celery",
            "-A",
            "config",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            os.environ.get("CELERY_CONCURRENCY", "2"),
            "--without-gossip",
            "--without-mingle",
        ],
        env,
    )
    stack.start(
        "api",
        [
            f"{bin_}/gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--workers",
            os.environ.get("WEB_CONCURRENCY", "2"),
            "--threads",
            "4",
            "--timeout",
            "60",
            "--graceful-timeout",
            "15",
            "--log-level",
            "warning",
        ],
        env,
    )
    stack.start(
        "celery beat",
        [
            f"{bin_}/celery",
            "-A",
            "config",
            "beat",
            "--loglevel",
            "WARNING",
            "--schedule",
            str(embedded.DATA_DIR / "celerybeat-schedule"),
        ],
        env,
    )

    ready = _wait_http(f"http://127.0.0.1:{port}/readyz", 60) and _wait_http(
        f"http://127.0.0.1:{sandbox_port}/healthz", 30
    )
    status = 0
    if not ready:
        _say("the stack did not become ready; stopping")
        stopping, status = True, 1
    else:
        lines = [
            "",
            "Clearhouse is running.",
            f"  API               http://127.0.0.1:{port}/v1",
            f"  Admin             http://127.0.0.1:{port}/admin/   (user {demo['admin_user']}, "
            f"password {demo['admin_password']})",
            f"  Metrics           http://127.0.0.1:{port}/metrics",
            f"  Sandbox acquirer  http://127.0.0.1:{sandbox_port}",
            f"  Demo merchant     {demo['merchant_id']}",
            f"  Test API key      {demo['api_key']}",
            f"  (kept in {DEMO_FILE.relative_to(BASE_DIR) if DEMO_FILE.is_relative_to(BASE_DIR) else DEMO_FILE};"
            " try: export KEY=$(.venv/bin/python -m config.devstack key))",
            "Press Ctrl-C to stop.",
            "",
        ]
        print("\n".join(lines), flush=True)

    while not stopping:
        dead = stack.dead_child()
        if dead:
            _say(f"{dead} exited unexpectedly; stopping the stack")
            status = 1
            break
        time.sleep(0.5)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stack.stop()
    if started_embedded:
        _say("stopping embedded PostgreSQL and Redis")
        embedded.stop()
    _say("stopped")
    return status


def test(args: list[str]) -> int:
    """`make test`: pytest against the configured or embedded services. Returns pytest's exit status."""
    if embedded.export_environment() is not None:
        _say(f"testing against embedded PostgreSQL and Redis (data in {embedded.DATA_DIR})")
    return subprocess.call([sys.executable, "-m", "pytest", *args], cwd=BASE_DIR)


def key() -> int:
    """Print the demo merchant's test API key (from `.data/demo.json`)."""
    if not DEMO_FILE.exists():
        print("no demo merchant yet: run `make run` first", file=sys.stderr)
        return 1
    print(json.loads(DEMO_FILE.read_text())["api_key"])
    return 0


def main(argv: list[str]) -> int:
    """Dispatch `run`, `test [args…]`, `key`, `services` (print the URLs) or `stop-services`."""
    command = argv[0] if argv else "run"
    if command == "run":
        return run()
    if command == "test":
        return test(argv[1:])
    if command == "key":
        return key()
    if command == "services":
        services = embedded.ensure()
        print(f"export DATABASE_URL='{services.database_url}'\nexport REDIS_URL='{services.redis_url}'")
        return 0
    if command == "stop-services":
        embedded.stop()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
