"""The compose file, its services, the Dockerfile's stages and the console scripts, read once
per module by the compose tests."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.e2e._repo_files import (
    COMPOSE_FILE,
    ConsoleScript,
    Stage,
    console_scripts,
    dockerfile_stages,
)


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
