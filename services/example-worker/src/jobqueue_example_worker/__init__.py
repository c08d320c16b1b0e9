"""An example worker service: a few handlers, settings from the environment, a CLI.

Run it with ``jobqueue-example-worker`` (``JOBQUEUE_REDIS_URL`` for the direct
path, else ``JOBQUEUE_SERVER``, default ``localhost:8080``), or with the SDK's
command: ``jobqueue-worker jobqueue_example_worker:worker --redis-url URL``.
"""

from ._bootstrap import build_source, build_worker, command_args
from ._handlers import flaky, register_handlers, send_email, slow, worker
from ._settings import ExampleWorkerSettings

__all__ = [
    # Composition
    "ExampleWorkerSettings",
    "build_worker",
    "build_source",
    "command_args",
    # Handlers
    "worker",
    "register_handlers",
    "send_email",
    "flaky",
    "slow",
]
