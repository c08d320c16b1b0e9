"""compose.yaml, the Dockerfile and the packages' console scripts and settings, read as data.

The compose tests compare these with each other and with the repo; no Docker
engine is needed to read them.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import shlex
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from grpc_health.v1 import health_pb2
from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings

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
