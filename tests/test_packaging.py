"""Every workspace member is a complete distribution: what a project depending on it reads.

A wheel's metadata is all another project (or an index) knows of a package:
its summary, readme, licence, classifiers; ``py.typed`` is what lets mypy
check the code that imports it. ``uv build --package X`` builds each one (see
the README's "Using jobqueue from another project").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = sorted(
    path.parent
    for pattern in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"][
        "members"
    ]
    for path in ROOT.glob(f"{pattern}/pyproject.toml")
)


def project_of(member: Path) -> dict[str, Any]:
    return tomllib.loads((member / "pyproject.toml").read_text())


def test_the_workspace_has_its_members() -> None:
    assert len(MEMBERS) >= 10


@pytest.mark.parametrize("member", MEMBERS, ids=lambda member: member.name)
def test_a_member_declares_complete_metadata(member: Path) -> None:
    project = project_of(member)["project"]
    assert len(project["description"]) >= 20
    assert (member / project["readme"]).is_file()
    assert project["license"] == "MIT"
    assert project["requires-python"] == ">=3.11"
    classifiers = project["classifiers"]
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    # A licence expression and a licence classifier together are refused by PEP 639.
    assert not any(classifier.startswith("License ::") for classifier in classifiers)
    assert project["keywords"]


@pytest.mark.parametrize("member", MEMBERS, ids=lambda member: member.name)
def test_a_member_ships_py_typed(member: Path) -> None:
    module = project_of(member)["tool"]["uv"]["build-backend"]["module-name"]
    package = member / "src" / Path(*module.split("."))
    assert (package / "__init__.py").is_file()
    assert (package / "py.typed").is_file()


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH (https://docs.astral.sh/uv/)", pytrace=False)
    return uv


def _isolated_env() -> dict[str, str]:
    # The test runs inside the workspace's environment: the scratch project
    # must resolve and build its own, from uv's cache (no network).
    # A scratch project has no lock to keep, so UV_LOCKED/UV_FROZEN must not apply either.
    dropped = ("VIRTUAL_ENV", "UV_PROJECT", "UV_LOCKED", "UV_FROZEN", "UV_NO_SYNC")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    return env | {"UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}


def _scratch_project(folder: Path) -> Path:
    folder.mkdir()
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "scratch"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        "dependencies = []\n"
    )
    return folder


def _run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=_isolated_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_another_project_depends_on_a_checkout_and_on_built_wheels(tmp_path: Path) -> None:
    """The README's "Using jobqueue from another project", ways 1 and 3, from scratch projects."""
    uv = _uv()
    probe = (
        "import jobqueue.domain, jobqueue.memory; print(jobqueue.memory.MemoryJobStore.__name__)"
    )
    by_path = _scratch_project(tmp_path / "by-path")
    # One line: jobqueue-memory's jobqueue-domain comes from the same checkout.
    _run([uv, "add", "--editable", str(ROOT / "packages" / "jobqueue-memory")], by_path)
    assert _run([uv, "run", "python", "-c", probe], by_path).split() == ["MemoryJobStore"]

    dist = tmp_path / "dist"
    for package in ("jobqueue-domain", "jobqueue-memory"):
        _run([uv, "build", "--package", package, "--wheel", "-o", str(dist)], ROOT)
    by_wheel = _scratch_project(tmp_path / "by-wheel")
    _run([uv, "add", "--find-links", str(dist), "jobqueue-memory"], by_wheel)
    assert _run([uv, "run", "python", "-c", probe], by_wheel).split() == ["MemoryJobStore"]
    installed = _run([uv, "pip", "list", "--format", "freeze"], by_wheel)
    assert "jobqueue-domain==0.1.0" in installed.split()
