"""compose.yaml and the Dockerfile, checked without a Docker engine.

No Docker engine runs on CI, so these tests check what can be checked without
one: the compose file parses and everything it names exists in the repo
(Dockerfile stages, console scripts, settings, ports, volumes, service
dependencies), and the containers' entry commands work when run directly,
with the environment compose gives them and a real Redis.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from grpc_health.v1 import health_pb2
from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings

from jobqueue.client import JobClient, JobStatus, WaitTimeout
from tests._redis_server import free_port, wait_until_up
from tests.server._process import health_status, wait_for_health

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BIN = Path(sys.executable).parent
SERVING = health_pb2.HealthCheckResponse.SERVING
HEALTHCHECK_SCRIPT = "jobqueue-healthcheck"
# The services built from this repo, and the Python service each one runs.
BUILT_SERVICES = {"server": "jobqueue-server", "worker": "jobqueue-example-worker"}


# --- reading the files ------------------------------------------------------------


@dataclass(frozen=True)
class ConsoleScript:
    name: str
    distribution: str
    entry_point: str  # "module:function"

    @property
    def top_package(self) -> str:
        return self.entry_point.split(":")[0].split(".")[0]


def console_scripts() -> dict[str, ConsoleScript]:
    """Every console script declared by a workspace member."""
    scripts: dict[str, ConsoleScript] = {}
    for pyproject in sorted(
        [*ROOT.glob("packages/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]
    ):
        project = tomllib.loads(pyproject.read_text())["project"]
        for name, entry in project.get("scripts", {}).items():
            scripts[name] = ConsoleScript(name, project["name"], entry)
    return scripts


@dataclass
class Stage:
    name: str
    base: str
    lines: list[str]

    def instructions(self, keyword: str) -> list[str]:
        prefix = keyword.upper() + " "
        return [
            line[len(prefix) :].strip() for line in self.lines if line.upper().startswith(prefix)
        ]


def dockerfile_stages() -> dict[str, Stage]:
    """The Dockerfile's stages by name, each with its instructions (continuations joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$", line, re.IGNORECASE)
        if match:
            current = Stage(match.group(2) or f"#{len(stages)}", match.group(1), [])
            stages[current.name] = current
        elif current is not None:
            current.lines.append(line)
    return stages


def stage_chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, nearest first."""
    chain = [stages[name]]
    while chain[-1].base in stages:
        chain.append(stages[chain[-1].base])
    return chain


def exec_form(value: str) -> list[str]:
    """A CMD/ENTRYPOINT in exec (JSON) form."""
    parsed = yaml.safe_load(value)
    assert isinstance(parsed, list), f"use the exec form, not a shell string: {value}"
    return [str(part) for part in parsed]


def stage_cmd(stages: dict[str, Stage], name: str) -> list[str]:
    for stage in stage_chain(stages, name):
        commands = stage.instructions("CMD")
        if commands:
            return exec_form(commands[-1])
    raise AssertionError(f"stage {name} has no CMD")


def synced_packages(stages: dict[str, Stage], name: str) -> set[str]:
    """The distributions `uv sync --package` installs into the stage's virtual environment."""
    copied_from = [
        re.search(r"--from=(\S+)", copy).group(1)  # type: ignore[union-attr]
        for copy in stages[name].instructions("COPY")
        if "--from=" in copy
    ]
    packages: set[str] = set()
    for source in [name, *copied_from]:
        for stage in stage_chain(stages, source):
            for run in stage.instructions("RUN"):
                if "uv sync" in run:
                    packages.update(re.findall(r"--package[= ](\S+)", run))
    return packages


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the KEY=VALUE list form
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


def settings_classes(package: str) -> list[type[BaseSettings]]:
    """The pydantic-settings classes defined in a service's package."""
    module = importlib.import_module(package)
    modules = [module]
    for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        modules.append(importlib.import_module(info.name))
    found: dict[str, type[BaseSettings]] = {}
    for mod in modules:
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if issubclass(cls, BaseSettings) and cls.__module__.startswith(package):
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return list(found.values())


def env_names(cls: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads (upper-cased: it is case-insensitive)."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias or field.alias
        if isinstance(alias, AliasChoices):
            names.update(c.upper() for c in alias.choices if isinstance(c, str))
        elif isinstance(alias, str):
            names.add(alias.upper())
        elif isinstance(alias, AliasPath):
            continue
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return dockerfile_stages()


@pytest.fixture(scope="module")
def scripts() -> dict[str, ConsoleScript]:
    return console_scripts()


def script_of(service: str, services: dict[str, dict[str, Any]], stages: dict[str, Stage]) -> str:
    command = services[service].get("command") or stage_cmd(
        stages, services[service]["build"]["target"]
    )
    if isinstance(command, str):
        command = shlex.split(command)
    return str(command[0])


def require_landed(package: str) -> None:
    try:
        importlib.import_module(f"{package}.__main__")
    except ModuleNotFoundError as error:
        if error.name is not None and error.name.startswith(package):
            pytest.skip(
                f"{package}.__main__ has not landed yet (the example worker is in progress)"
            )
        raise


# --- the compose file and the Dockerfile agree with the repo ----------------------


def test_compose_has_redis_server_and_worker(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"redis", *BUILT_SERVICES}


def test_redis_persists_to_a_named_volume(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    redis = services["redis"]
    assert re.fullmatch(r"redis:7(\.\d+)*(-\S+)?", redis["image"])
    command = redis["command"]
    command = shlex.split(command) if isinstance(command, str) else command
    assert command[0] == "redis-server"
    flags = dict(zip(command[1::2], command[2::2], strict=False))
    assert flags["--appendonly"] == "yes"
    assert flags["--appendfsync"] == "always"
    assert flags.get("--maxmemory-policy", "noeviction") == "noeviction", "eviction drops jobs"
    assert int(flags["--hash-max-listpack-value"]) >= 1024, "pending jobs would double in size"
    (volume,) = redis["volumes"]
    name, target = volume.split(":")[:2]
    assert target == "/data"  # the image's working directory, where the AOF goes
    assert name in compose["volumes"], "a named volume, declared at the top level"
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


@pytest.mark.parametrize("service", ["redis", *BUILT_SERVICES])
def test_every_service_restarts(service: str, services: dict[str, dict[str, Any]]) -> None:
    assert services[service]["restart"] in {"always", "unless-stopped", "on-failure"}


def test_dependencies_wait_for_health(services: dict[str, dict[str, Any]]) -> None:
    assert services["server"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["worker"]["depends_on"]["server"] == {"condition": "service_healthy"}
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on an unknown service {dependency}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


@pytest.mark.parametrize("service", BUILT_SERVICES)
def test_build_targets_exist_and_run_the_service(
    service: str,
    services: dict[str, dict[str, Any]],
    stages: dict[str, Stage],
    scripts: dict[str, ConsoleScript],
) -> None:
    build = services[service]["build"]
    assert (ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).is_file()
    target = build["target"]
    assert target in stages, f"no stage {target} in the Dockerfile: {sorted(stages)}"
    command = script_of(service, services, stages)
    assert command in scripts, f"{command} is not a console script of the workspace"
    assert scripts[command].distribution == BUILT_SERVICES[service]
    # The image's environment holds the distribution that provides the command.
    assert scripts[command].distribution in synced_packages(stages, target)


def test_images_are_built_as_the_lock_file_says(stages: dict[str, Stage]) -> None:
    syncs = [
        run for stage in stages.values() for run in stage.instructions("RUN") if "uv sync" in run
    ]
    assert syncs
    for run in syncs:
        assert "--locked" in run
        assert "--no-dev" in run
    assert any(
        re.match(r"python:3\.11(\.\d+)?-slim", s.base) or s.base == "${PYTHON_IMAGE}"
        for s in stages.values()
    )
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE.read_text()
    assert "UV_PYTHON_DOWNLOADS=never" in DOCKERFILE.read_text()


@pytest.mark.parametrize("service", BUILT_SERVICES)
def test_images_run_as_a_non_root_user(
    service: str, services: dict[str, dict[str, Any]], stages: dict[str, Stage]
) -> None:
    # The effective USER: the last one of the nearest stage that sets one.
    chain = stage_chain(stages, services[service]["build"]["target"])
    users = [stage.instructions("USER")[-1] for stage in chain if stage.instructions("USER")]
    assert users, "no USER: the container would run as root"
    assert users[0].split(":")[0] not in {"root", "0"}


def test_docker_context_holds_what_the_dockerfile_copies(stages: dict[str, Stage]) -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.startswith("!")
    }
    assert "*" in DOCKERIGNORE.read_text().splitlines(), "the .dockerignore is an allow-list"
    for stage in stages.values():
        for copy in stage.instructions("COPY"):
            if "--from=" in copy:
                continue
            *sources, _ = [part for part in copy.split() if not part.startswith("--")]
            for source in sources:
                path = source.rstrip("/")
                assert (ROOT / path).exists(), f"COPY {source}: not in the repo"
                assert path in allowed, f"COPY {source}: excluded by .dockerignore"


def test_server_port_is_the_default_port(
    services: dict[str, dict[str, Any]], stages: dict[str, Stage]
) -> None:
    from jobqueue_server.settings import ServerSettings

    default_port = ServerSettings.model_fields["port"].default
    env = service_env(services["server"])
    port = int(env.get("JOBQUEUE_PORT", default_port))
    assert port == default_port == 8080  # the seed's port
    published = [str(p).split(":") for p in services["server"]["ports"]]
    assert [host_and_container[-1] for host_and_container in published] == [str(port)]
    assert stages["server"].instructions("EXPOSE") == [str(port)]


@pytest.mark.parametrize("service", BUILT_SERVICES)
def test_environment_is_made_of_real_settings(
    service: str,
    services: dict[str, dict[str, Any]],
    stages: dict[str, Stage],
    scripts: dict[str, ConsoleScript],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = scripts[script_of(service, services, stages)]
    if service == "worker":
        require_landed(script.top_package)
    classes = settings_classes(script.top_package)
    assert classes, f"{script.top_package} defines no settings class"
    known = set().union(*(env_names(cls) for cls in classes))
    env = service_env(services[service])
    unknown = {name for name in env if name.upper() not in known}
    assert not unknown, f"{service} sets {sorted(unknown)}, which {script.top_package} never reads"
    # And the values parse: every settings class accepts the compose environment.
    for name in list(os.environ):
        if name.startswith("JOBQUEUE_") or name == "REDIS_ADDR":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for cls in classes:
        cls()


def test_redis_urls_name_the_redis_service(services: dict[str, dict[str, Any]]) -> None:
    for name in BUILT_SERVICES:
        url = service_env(services[name])["JOBQUEUE_REDIS_URL"]
        match = re.fullmatch(r"redis://([^:/]+):(\d+)/\d+", url)
        assert match, url
        assert match.group(1) in services
        assert int(match.group(2)) == 6379


def test_server_healthcheck_is_a_console_script(
    services: dict[str, dict[str, Any]], scripts: dict[str, ConsoleScript]
) -> None:
    test = services["server"]["healthcheck"]["test"]
    assert test[0] == "CMD", "exec form: the image has no shell to rely on"
    assert test[1:] == [HEALTHCHECK_SCRIPT]
    assert test[1] in scripts, f"{test[1]} is not a console script of the workspace"
    assert scripts[test[1]].distribution == BUILT_SERVICES["server"]


# --- the entry commands, run outside Docker ---------------------------------------


def compose_environment(
    services: dict[str, dict[str, Any]], service: str, **overrides: str
) -> dict[str, str]:
    """This process's environment minus jobqueue settings, plus the service's compose one."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_") and k != "REDIS_ADDR"
    }
    return {**env, **service_env(services[service]), **overrides}


class Process:
    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.command = command
        self.popen = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    def stop(self) -> tuple[int, str]:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            output, _ = self.popen.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            output, _ = self.popen.communicate()
        return self.popen.returncode, output.decode(errors="replace")


@pytest.fixture
def compose_server(
    services: dict[str, dict[str, Any]], stages: dict[str, Stage], redis_url: str, key_prefix: str
) -> Iterator[tuple[int, dict[str, str]]]:
    """The server image's command with the compose environment; Redis, host and port local."""
    port = free_port()
    env = compose_environment(
        services,
        "server",
        JOBQUEUE_REDIS_URL=redis_url,
        # Loopback and a free port, so parallel runs do not clash; the
        # healthcheck finds it through JOBQUEUE_PORT as in the container.
        JOBQUEUE_HOST="127.0.0.1",
        JOBQUEUE_PORT=str(port),
        JOBQUEUE_KEY_PREFIX=key_prefix,
        JOBQUEUE_SHUTDOWN_GRACE_SECONDS="2",
    )
    command = stage_cmd(stages, services["server"]["build"]["target"])
    server = Process([str(BIN / command[0]), *command[1:]], env)
    try:
        wait_for_health(port, SERVING, timeout_s=30)
    except AssertionError:
        code, output = server.stop()
        pytest.fail(f"{command} did not become healthy (exit {code}):\n{output}")
    yield port, env
    code, output = server.stop()
    assert code == 0, output


def run_healthcheck(
    services: dict[str, dict[str, Any]], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    command = services["server"]["healthcheck"]["test"][1:]
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.integration
def test_server_command_serves_with_the_compose_environment(
    compose_server: tuple[int, dict[str, str]],
    services: dict[str, dict[str, Any]],
) -> None:
    port, env = compose_server
    assert health_status(port) == SERVING
    result = run_healthcheck(services, env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_healthcheck_fails_when_no_server_answers(services: dict[str, dict[str, Any]]) -> None:
    env = compose_environment(services, "server", JOBQUEUE_PORT=str(free_port()))
    started = time.monotonic()
    result = run_healthcheck(services, env)
    assert result.returncode != 0
    timeout = services["server"]["healthcheck"]["timeout"]
    assert time.monotonic() - started < int(timeout.rstrip("s")) + 2, "slower than compose waits"


@pytest.mark.integration
@pytest.mark.redis
def test_redis_command_persists_acknowledged_writes(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The redis service's command keeps a write across a SIGKILL, and its healthcheck answers."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    command = services["redis"]["command"]
    command = shlex.split(command) if isinstance(command, str) else list(command)
    port = free_port()
    # The image's working directory /data is the volume; here a temporary one.
    args = [
        binary,
        *command[1:],
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(tmp_path),
    ]
    url = f"redis://127.0.0.1:{port}/0"

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_up(url)
        return process

    process = start()
    try:
        client = redis.Redis.from_url(url)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        client.set("jobqueue:compose-check", "acknowledged")
        client.close()
        healthcheck = services["redis"]["healthcheck"]["test"][1:]
        if shutil.which(healthcheck[0]) is not None:
            ping = subprocess.run(
                [healthcheck[0], "-p", str(port), *healthcheck[1:]],
                capture_output=True,
                text=True,
                timeout=10,
            )
            assert ping.returncode == 0
            assert ping.stdout.strip() == "PONG"
        process.kill()  # no shutdown save: only the AOF can bring the key back
        process.wait(10)
        process = start()
        client = redis.Redis.from_url(url)
        assert client.get("jobqueue:compose-check") == b"acknowledged"
        client.close()
    finally:
        process.kill()
        process.wait(10)


# The seed's example job; the example worker handles it (issue 4: `send_email`).
EXAMPLE_JOB_TYPE = "send_email"
EXAMPLE_PAYLOAD = {"to": "test@example.com"}


@pytest.mark.integration
def test_worker_command_completes_a_job(
    compose_server: tuple[int, dict[str, str]],
    services: dict[str, dict[str, Any]],
    stages: dict[str, Stage],
    scripts: dict[str, ConsoleScript],
) -> None:
    script = scripts[script_of("worker", services, stages)]
    require_landed(script.top_package)
    port, server_env = compose_server
    # The worker's compose environment, on the server's Redis and key prefix.
    env = compose_environment(
        services,
        "worker",
        JOBQUEUE_REDIS_URL=server_env["JOBQUEUE_REDIS_URL"],
        JOBQUEUE_KEY_PREFIX=server_env["JOBQUEUE_KEY_PREFIX"],
    )
    command = stage_cmd(stages, services["worker"]["build"]["target"])
    worker = Process([str(BIN / command[0]), *command[1:]], env)
    try:
        with JobClient(target=f"127.0.0.1:{port}") as client:
            job = client.enqueue(EXAMPLE_JOB_TYPE, EXAMPLE_PAYLOAD)
            try:
                done = client.wait(job.id, timeout_s=30)
            except WaitTimeout:
                done = client.get(job.id)
    finally:
        code, output = worker.stop()
    assert done.status is JobStatus.COMPLETED, f"{done}\nworker output:\n{output}"
    assert done.attempts == 1
    assert code == 0, f"the worker did not stop cleanly on SIGTERM:\n{output}"
