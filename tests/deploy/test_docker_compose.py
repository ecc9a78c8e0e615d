"""docker-compose.yaml, the Dockerfile and the PostgreSQL init script, checked without a Docker engine.

The compose file is read the way ``docker compose`` reads it with no variables set: YAML (anchors
and merge keys included), then every ``${VAR:-default}`` replaced by its default. Airflow commands
are checked against the installed Airflow: ``airflow <command> --help`` must succeed, and the
whole argument list must pass Airflow's own CLI parser.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from local_batch_api.settings import build_parser
from tests.postgres import TEST_DSN as PG_DSN

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
POSTGRES_INIT = ROOT / "include" / "deploy" / "postgres-init.sql"
AIRFLOW = Path(sys.executable).parent / "airflow"

REQUIRED_SERVICES = {
    "postgres",
    "redis",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "batch-api",
}
# Airflow 2 commands that Airflow 3 removed or renamed (api-server, db migrate, dag-processor).
REMOVED_COMMANDS = [
    ["webserver"],
    ["db", "init"],
    ["db", "upgrade"],
    ["users", "create"],
]
PROJECT_MOUNTS = {
    "dags": "/opt/airflow/dags",
    "plugins": "/opt/airflow/plugins",
    "include": "/opt/airflow/include",
}
# Passwords that are local defaults on purpose; anything else secret must come from the environment.
LOCAL_DEFAULTS = {"airflow", "warehouse", "admin", "local-batch-api-key"}

_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?-)(?P<default>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
)
_SECRET_LOOKING = [
    re.compile(r"sk-[A-Za-z0-9_-]{16,}"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
]
_RANDOM_TOKEN = re.compile(r"[A-Za-z0-9+/_=]{32,}")


# Reading the compose file as docker compose does ---------------------------------------------------


def interpolate(text: str, undefined: list[str]) -> str:
    """``text`` with compose's interpolation applied, as if no variable were set; unset names go to ``undefined``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("op") is not None:
            return match.group("default")
        undefined.append(match.group("name") or match.group("bare"))
        return ""

    return _VARIABLE.sub(replace, text)


def _interpolated(node: Any, undefined: list[str]) -> Any:
    if isinstance(node, dict):
        return {key: _interpolated(value, undefined) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolated(value, undefined) for value in node]
    if isinstance(node, str):
        return interpolate(node, undefined)
    return node


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    undefined: list[str] = []
    document = _interpolated(raw, undefined)
    assert not undefined, (
        f"variables without a default (compose would substitute ''): {sorted(set(undefined))}"
    )
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def airflow_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: spec for name, spec in services.items() if name.startswith("airflow-")}


def argv_of(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def init_script(services: dict[str, dict[str, Any]]) -> str:
    argv = argv_of(services["airflow-init"]["command"])
    assert argv[:2] == ["bash", "-c"], f"airflow-init should run a bash script, runs {argv[:2]}"
    return argv[2]


def heredocs(script: str) -> list[str]:
    """The Python programs the script feeds to ``python - <<'PY'``."""
    return re.findall(r"^python - <<'PY'\n(.*?)^PY$", script, flags=re.DOTALL | re.MULTILINE)


def script_commands(script: str) -> Iterator[list[str]]:
    """Each command line of a shell script, heredoc bodies left out."""
    for line in re.sub(r"<<'PY'\n.*?^PY$", "", script, flags=re.DOTALL | re.MULTILINE).splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            yield shlex.split(line)


def airflow_commands(service: dict[str, Any]) -> list[list[str]]:
    """Every ``airflow ...`` a service runs, as arguments of the CLI: its command (or each line of its
    bash script) and its healthcheck. The image's entrypoint runs a bare command such as
    ``scheduler`` as ``airflow scheduler``.
    """
    argv = argv_of(service.get("command", []))
    if argv[:2] == ["bash", "-c"]:
        lines = list(script_commands(argv[2]))
    elif argv and argv[0] not in ("bash", "python", "python3"):
        lines = [argv if argv[0] == "airflow" else ["airflow", *argv]]
    else:
        lines = []
    test = service.get("healthcheck", {}).get("test", [])
    if test[:1] == ["CMD-SHELL"]:
        lines.append(shlex.split(test[1].replace("${HOSTNAME}", "worker-host")))
    return [line[1:] for line in lines if line and line[0] == "airflow"]


def subcommand(argv: list[str]) -> tuple[str, ...]:
    """``("celery", "worker")`` of ``celery worker --concurrency 4``: Airflow's CLI nests two levels at most."""
    words = []
    for arg in argv[:2]:
        if not re.fullmatch(r"[a-z][a-z-]*", arg):
            break
        words.append(arg)
    return tuple(words)


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Target path -> source (a ./relative host path or a named volume) of a service's volumes."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found[volume["target"]] = volume["source"]
        else:
            source, target, *_ = volume.split(":")
            found[target] = source
    return found


def env_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def connections(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key.removeprefix("AIRFLOW_CONN_").lower(): json.loads(value)
        for key, value in env_of(service).items()
        if key.startswith("AIRFLOW_CONN_")
    }


# Running the installed Airflow -------------------------------------------------------------------


def _airflow_env(tmp_home: Path, executor: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LLM_BATCH_"))}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_home),
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    return env


@pytest.fixture(scope="module")
def airflow_argvs(services: dict[str, dict[str, Any]]) -> list[list[str]]:
    return [argv for spec in airflow_services(services).values() for argv in airflow_commands(spec)]


@pytest.fixture(scope="module")
def help_exit_codes(
    services: dict[str, dict[str, Any]],
    airflow_argvs: list[list[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[tuple[str, ...], int]:
    """Exit code of ``airflow <subcommand> --help`` per distinct subcommand used: each run once, all at once."""
    executor = env_of(services["airflow-scheduler"])["AIRFLOW__CORE__EXECUTOR"]
    env = _airflow_env(tmp_path_factory.mktemp("airflow-home"), executor)
    subcommands = sorted({subcommand(argv) for argv in airflow_argvs})

    def exit_code(words: tuple[str, ...]) -> int:
        command = [str(AIRFLOW), *words, "--help"]
        return subprocess.run(command, env=env, capture_output=True, timeout=120, check=False).returncode

    with ThreadPoolExecutor(max_workers=len(subcommands)) as pool:
        return dict(zip(subcommands, pool.map(exit_code, subcommands), strict=True))


@pytest.fixture(scope="module")
def airflow_parser() -> argparse.ArgumentParser:
    from airflow.cli.cli_parser import get_parser

    return get_parser()


def parse_error(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """What Airflow's CLI says of ``argv`` when it refuses it (it prints its help, then the error)."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            parser.parse_args(argv)
    except SystemExit as exc:
        return f"exit {exc.code}: {out.getvalue()[-300:]}"
    return None


# The services ------------------------------------------------------------------------------------


def test_the_compose_file_parses_with_every_variable_defaulted(compose: dict[str, Any]) -> None:
    assert isinstance(compose.get("services"), dict) and compose["services"]


def test_every_service_of_the_stack_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= REQUIRED_SERVICES, f"missing: {sorted(REQUIRED_SERVICES - set(services))}"


def test_at_least_two_celery_workers(services: dict[str, dict[str, Any]]) -> None:
    workers = 0
    for spec in airflow_services(services).values():
        if any(argv[:2] == ["celery", "worker"] for argv in airflow_commands(spec)):
            workers += int(spec.get("deploy", {}).get("replicas", 1))
    assert workers >= 2


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("airflow-init", ["db", "migrate"]),
        ("airflow-apiserver", ["api-server"]),
        ("airflow-scheduler", ["scheduler"]),
        ("airflow-dag-processor", ["dag-processor"]),
        ("airflow-triggerer", ["triggerer"]),
    ],
)
def test_each_component_runs_its_airflow_command(
    services: dict[str, dict[str, Any]], service: str, expected: list[str]
) -> None:
    assert any(argv[: len(expected)] == expected for argv in airflow_commands(services[service]))


def test_airflow_init_creates_the_warehouse_pool(services: dict[str, dict[str, Any]]) -> None:
    pools = [argv for argv in airflow_commands(services["airflow-init"]) if argv[:2] == ["pools", "set"]]
    assert [argv[2] for argv in pools] == ["llm_warehouse"]
    assert int(pools[0][3]) >= 1


def test_every_airflow_command_exists_in_the_installed_airflow(
    help_exit_codes: dict[tuple[str, ...], int],
) -> None:
    failing = {" ".join(words): code for words, code in help_exit_codes.items() if code != 0}
    assert not failing, f"`airflow <command> --help` failed: {failing}"


def test_every_airflow_command_line_parses(
    airflow_parser: argparse.ArgumentParser, airflow_argvs: list[list[str]]
) -> None:
    errors = {" ".join(argv): parse_error(airflow_parser, argv) for argv in airflow_argvs}
    assert not {argv: error for argv, error in errors.items() if error}


def test_no_removed_airflow_2_command_is_used(
    airflow_parser: argparse.ArgumentParser, airflow_argvs: list[list[str]]
) -> None:
    for removed in REMOVED_COMMANDS:
        # The parser check above would catch them: Airflow 3 refuses each.
        assert parse_error(airflow_parser, removed), f"airflow {' '.join(removed)} is accepted"
        for argv in airflow_argvs:
            assert argv[: len(removed)] != removed, f"airflow {' '.join(argv)} is an Airflow 2 command"


def test_every_airflow_setting_is_a_real_option(services: dict[str, dict[str, Any]]) -> None:
    from airflow.configuration import conf

    described = conf.configuration_description  # core and providers' (celery) options
    for name, spec in airflow_services(services).items():
        for key in env_of(spec):
            if key.startswith("AIRFLOW__"):
                section, option = key.removeprefix("AIRFLOW__").lower().split("__", 1)
                assert option in described.get(section, {}).get("options", {}), f"{name}: {key} is no option"


def test_the_batch_api_command_parses(services: dict[str, dict[str, Any]]) -> None:
    argv = argv_of(services["batch-api"]["command"])
    assert argv[:3] == ["python", "-m", "local_batch_api"]
    args = build_parser().parse_args(argv[3:])
    assert args.host == "0.0.0.0"
    assert mounts(services["batch-api"]).get(str(args.data_dir)) in _named_volumes(), (
        "the server's state must live in a named volume"
    )


def test_the_init_script_is_valid_bash(services: dict[str, dict[str, Any]]) -> None:
    result = subprocess.run(["bash", "-n", "-c", init_script(services)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _named_volumes() -> set[str]:
    return set(yaml.safe_load(COMPOSE_FILE.read_text()).get("volumes") or {})


# Executor, broker, databases ----------------------------------------------------------------------


def test_celery_executor_with_redis_broker_and_postgres_metadata(services: dict[str, dict[str, Any]]) -> None:
    for name, spec in airflow_services(services).items():
        env = env_of(spec)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
        assert broker.scheme == "redis" and broker.hostname == "redis", name
        metadata = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert metadata.scheme.startswith("postgresql") and metadata.hostname == "postgres", name
        backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"])
        assert backend.scheme == "db+postgresql" and backend.hostname == "postgres", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false", name
        execution_api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert execution_api.hostname == "airflow-apiserver" and execution_api.path == "/execution/", name
        assert f"{execution_api.port}:{execution_api.port}" in services["airflow-apiserver"]["ports"]


def test_the_metadata_database_is_the_one_postgres_creates(services: dict[str, dict[str, Any]]) -> None:
    postgres = env_of(services["postgres"])
    metadata = urlsplit(env_of(services["airflow-scheduler"])["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert metadata.path.lstrip("/") == postgres["POSTGRES_DB"]
    assert (metadata.username, metadata.password) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )


def test_components_share_their_signing_secrets(services: dict[str, dict[str, Any]]) -> None:
    keys = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY")
    values = {
        name: tuple(env_of(spec).get(key) for key in keys)
        for name, spec in airflow_services(services).items()
    }
    assert len(set(values.values())) == 1, values
    assert None not in next(iter(values.values()))


def test_services_wait_for_what_they_need(services: dict[str, dict[str, Any]]) -> None:
    for name, spec in airflow_services(services).items():
        depends = spec.get("depends_on", {})
        assert depends.get("postgres", {}).get("condition") == "service_healthy", name
        assert depends.get("redis", {}).get("condition") == "service_healthy", name
        if name != "airflow-init":
            assert depends.get("airflow-init", {}).get("condition") == "service_completed_successfully", name
    for name, spec in services.items():
        for dependency, condition in spec.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on an unknown service {dependency}"
            if condition.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    assert "/api/v2/monitor/health" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])


# Mounts ------------------------------------------------------------------------------------------


def test_every_airflow_service_mounts_the_project(services: dict[str, dict[str, Any]]) -> None:
    for name, spec in airflow_services(services).items():
        found = mounts(spec)
        for directory, target in PROJECT_MOUNTS.items():
            assert found.get(target) == f"./{directory}", f"{name} does not mount ./{directory} on {target}"
            assert (ROOT / directory).is_dir()
        pythonpath = env_of(spec)["PYTHONPATH"].split(":")
        assert "/opt/airflow" in pythonpath and "/opt/airflow/plugins" in pythonpath, name


def test_every_mount_source_exists(services: dict[str, dict[str, Any]]) -> None:
    named = _named_volumes()
    for name, spec in services.items():
        for target, source in mounts(spec).items():
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: {source} (for {target}) is not in the repository"
            else:
                assert source in named, f"{name}: volume {source} is not declared"


def test_run_files_live_on_a_volume_every_airflow_service_shares(services: dict[str, dict[str, Any]]) -> None:
    volumes = set()
    for name, spec in airflow_services(services).items():
        url = urlsplit(env_of(spec)["LLM_BATCH_STORAGE_URL"])
        assert url.scheme == "file", name
        volumes.add(mounts(spec).get(url.path))
    assert len(volumes) == 1 and volumes <= _named_volumes(), volumes


# Connections -------------------------------------------------------------------------------------


def test_connections_name_the_types_the_pipeline_expects(services: dict[str, dict[str, Any]]) -> None:
    from airflow.providers.openai.hooks.openai import OpenAIHook

    for name, spec in airflow_services(services).items():
        found = connections(spec)
        assert {"openai_default", "llm_source", "llm_warehouse"} <= set(found), name
        assert found["openai_default"]["conn_type"] == OpenAIHook.conn_type, name
        assert found["llm_source"]["conn_type"] == "postgres", name
        assert found["llm_warehouse"]["conn_type"] == "postgres", name


def test_the_openai_connection_reaches_the_batch_api_service(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.openai.hooks.openai import OpenAIHook

    env = env_of(services["airflow-worker"])
    monkeypatch.setenv("AIRFLOW_CONN_OPENAI_DEFAULT", env["AIRFLOW_CONN_OPENAI_DEFAULT"])
    client = OpenAIHook(conn_id="openai_default").get_conn()
    base_url = urlsplit(str(client.base_url))
    server = build_parser().parse_args(argv_of(services["batch-api"]["command"])[3:])
    assert (base_url.hostname, base_url.port, base_url.path) == ("batch-api", server.port, "/v1/")
    # The server demands the key the connection holds.
    assert client.api_key == env_of(services["batch-api"])["LOCAL_BATCH_API_KEY"]


@pytest.mark.parametrize("conn_id", ["llm_source", "llm_warehouse"])
def test_the_warehouse_connections_reach_the_warehouse_database(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, conn_id: str
) -> None:
    from llm_batch.warehouse import PostgresWarehouse, warehouse_for_conn_id

    env = env_of(services["airflow-worker"])
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", env[f"AIRFLOW_CONN_{conn_id.upper()}"])
    warehouse = warehouse_for_conn_id(conn_id)  # connects on first use only
    assert isinstance(warehouse, PostgresWarehouse)
    conn = connections(services["airflow-worker"])[conn_id]
    assert conn["host"] in services and services[conn["host"]]["image"].startswith("postgres:")
    assert int(conn.get("port", 5432)) == 5432
    assert conn["schema"] in _databases_created(services), "the init script does not create this database"
    assert _roles_created().get(conn["login"]) == conn["password"], "no role with this login and password"


def _databases_created(services: dict[str, dict[str, Any]]) -> set[str]:
    sql = POSTGRES_INIT.read_text()
    created = set(re.findall(r"CREATE\s+DATABASE\s+\"?(\w+)\"?", sql, flags=re.IGNORECASE))
    return created | {env_of(services["postgres"])["POSTGRES_DB"]}


def _roles_created() -> dict[str, str]:
    sql = POSTGRES_INIT.read_text()
    pattern = r"CREATE\s+(?:ROLE|USER)\s+\"?(\w+)\"?[^;]*?PASSWORD\s+'([^']*)'"
    return dict(re.findall(pattern, sql, flags=re.IGNORECASE))


def test_the_init_script_is_mounted_where_postgres_runs_it(services: dict[str, dict[str, Any]]) -> None:
    found = mounts(services["postgres"])
    targets = [t for t, s in found.items() if s == "./include/deploy/postgres-init.sql"]
    assert len(targets) == 1 and targets[0].startswith("/docker-entrypoint-initdb.d/")
    assert targets[0].endswith(".sql")


# Secrets -----------------------------------------------------------------------------------------


def test_no_secret_is_written_in_the_files() -> None:
    for path in (COMPOSE_FILE, DOCKERFILE, POSTGRES_INIT):
        text = path.read_text()
        for pattern in _SECRET_LOOKING:
            assert not pattern.search(text), f"{path.name}: {pattern.pattern}"
        for token in _RANDOM_TOKEN.findall(text):
            looks_random = (
                re.search(r"\d", token) and re.search(r"[a-z]", token) and re.search(r"[A-Z]", token)
            )
            assert not looks_random, f"{path.name}: {token!r} looks like a key"


def test_secrets_come_from_the_environment(raw: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    secret_name = re.compile(r"(SECRET|_KEY|TOKEN|PASSWORD)$")
    for name, spec in raw["services"].items():
        environment = spec.get("environment", {})
        for key, value in environment.items():
            if not secret_name.search(key) or key == "POSTGRES_PASSWORD":
                continue
            assert str(value).startswith("${"), f"{name}: {key} is written in the file, not read from the env"
            default = env_of(services[name])[key]
            assert default in ("", *LOCAL_DEFAULTS) or "change-me" in default, (
                f"{name}: {key} default {default!r}"
            )
    for conn_id, conn in connections(services["airflow-worker"]).items():
        assert conn.get("password", "") in ("", *LOCAL_DEFAULTS), f"{conn_id}: password {conn['password']!r}"
    # The API key in particular: the same variable sets the connection's and the server's.
    assert "${OPENAI_API_KEY:-" in env_of(raw["services"]["airflow-worker"])["AIRFLOW_CONN_OPENAI_DEFAULT"]
    assert env_of(raw["services"]["batch-api"])["LOCAL_BATCH_API_KEY"].startswith("${OPENAI_API_KEY:-")


# Dockerfile and the init script ------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_dockerfile_builds_on_the_pinned_airflow() -> None:
    instructions = _dockerfile_instructions()
    froms = [arg for op, arg in instructions if op == "FROM"]
    assert len(froms) == 1
    image, _, tag = froms[0].partition(":")
    assert image == "apache/airflow"
    pinned = re.search(
        r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), flags=re.MULTILINE
    )
    assert pinned, "requirements.txt does not pin apache-airflow"
    python = "python{}.{}".format(*sys.version_info[:2])
    assert tag == f"{pinned.group(1)}-{python}", (
        f"FROM {froms[0]} but apache-airflow=={pinned.group(1)}, {python}"
    )
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert f">={sys.version_info[0]}.{sys.version_info[1]}" in requires


def test_the_dockerfile_installs_the_requirements_and_the_project() -> None:
    instructions = _dockerfile_instructions()
    runs = [arg for op, arg in instructions if op == "RUN"]
    copies = [arg.split() for op, arg in instructions if op == "COPY"]
    sources = {part for copy in copies for part in copy[:-1] if not part.startswith("--")}
    assert {"requirements.txt", "pyproject.toml", "local_batch_api"} <= sources
    assert not sources & set(PROJECT_MOUNTS), "dags, plugins and include are mounted, not baked in"
    requirements = [copy[-1] for copy in copies if "requirements.txt" in copy[:-1]]
    assert any("pip install --no-cache-dir" in run and f"-r {requirements[0]}" in run for run in runs), (
        "the requirements are not installed with pip install --no-cache-dir -r"
    )
    assert any("pip install --no-cache-dir --no-deps" in run for run in runs), "the project is not installed"
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1] == "airflow", "pip (and the image) must run as the airflow user"


def test_the_requirements_are_pinned_without_constraints() -> None:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9._\[\],-]+==[^\s;]+(\s*;.*)?", line), f"not pinned: {line}"


def test_the_init_script_writes_the_ui_password(services: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    (program,) = [p for p in heredocs(init_script(services)) if "PASSWORDS_FILE" in p]
    path = tmp_path / "passwords.json"
    env = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(path),
        "AIRFLOW_ADMIN_PASSWORD": env_of(services["airflow-init"])["AIRFLOW_ADMIN_PASSWORD"],
    }
    subprocess.run([sys.executable, "-"], input=program, env=env, text=True, check=True)
    users = env_of(services["airflow-apiserver"])["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
    assert set(json.loads(path.read_text())) == {user.split(":")[0] for user in users.split(",")}
    assert path.stat().st_mode & 0o077 == 0
    apiserver_file = env_of(services["airflow-apiserver"])[
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
    ]
    assert os.path.dirname(apiserver_file) in mounts(services["airflow-apiserver"])


@pytest.mark.slow
@pytest.mark.needs_postgres
def test_the_init_script_loads_the_sample_reviews_once(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Its seeding program, run twice against a scratch schema: the second run leaves the table alone."""
    (program,) = [p for p in heredocs(init_script(services)) if "llm_source" in p]
    try:
        admin = psycopg.connect(PG_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"the PostgreSQL test server is unreachable (CI guarantees one): {exc}")
    schema = f"deploy_seed_{uuid.uuid4().hex[:12]}"
    info = conninfo_to_dict(PG_DSN)
    conn = {
        "conn_type": "postgres",
        "host": info["host"],
        "port": int(info["port"]),
        "login": info["user"],
        "password": info.get("password", ""),
        "schema": info["dbname"],
        "extra": {"options": f"-c search_path={schema}"},
    }
    env = _airflow_env(tmp_path / "airflow-home", "LocalExecutor")
    env["AIRFLOW_CONN_LLM_SOURCE"] = json.dumps(conn)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "plugins")])
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            first = subprocess.run(
                [sys.executable, "-"], input=program, env=env, text=True, capture_output=True
            )
            assert first.returncode == 0, first.stderr[-2000:]
            (count,) = admin.execute(f'SELECT count(*) FROM "{schema}".reviews').fetchone()
            assert count > 1000 and "sample data:" in first.stdout
            admin.execute(
                f'DELETE FROM "{schema}".reviews WHERE ctid IN (SELECT ctid FROM "{schema}".reviews LIMIT 1)'
            )
            second = subprocess.run(
                [sys.executable, "-"], input=program, env=env, text=True, capture_output=True
            )
            assert second.returncode == 0, second.stderr[-2000:]
            assert "left as it is" in second.stdout
            assert admin.execute(f'SELECT count(*) FROM "{schema}".reviews').fetchone() == (count - 1,)
        finally:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
