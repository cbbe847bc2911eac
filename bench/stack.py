"""The benchmark's stack in production shape, on a database of its own, and the CPU meter of each scenario.

`prepare()` finds PostgreSQL and Redis (DATABASE_URL/REDIS_URL, or the embedded services of config/embedded.py),
drops and re-creates the bench database (`clearhouse_bench`, or BENCH_DATABASE_NAME) on that server, migrates it,
and returns the environment every bench process runs with: `DJANGO_SETTINGS_MODULE=bench.settings` (production
settings), a bench-only secret key, its own Celery queue, webhooks allowed to reach the loopback receiver.
Development data in the server's other databases is never touched.

`Stack` starts, each in its own process group with its output in a log file: the sandbox acquirer (gunicorn,
gthread), the API (gunicorn `config.wsgi`), a Celery worker, Celery beat and, once the webhook endpoint exists,
the verifying receiver (bench.receiver). `stop()` ends them in reverse order.

`CpuMeter` measures, over one scenario, the CPU (% of one core) of each process tree the bench started, of all
`postgres` and `redis-server` processes on the machine, and how busy the whole machine was (% of all cores).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
BENCH_QUEUE = "clearhouse-bench"
NOOP_QUEUE = "clearhouse-bench-noop"


def with_database(url: str, name: str) -> str:
    """`url` (a libpq/Django PostgreSQL URL) pointing at database `name` instead; query (e.g. `host=`) kept."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def with_redis_db(url: str, db: int) -> str:
    """`url` (`redis://host:port/N` or `unix:///path.sock?db=N`) pointing at Redis database `db`."""
    if url.startswith("unix://"):
        path, _, query = url.partition("?")
        params = dict(parse_qsl(query))
        params["db"] = str(db)
        return f"{path}?{urlencode(params)}"
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


@dataclass(kw_only=True)
class Prepared:
    """Where the bench runs: the bench database URL, the maintenance URL of the same server, Redis, the env."""

    database_url: str
    admin_database_url: str
    redis_url: str
    database_name: str
    embedded: bool
    stop_embedded: bool
    env: dict[str, str]
    ports: dict[str, int]
    workdir: Path


def _say(text: str) -> None:
    print(f"[bench] {text}", flush=True)


def prepare(*, workdir: Path) -> Prepared:
    """Find the servers, re-create and migrate the bench database, and build the bench environment.

    Raises subprocess.CalledProcessError when migrating fails, psycopg.Error when the server is unreachable.
    """
    import psycopg

    from config import embedded

    embedded_used = embedded.wanted()
    stop_embedded = False
    if embedded_used:
        was_running = (embedded.DATA_DIR / "postgres" / "postmaster.pid").exists()
        services = embedded.ensure()
        base_db_url, redis_url = services.database_url, services.redis_url
        stop_embedded = not was_running
        _say(f"using the embedded PostgreSQL and Redis (data in {embedded.DATA_DIR})")
    else:
        base_db_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clearhouse")
        redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        _say("using DATABASE_URL and REDIS_URL from the environment")
    if os.environ.get("BENCH_REDIS_DB"):
        redis_url = with_redis_db(redis_url, int(os.environ["BENCH_REDIS_DB"]))

    name = os.environ.get("BENCH_DATABASE_NAME", "clearhouse_bench")
    if not name.startswith("clearhouse_bench") or not name.replace("_", "").isalnum():
        raise ValueError(f"BENCH_DATABASE_NAME must start with clearhouse_bench and be alphanumeric: {name!r}")
    admin_url = with_database(base_db_url, "postgres")
    database_url = with_database(base_db_url, name)
    _say(f"re-creating database {name}")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')

    base_port = int(os.environ.get("BENCH_PORT_BASE", "8500"))
    ports = {"api": base_port, "acquirer": base_port + 1, "receiver": base_port + 2}
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DJANGO_SECRET_KEY": "bench-only-" + secrets.token_urlsafe(32),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "true",
        "CELERY_TASK_DEFAULT_QUEUE": BENCH_QUEUE,
        "SANDBOX_ACQUIRER_URL": f"http://127.0.0.1:{ports['acquirer']}",
        "SANDBOX_ACQUIRER_DB": str(workdir / "sandbox_acquirer.sqlite3"),
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"),
        "PYTHONUNBUFFERED": "1",
        # The per-merchant limiter still runs on every request (its Redis round trip is part of the cost
        # measured), but with budgets no benchmark rate reaches: a 429 is not an accepted payment.
        "RATE_LIMIT_WRITE_RATE": "1000000",
        "RATE_LIMIT_WRITE_BURST": "1000000",
        "RATE_LIMIT_READ_RATE": "1000000",
        "RATE_LIMIT_READ_BURST": "1000000",
    }
    env.pop("DJANGO_DEBUG", None)
    _say("migrating the bench database")
    subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--noinput", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
    )
    return Prepared(
        database_url=database_url,
        admin_database_url=admin_url,
        redis_url=redis_url,
        database_name=name,
        embedded=embedded_used,
        stop_embedded=stop_embedded,
        env=env,
        ports=ports,
        workdir=workdir,
    )


@dataclass(kw_only=True)
class Shape:
    """How many of each process the stack runs (recorded in every scenario's setup)."""

    web_workers: int
    web_threads: int
    web_worker_class: str
    worker_concurrency: int
    worker_pool: str
    acquirer_threads: int

    @classmethod
    def from_env(cls, cores: int) -> Shape:
        """Defaults for a machine with `cores` cores, each overridable by a BENCH_* environment variable."""
        return cls(
            web_workers=int(os.environ.get("BENCH_WEB_WORKERS", str(max(2, cores)))),
            web_threads=int(os.environ.get("BENCH_WEB_THREADS", "4")),
            web_worker_class=os.environ.get("BENCH_WEB_WORKER_CLASS", "gthread"),
            worker_concurrency=int(os.environ.get("BENCH_WORKER_CONCURRENCY", str(max(4, 2 * cores)))),
            worker_pool=os.environ.get("BENCH_WORKER_POOL", "prefork"),
            acquirer_threads=int(os.environ.get("BENCH_ACQUIRER_THREADS", "32")),
        )


@dataclass
class Stack:
    """The bench's child processes (name → Popen), each in its own session, logs in `workdir/logs/`."""

    prepared: Prepared
    shape: Shape
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    worker_hostname: str = field(default_factory=lambda: f"bench-{secrets.token_hex(3)}@localhost")

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        logs = self.prepared.workdir / "logs"
        logs.mkdir(exist_ok=True)
        with open(logs / f"{name}.log", "ab") as log:
            self.children[name] = subprocess.Popen(
                argv,
                cwd=BASE_DIR,
                env=env or self.prepared.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start(self) -> None:
        """Start the acquirer, the API, a Celery worker and beat; wait until they answer. Raises RuntimeError."""
        p, s, bin_ = self.prepared, self.shape, str(VENV_BIN)
        self._start(
            "acquirer",
            [
                f"{bin_}/gunicorn",
                "sandbox_acquirer.app:application",
                f"--bind=127.0.0.1:{p.ports['acquirer']}",
                "--worker-class=gthread",
                "--workers=1",
                f"--threads={s.acquirer_threads}",
                "--keep-alive=30",
                "--timeout=120",
                "--log-level=warning",
            ],
        )
        self._start(
            "api",
            [
                f"{bin_}/gunicorn",
                "config.wsgi",
                f"--bind=127.0.0.1:{p.ports['api']}",
                f"--worker-class={s.web_worker_class}",
                f"--workers={s.web_workers}",
                f"--threads={s.web_threads}",
                "--keep-alive=30",
                "--backlog=2048",
                "--timeout=60",
                "--graceful-timeout=10",
                "--log-level=warning",
            ],
        )
        self._start(
            "worker",
            [
                f"{bin_}/celery",
                "-A",
                "config",
                "worker",
                f"--hostname={self.worker_hostname}",
                f"--queues={BENCH_QUEUE}",
                f"--pool={s.worker_pool}",
                f"--concurrency={s.worker_concurrency}",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
            ],
        )
        self._start(
            "beat",
            [
                f"{bin_}/celery",
                "-A",
                "config",
                "beat",
                "--loglevel=WARNING",
                f"--schedule={p.workdir / 'celerybeat-schedule'}",
            ],
        )
        if not wait_http(f"http://127.0.0.1:{p.ports['acquirer']}/healthz", 30):
            raise RuntimeError("the sandbox acquirer did not start; see its log in " + str(p.workdir / "logs"))
        if not wait_http(f"http://127.0.0.1:{p.ports['api']}/readyz", 60):
            raise RuntimeError("the API did not become ready; see its log in " + str(p.workdir / "logs"))
        if not self.worker_ready(timeout=60):
            raise RuntimeError("the Celery worker did not answer; see its log in " + str(p.workdir / "logs"))

    def start_receiver(self, secret: str) -> None:
        """Start the verifying webhook receiver with the endpoint's signing `secret`; wait until it answers."""
        port = self.prepared.ports["receiver"]
        self._start(
            "receiver",
            [sys.executable, "-m", "bench.receiver", f"--port={port}"],
            env={**self.prepared.env, "WEBHOOK_SECRET": secret},
        )
        if not wait_http(f"http://127.0.0.1:{port}/stats", 20):
            raise RuntimeError("the webhook receiver did not start")

    def worker_ready(self, *, timeout: float) -> bool:
        """True once the Celery worker answers a ping (within `timeout` seconds)."""
        from config.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.children["worker"].poll() is not None:
                return False
            if app.control.ping(destination=[self.worker_hostname], timeout=1.0):
                return True
        return False

    def set_consuming(self, queue: str, consuming: bool) -> None:
        """Make the bench worker start (`consuming`) or stop taking tasks from `queue`. Waits for its reply."""
        from config.celery import app

        call = app.control.add_consumer if consuming else app.control.cancel_consumer
        reply = call(queue, destination=[self.worker_hostname], reply=True, timeout=5.0)
        if not reply:
            raise RuntimeError(f"the Celery worker did not confirm {'add' if consuming else 'cancel'}_consumer")

    def wait_idle(self, *, timeout: float) -> bool:
        """Wait until the bench worker runs no task (Celery `inspect active`); False after `timeout` seconds."""
        from config.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            active = app.control.inspect(destination=[self.worker_hostname], timeout=1.0).active() or {}
            if active and not any(active.values()):
                return True
            time.sleep(0.2)
        return False

    def dead(self) -> list[str]:
        """Names of children that have exited."""
        return [name for name, proc in self.children.items() if proc.poll() is not None]

    def pids(self) -> dict[str, int]:
        """Process-group leader pid of each child, by name."""
        return {name: proc.pid for name, proc in self.children.items()}

    def stop(self) -> None:
        """SIGTERM each child in reverse start order; SIGKILL what is left after 15 seconds."""
        for name, proc in reversed(list(self.children.items())):
            if proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _say(f"{name} did not stop in 15 s; killing it")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.children.clear()


def wait_http(url: str, timeout: float) -> bool:
    """True once `url` answers 200 (polled every 0.2 s for up to `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a local URL)
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores from /proc/stat; (0, 0) where there is no /proc."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


class CpuMeter:
    """CPU used during one scenario, as % of one core per component and % of all cores for the machine.

    Components: each process tree named in `trees` (name → root pid), plus `postgres` and `redis` (every process
    of that name on the machine: with a shared server this includes other users' work). A thread samples every
    `interval` seconds, so short-lived processes (pgbench's backends) are counted up to their last sample.
    """

    def __init__(self, trees: dict[str, int], *, interval: float = 0.5) -> None:
        self.trees = trees
        self.interval = interval
        self._first: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._busy0 = self._total0 = 0
        self._t0 = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> dict[str, float]:
        """CPU seconds so far of every tracked process, keyed `component:pid`."""
        import psutil

        out: dict[str, float] = {}
        for name, pid in self.trees.items():
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for proc in procs:
                try:
                    t = proc.cpu_times()
                except psutil.Error:
                    continue
                out[f"{name}:{proc.pid}"] = t.user + t.system
        for label, names in (("postgres", {"postgres"}), ("redis", {"redis-server"})):
            for proc in psutil.process_iter(["name"]):
                try:
                    if proc.info["name"] in names:
                        t = proc.cpu_times()
                        out[f"{label}:{proc.pid}"] = t.user + t.system
                except psutil.Error:
                    continue
        return out

    def _record(self, sample: dict[str, float], *, first: bool) -> None:
        for key, value in sample.items():
            # A process first seen after the start began during the window: all its CPU counts.
            self._first.setdefault(key, value if first else 0.0)
            self._last[key] = value

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._record(self._sample(), first=False)

    def start(self) -> None:
        """Take the starting sample and start sampling in the background."""
        self._record(self._sample(), first=True)
        self._busy0, self._total0 = _machine_ticks()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        """{wall_s, machine_busy_pct (of all cores), cpu_pct_of_one_core: {component: %}} since `start()`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._record(self._sample(), first=False)
        wall = max(time.monotonic() - self._t0, 1e-9)
        busy1, total1 = _machine_ticks()
        per: dict[str, float] = {}
        for key, value in self._last.items():
            name = key.split(":", 1)[0]
            per[name] = per.get(name, 0.0) + max(0.0, value - self._first.get(key, 0.0))
        machine = 100 * (busy1 - self._busy0) / (total1 - self._total0) if total1 > self._total0 else None
        return {
            "wall_s": round(wall, 2),
            "machine_busy_pct": round(machine, 1) if machine is not None else None,
            "cpu_pct_of_one_core": {name: round(100 * v / wall, 1) for name, v in sorted(per.items())},
        }
