"""The domain must stay importable without any infrastructure library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import jobqueue.domain

DOMAIN_DIR = Path(jobqueue.domain.__file__).parent
FORBIDDEN = ("redis", "grpc", "google", "mpataki", "dependency_injector", "pydantic", "hiredis")


def test_domain_sources_import_only_the_standard_library_and_themselves() -> None:
    offenders = []
    for path in sorted(DOMAIN_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                if root not in sys.stdlib_module_names and root != "jobqueue":
                    offenders.append(f"{path.name}: {name}")
                if root == "jobqueue" and not name.startswith("jobqueue.domain"):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_importing_the_domain_loads_no_infrastructure() -> None:
    probe = (
        "import sys, jobqueue.domain; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
