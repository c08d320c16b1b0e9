"""Every workspace member is a complete distribution: what a project depending on it reads.

A wheel's metadata is all another project (or an index) knows of a package:
its summary, readme, licence, classifiers; ``py.typed`` is what lets mypy
check the code that imports it. ``uv build --package X`` builds each one (see
the README's "Using jobqueue from another project").
"""

from __future__ import annotations

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
