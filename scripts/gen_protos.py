"""Regenerate the Python code of the jobqueue API from proto/.

Run from anywhere: ``uv run python scripts/gen_protos.py``.

Writes messages (``*_pb2.py``), gRPC stubs (``*_pb2_grpc.py``) and their typed
stubs (``*.pyi``, by mypy-protobuf) into the jobqueue-proto package. Protoc
derives each module's path from its proto path, so the sources live under
``proto/mpataki/jobqueue/v1/`` and the modules become ``mpataki.jobqueue.v1.*``
with no import rewriting. ``mpataki/`` and ``mpataki/jobqueue/`` stay namespace
directories; ``v1/__init__.py`` is hand-written and kept.

The output is committed; ``.ci/check-generated`` fails when it is stale.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = Path("mpataki") / "jobqueue" / "v1"
OUT_ROOT = ROOT / "packages" / "jobqueue-proto" / "src"
GENERATED_GLOBS = ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py", "*_pb2_grpc.pyi")


def _plugin(name: str) -> str:
    """Find a protoc plugin next to this interpreter, so a bare PATH does not matter."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: run `uv sync` (mypy-protobuf is a dev dependency)")
    return found


def main() -> int:
    from grpc_tools import protoc  # a dev dependency only: imported where it is needed

    sources = sorted((PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    if not sources:
        raise SystemExit(f"no .proto files under {PROTO_ROOT / PACKAGE_DIR}")
    out_dir = OUT_ROOT / PACKAGE_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    # Start clean so a deleted or renamed .proto leaves no orphan module behind.
    for pattern in GENERATED_GLOBS:
        for stale in out_dir.glob(pattern):
            stale.unlink()

    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={OUT_ROOT}",
        f"--grpc_python_out={OUT_ROOT}",
        f"--mypy_out={OUT_ROOT}",
        f"--mypy_grpc_out={OUT_ROOT}",
        *(str(source.relative_to(PROTO_ROOT)) for source in sources),
    ]
    status: int = protoc.main(args)
    if status != 0:
        print(f"protoc failed with status {status}", file=sys.stderr)
        return status
    for path in sorted(out_dir.iterdir()):
        if path.name != "__pycache__":
            print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
