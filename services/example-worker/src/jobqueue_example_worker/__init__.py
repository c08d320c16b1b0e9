"""An example worker service: a few handlers, settings from the environment, a CLI.

Run it with ``jobqueue-example-worker`` (``JOBQUEUE_REDIS_URL`` for the direct
path, else ``JOBQUEUE_SERVER``, default ``localhost:8080``).
"""

from ._bootstrap import KeyValueFormatter, build_source, build_worker, configure_logging
from ._handlers import flaky, register_handlers, send_email, slow
from ._settings import ExampleWorkerSettings

__all__ = [
    # Composition
    "ExampleWorkerSettings",
    "build_worker",
    "build_source",
    "configure_logging",
    "KeyValueFormatter",
    # Handlers
    "register_handlers",
    "send_email",
    "flaky",
    "slow",
]
