"""compose.yaml and the Dockerfile, checked without a Docker engine.

No Docker engine runs on CI, so these tests check what can be checked without
one: the compose file parses and everything it names exists in the repo
(Dockerfile stages, console scripts, settings, ports, volumes, service
dependencies), and the containers' entry commands work when run directly,
with the environment compose gives them and a real Redis (test_compose_commands.py).
"""

from __future__ import annotations

import os
import re
import shlex
from typing import Any

import pytest

from tests.e2e._repo_files import (
    BUILT_SERVICES,
    DOCKERFILE,
    DOCKERIGNORE,
    HEALTHCHECK_SCRIPT,
    ROOT,
    ConsoleScript,
    Stage,
    env_names,
    require_landed,
    script_of,
    service_env,
    settings_classes,
    stage_chain,
    synced_packages,
)

pytestmark = pytest.mark.e2e


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
    # Loopback only: the compose file sets no token, so the API and dashboard are open.
    assert [host_and_container[0] for host_and_container in published] == ["127.0.0.1"]
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
