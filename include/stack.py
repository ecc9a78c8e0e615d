"""``make up`` / ``make down``: a real Airflow on this machine, the way it is deployed.

Scheduler, triggerer, dag-processor and api-server (plus Celery workers with the CeleryExecutor),
the local Batch API server, and the connections the project's DAGs use. Embedded defaults:
LocalExecutor on SQLite and DuckDB; ``--postgres`` puts the metadata database and the warehouse
on PostgreSQL, ``--executor celery`` adds a Redis broker and workers, and ``--s3`` puts the run
files on an S3 server of the stack's own (moto). Each Celery worker has its own AIRFLOW_HOME
and temp directory, as on a machine of its own.

Every process runs under ``include.supervise`` in its own session, logs to
``<root>/logs/<name>.log`` and is listed in ``<root>/stack.json``, so ``down`` (or a test) can
stop it, or kill one to see what survives. A process that exits unexpectedly is restarted, as
``restart: always`` does in a compose file, and its exit is recorded in
``<root>/logs/restarts.jsonl``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from include.local_airflow import PROJECT, LocalAirflow
from include.object_store import ObjectStore, moto_command
from include.sample_data.reviews import write_reviews

ADMIN = ("admin", "admin")


TASK_SLOTS = max(4, 4 * (os.cpu_count() or 1))


@dataclass
class StackSettings:
    root: Path
    executor: str = "LocalExecutor"  # or "CeleryExecutor"
    postgres_dsn: str | None = None  # e.g. postgresql://postgres@127.0.0.1:5432/airflow_stack
    warehouse_dsn: str | None = None  # PostgreSQL warehouse; DuckDB files when None
    redis_url: str = "redis://127.0.0.1:6379/0"
    workers: int = 2
    api_port: int = 8080
    batch_api_port: int = 8765
    batch_api_flags: tuple[str, ...] = ("--validating-seconds", "2", "--finalizing-seconds", "1")
    poll_interval_seconds: float = 5.0
    object_store_port: int | None = None  # run files on an S3 server the stack starts on this port
    worker_queues: tuple[str, ...] = ()  # worker-N takes the Nth entry's queues ("a,b"; else the default one)
    extra_env: dict[str, str] = field(default_factory=dict)
    owner_pid: int | None = None  # the stack stops by itself once this process is gone (tests)


class StackProcessDied(RuntimeError):
    """A process of the stack exited when nobody asked it to."""


class Stack:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.root = settings.root.resolve()
        self.state_path = self.root / "stack.json"
        secrets_path = self.root / "secrets.json"
        self.root.mkdir(parents=True, exist_ok=True)
        if not secrets_path.exists():
            secrets_path.write_text(
                json.dumps(
                    {"jwt": secrets.token_urlsafe(32), "openai_api_key": "sk-local-" + secrets.token_hex(16)}
                )
            )
            secrets_path.chmod(0o600)
        self.secrets = json.loads(secrets_path.read_text())
        self.expected_exits: dict[str, int] = {}  # exits a caller caused on purpose (crash_process)

    # Environment ---------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.api_port}"

    @property
    def batch_api_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.batch_api_port}/v1"

    @property
    def object_store(self) -> ObjectStore | None:
        port = self.settings.object_store_port
        return ObjectStore(f"http://127.0.0.1:{port}") if port else None

    @property
    def airflow(self) -> LocalAirflow:
        s = self.settings
        env = {
            "AIRFLOW__CORE__EXECUTOR": s.executor,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": self.secrets["jwt"],
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN[0]}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.root / "passwords.json"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.root / "airflow" / "logs"),
            # Waits are deferred and hold no slot, so a few task slots per core keep the machine
            # busy; Airflow's default of 32 idle LocalExecutor workers only takes memory.
            "AIRFLOW__CORE__PARALLELISM": str(TASK_SLOTS),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(TASK_SLOTS),
            **s.extra_env,
        }
        if s.postgres_dsn:
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = s.postgres_dsn.replace(
                "postgresql://", "postgresql+psycopg2://"
            )
        if s.executor == "CeleryExecutor":
            env["AIRFLOW__CELERY__BROKER_URL"] = s.redis_url
            backend = s.postgres_dsn or f"sqlite:///{self.root / 'airflow' / 'celery-results.db'}"
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + backend
        if s.warehouse_dsn:
            connection = _postgres_connection(s.warehouse_dsn)
            env["AIRFLOW_CONN_LLM_WAREHOUSE"] = connection
            env["AIRFLOW_CONN_LLM_SOURCE"] = connection
        if store := self.object_store:
            env["LLM_BATCH_STORAGE_URL"] = store.url("llm_batch_files")
            env.update(store.connection_env())
        return LocalAirflow(
            self.root,
            self.batch_api_url,
            self.secrets["openai_api_key"],
            poll_interval_seconds=s.poll_interval_seconds,
            extra_env=env,
        )

    # Processes -----------------------------------------------------------------------------

    def processes(self) -> dict[str, int]:
        return json.loads(self.state_path.read_text()) if self.state_path.exists() else {}

    def _record(self, name: str, pid: int) -> None:
        state = self.processes()
        state[name] = pid
        self.state_path.write_text(json.dumps(state, indent=2))

    @property
    def events_path(self) -> Path:
        return self.root / "logs" / "restarts.jsonl"

    def start_process(self, name: str, command: list[str], env: dict[str, str] | None = None) -> int:
        """Start ``command`` under a supervisor that restarts it; returns the supervisor's pid."""
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        supervisor = [
            sys.executable,
            "-m",
            "include.supervise",
            "--name",
            name,
            "--events",
            str(self.events_path),
        ]
        if self.settings.owner_pid is not None:
            supervisor += ["--owner-pid", str(self.settings.owner_pid)]
        with (logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [*supervisor, "--", *command],
                env={**self.airflow.env(), **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=PROJECT,
                start_new_session=True,
            )
        self._record(name, process.pid)
        return process.pid

    def start_airflow_component(self, name: str) -> int:
        airflow = str(Path(sys.executable).parent / "airflow")
        commands = {
            "api-server": [airflow, "api-server", "--port", str(self.settings.api_port)],
            "scheduler": [airflow, "scheduler"],
            "dag-processor": [airflow, "dag-processor"],
            "triggerer": [airflow, "triggerer"],
        }
        if name.startswith("worker-"):
            # Task logs stay in the shared log folder, so the api-server reads them directly.
            command = [airflow, "celery", "worker", "--concurrency", "4", "--celery-hostname", f"{name}@%h"]
            queues = self.settings.worker_queues
            if queues:
                command += ["--queues", queues[int(name.removeprefix("worker-")) - 1]]
            return self.start_process(name, [*command, "--skip-serve-logs"], self.worker_env(name))
        return self.start_process(name, commands[name])

    def worker_home(self, name: str) -> Path:
        """A worker's own directory: its AIRFLOW_HOME and temp directory, on no other worker's path."""
        return self.root / "workers" / name

    def worker_env(self, name: str) -> dict[str, str]:
        home = self.worker_home(name)
        for directory in (home / "airflow", home / "tmp"):
            directory.mkdir(parents=True, exist_ok=True)
        return {"AIRFLOW_HOME": str(home / "airflow"), "TMPDIR": str(home / "tmp")}

    def stop_process(self, *names: str, timeout: float = 25.0) -> None:
        """Ask the supervisors to stop their processes, then kill whatever of each group is left."""
        pids = {name: pid for name, pid in self.processes().items() if name in names}
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        for name, pid in pids.items():
            _signal_group(pid, signal.SIGKILL)
            self._forget(name)

    def kill_process(self, name: str) -> None:
        """SIGKILL the process and its supervisor, as losing the whole container would."""
        pid = self.processes().get(name)
        if pid is not None:
            _signal_group(pid, signal.SIGKILL)
            self._forget(name)

    def crash_process(self, name: str) -> int:
        """SIGKILL the supervised process only, as a crash or an OOM kill would; its supervisor
        restarts it. Returns the killed pid."""
        pid = self.supervised_pid(name)
        if pid is None:
            raise RuntimeError(f"{name} is not running")
        self.expected_exits[name] = self.expected_exits.get(name, 0) + 1
        os.kill(pid, signal.SIGKILL)
        return pid

    def supervised_pid(self, name: str) -> int | None:
        supervisor = self.processes().get(name)
        if supervisor is None:
            return None
        try:
            children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def restarts(self) -> list[dict]:
        if not self.events_path.exists():
            return []
        return [json.loads(line) for line in self.events_path.read_text().splitlines() if line.strip()]

    def check(self, tolerated_restarts: int = 5) -> None:
        """Raise ``StackProcessDied``, with the tail of its log, when a process is gone for good:
        its supervisor is dead, or it exited unasked more than ``tolerated_restarts`` times.

        A few restarts are what the supervisor is for (Airflow's scheduler can still crash on
        races in its own database code); a process that keeps exiting is broken.
        """
        exits: dict[str, int] = {}
        for event in self.restarts():
            exits[event["name"]] = exits.get(event["name"], 0) + 1
        for name, pid in self.processes().items():
            if not _alive(pid):
                raise StackProcessDied(f"the supervisor of {name} is gone\n{self.log_tail(name)}")
            unasked = exits.get(name, 0) - self.expected_exits.get(name, 0)
            if unasked > tolerated_restarts:
                raise StackProcessDied(
                    f"{name} exited unexpectedly {unasked} times; its log ends:\n{self.log_tail(name)}"
                )

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.root / "logs" / f"{name}.log"
        if not path.exists():
            return f"({path} does not exist)"
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {path} (last {len(tail)} lines) ---\n" + "\n".join(tail)

    def _forget(self, name: str) -> None:
        state = self.processes()
        state.pop(name, None)
        self.state_path.write_text(json.dumps(state, indent=2))

    # Life cycle ----------------------------------------------------------------------------

    def up(self, *, with_sample_data: bool = True) -> None:
        if self.processes():
            raise SystemExit(f"a stack is already running from {self.root}; run `make down` first")
        airflow = self.airflow
        (self.root / "passwords.json").write_text(json.dumps({ADMIN[0]: ADMIN[1]}))
        if with_sample_data and not self.settings.warehouse_dsn and not airflow.source_db.exists():
            _say(f"writing 90 days of sample reviews to {airflow.source_db} ...")
            write_reviews(airflow.source_db, end=dt.date.today())
        if with_sample_data and self.settings.warehouse_dsn:
            _say("writing 90 days of sample reviews to PostgreSQL ...")
            _write_postgres_reviews(self.settings.warehouse_dsn)
        airflow.home.mkdir(parents=True, exist_ok=True)
        _say("migrating Airflow's metadata database (about 30 s the first time) ...")
        airflow.airflow("db", "migrate")
        pool_size = "1" if not self.settings.warehouse_dsn else "8"
        airflow.airflow("pools", "set", "llm_warehouse", pool_size, "serializes DuckDB writers")
        batch_api = [
            sys.executable,
            "-m",
            "local_batch_api",
            "--port",
            str(self.settings.batch_api_port),
            "--data-dir",
            str(self.root / "batch-api"),
            *self.settings.batch_api_flags,
        ]
        _say(
            "starting the local Batch API server, the api-server, scheduler, dag-processor and triggerer ..."
        )
        self.start_process("batch-api", batch_api, {"LOCAL_BATCH_API_KEY": self.secrets["openai_api_key"]})
        if store := self.object_store:
            _say(f"starting the S3 server for run files at {store.endpoint_url} ...")
            self.start_process("object-store", moto_command(self.settings.object_store_port))
            self._create_bucket(store)
        for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
            self.start_airflow_component(name)
        if self.settings.executor == "CeleryExecutor":
            for index in range(1, self.settings.workers + 1):
                self.start_airflow_component(f"worker-{index}")
        _say("waiting for the API to answer and the DAGs to be parsed ...")
        self.wait_until_ready()

    def _create_bucket(self, store: ObjectStore, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check()
            try:
                if httpx.get(f"{store.endpoint_url}/moto-api/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the S3 server did not answer after {timeout:.0f} s\n{self.log_tail('object-store')}"
                )
            time.sleep(0.2)
        store.client().create_bucket(Bucket=store.bucket)

    def down(self) -> None:
        self.stop_process(*self.processes())
        self.state_path.unlink(missing_ok=True)

    def wait_until_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            try:
                api = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=2)
                batch = httpx.get(self.batch_api_url.removesuffix("/v1") + "/_local/health", timeout=2)
                if api.status_code == 200 and batch.status_code == 200 and self.dags_parsed():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise TimeoutError(f"the stack was not ready after {timeout:.0f} s; see {self.root / 'logs'}")

    def dags_parsed(self) -> bool:
        from include.airflow_api import AirflowAPI

        try:
            return AirflowAPI(self.api_url, *ADMIN).get("/dags/review_sentiment").status_code == 200
        except httpx.HTTPError:
            return False


def _postgres_connection(dsn: str) -> str:
    from urllib.parse import urlparse

    url = urlparse(dsn)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": url.hostname or "127.0.0.1",
            "port": url.port or 5432,
            "login": url.username or "postgres",
            "password": url.password or "",
            "schema": url.path.lstrip("/"),
        }
    )


def _write_postgres_reviews(dsn: str) -> None:
    """The sample source in the PostgreSQL warehouse database, Arrow to COPY, never row by row.

    Duplicate review ids stay, as in the DuckDB source: rows are told apart by ``source_row``.
    """
    import pyarrow as pa

    from include.sample_data.reviews import generate_reviews, review_date_range
    from llm_batch.warehouse import postgres_warehouse

    first, last = review_date_range(end=dt.date.today())
    rows = generate_reviews(first, (last - first).days + 1)
    rows = rows.append_column("source_row", pa.array(range(rows.num_rows), pa.int64()))
    with postgres_warehouse(dsn) as warehouse:
        warehouse.execute("DROP TABLE IF EXISTS reviews")
        warehouse.ensure_table("reviews", rows.schema, primary_key=("source_row",))
        warehouse.replace_rows("reviews", rows, match_columns=["source_row"])


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of this process counts as dead
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "logs"])
    parser.add_argument("--root", type=Path, default=Path(".local/stack"))
    parser.add_argument("--executor", choices=["local", "celery"], default="local")
    parser.add_argument("--postgres", action="store_true", help="metadata DB and warehouse on PostgreSQL")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--s3", action="store_true", help="run files on an S3 server (moto) of the stack")
    parser.add_argument("--s3-port", type=int, default=8766)
    parser.add_argument("--api-port", type=int, default=8080)
    parser.add_argument("--batch-api-port", type=int, default=8765)
    parser.add_argument("--lines", type=int, default=40, help="logs: lines of each process's log")
    args = parser.parse_args(argv)
    settings = StackSettings(
        root=args.root,
        executor="CeleryExecutor" if args.executor == "celery" else "LocalExecutor",
        postgres_dsn="postgresql://postgres@127.0.0.1:5432/airflow_stack" if args.postgres else None,
        warehouse_dsn="postgresql://postgres@127.0.0.1:5432/llm_warehouse" if args.postgres else None,
        workers=args.workers,
        object_store_port=args.s3_port if args.s3 else None,
        api_port=args.api_port,
        batch_api_port=args.batch_api_port,
    )
    stack = Stack(settings)
    if args.command == "down":
        stack.down()
        print("stack stopped")
    elif args.command == "logs":
        names = sorted(p.stem for p in (stack.root / "logs").glob("*.log"))
        print(
            "\n\n".join(stack.log_tail(name, args.lines) for name in names) or "no logs yet: `make up` first"
        )
    elif args.command == "status":
        restarts: dict[str, int] = {}
        for event in stack.restarts():
            restarts[event["name"]] = restarts.get(event["name"], 0) + 1
        for name, pid in stack.processes().items():
            state = "running" if _alive(pid) else "stopped"
            print(f"{name:<14} supervisor pid {pid:<8} {state:<8} restarts {restarts.get(name, 0)}")
        if not stack.processes():
            print("no stack is running: `make up` starts one")
        else:
            print(
                f"UI: {stack.api_url}  Batch runs page: {stack.api_url}/batch-runs/  (`make report` prints it)"
            )
    else:
        if args.postgres:
            for dsn in (settings.postgres_dsn, settings.warehouse_dsn):
                ensure_postgres_database(dsn)
        stack.up()
        print(f"Airflow UI and REST API: {stack.api_url}  (login {ADMIN[0]} / {ADMIN[1]})")
        print(f"local Batch API server:  {stack.batch_api_url}")
        if stack.object_store:
            print(f"run files:               {stack.airflow.env()['LLM_BATCH_STORAGE_URL']} (moto)")
        print(f"logs: {stack.root / 'logs'}; stop with `make down`")
    return 0


def _say(step: str) -> None:
    """What ``make up`` is doing during its minute of preparation."""
    print(step, flush=True)


def ensure_postgres_database(dsn: str) -> None:
    import psycopg

    name = dsn.rsplit("/", 1)[1]
    admin = dsn.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    sys.exit(main())
