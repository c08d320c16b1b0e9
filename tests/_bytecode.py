"""Bytecode for everything the tests' and benchmarks' child processes import."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def compile_bytecode() -> None:
    """Write the .pyc files a deployed install would have.

    With PYTHONDONTWRITEBYTECODE set (as on this project's machines), every
    child process compiles redis-py, grpc and the workspace from source: a
    worker then takes seconds to start and its compiler's memory inflates its
    peak RSS by ~20 MiB. The fault tests time re-delivery after a worker dies,
    and the benchmarks report RSS, of a deployed system, not of a cold compile.
    compileall skips what is already current, so a second session pays little.
    """
    paths = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    paths |= {str(p) for p in ROOT.glob("packages/*/src")}
    paths |= {str(p) for p in ROOT.glob("services/*/src")}
    paths.add(str(ROOT / "tests"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", *sorted(paths)],
        env=env,
        stdout=subprocess.DEVNULL,
        check=False,
        timeout=600,
    )
