"""The jobqueue server: the gRPC API over a Redis or in-memory store, wired by a DI container.

Run it with ``uv run jobqueue-server`` (or ``python -m jobqueue_server``);
configure it with ``JOBQUEUE_*`` environment variables or flags (``--help``).
"""

from ._app import App
from .containers import Container
from .settings import ServerSettings

__all__ = [
    "App",
    "Container",
    "ServerSettings",
]
