"""The generated reference docs (docs/api.md, docs/configuration.md) match their sources.

Both are regenerated in memory by ``scripts/gen_docs.py`` — from the ``.proto``
files (grpcio-tools' protoc, in-process: no buf, no network) and from the
settings classes — and compared with the committed text.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_docs.py"
REGENERATE = "run `uv run python scripts/gen_docs.py`"


@pytest.fixture(scope="module")
def gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", SCRIPT)
    if spec is None or spec.loader is None:
        pytest.fail(f"cannot load {SCRIPT}", pytrace=False)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(gen_docs: ModuleType) -> dict[Path, str]:
    docs: dict[Path, str] = gen_docs.generate()
    return docs


def test_the_committed_docs_are_current(generated: dict[Path, str]) -> None:
    problems = []
    for path, expected in generated.items():
        name = path.relative_to(ROOT).as_posix()
        if not path.exists():
            problems.append(f"{name} is missing")
            continue
        actual = path.read_text(encoding="utf-8")
        if actual != expected:
            diff = difflib.unified_diff(
                actual.splitlines(),
                expected.splitlines(),
                f"{name} (committed)",
                f"{name} (generated)",
                lineterm="",
            )
            problems.append(f"{name} is stale:\n" + "\n".join(list(diff)[:40]))
    if problems:
        # No traceback: the message says what to do, the diff shows what changed.
        pytest.fail(
            f"{REGENERATE} and commit the result.\n\n" + "\n\n".join(problems), pytrace=False
        )


def test_the_status_table_names_every_rpc(gen_docs: ModuleType) -> None:
    # The status codes are hand-written above the marker: a new RPC must get a row.
    head = gen_docs.API_DOC.read_text(encoding="utf-8").split(gen_docs.GENERATED_MARKER)[0]
    methods = [
        method.name
        for file in gen_docs.compile_protos().file
        for service in file.service
        for method in service.method
    ]
    assert methods, "no RPCs found in the protos"
    missing = [name for name in methods if f"| `{name}` |" not in head]
    assert not missing, f"docs/api.md's status table has no row for {missing}"
