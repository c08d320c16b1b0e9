"""Generated messages and gRPC stubs of the jobqueue API, package ``mpataki.jobqueue.v1``.

Import the modules: ``jobqueue_pb2`` / ``jobqueue_pb2_grpc`` (JobService),
``admin_pb2`` / ``admin_pb2_grpc`` (AdminService) and
``worker_pb2`` / ``worker_pb2_grpc`` (WorkerService). Everything but this file
is generated from ``proto/`` by ``uv run python scripts/gen_protos.py``; do not
edit it by hand.

This file holds one hand-written helper besides, ``lazy_exports``: the client
SDK (``jobqueue.client``) and the gRPC adapter (``jobqueue.grpc``) both import
their public names on first use, and this package is the only one both depend
on (the hexagon keeps them apart, and the client SDK does not carry the domain).
"""

from collections.abc import Callable, Mapping, MutableMapping
from typing import Any


def lazy_exports(
    namespace: MutableMapping[str, Any], where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's PEP 562 ``__getattr__`` and ``__dir__``: each public name imported on first use.

    ``namespace`` is the package's ``globals()``; ``where`` maps each public
    name (all of ``__all__``) to the private submodule that defines it. Why:
    a worker through the server needs a few names of ``jobqueue.client`` and
    ``jobqueue.grpc`` only, and an eager ``__init__`` would load both clients,
    the CLI, every servicer and the other services' protos into every such
    worker (docs/benchmarks.md, "a lighter worker through the server").
    A name, once imported, is kept as a plain global: the next use does not
    come back here. In the package: ``__getattr__, __dir__ = lazy_exports(globals(), _LAZY)``.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        from importlib import import_module

        value = getattr(import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
