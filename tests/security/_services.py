"""Every service the API's proto files declare, found from the files themselves."""

from __future__ import annotations

import importlib
import pkgutil

import mpataki.jobqueue.v1 as api


def api_services() -> list[str]:
    """Full names of every service in every ``*_pb2`` module of the API package."""
    names: list[str] = []
    for info in pkgutil.iter_modules(api.__path__):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(f"{api.__name__}.{info.name}")
            names += [s.full_name for s in module.DESCRIPTOR.services_by_name.values()]
    return sorted(names)
