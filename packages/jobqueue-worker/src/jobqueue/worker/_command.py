"""``jobqueue-worker`` (and ``jobqueue worker``): run a Worker defined in your code.

Like ``arq``, ``celery worker`` and ``rq worker``: point it at the Worker
object (``path.to.module:worker``) or at a function that returns one, and
say where the jobs are; it sets up logging, runs the worker and stops it
gracefully on SIGTERM or SIGINT. It reads the same ``JOBQUEUE_*`` variables
as the server and the client; a flag wins over its variable, and either wins
over a source the Worker was given in code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from ._errors import WorkerError
from ._logging import JsonFormatter
from ._sources import ServerOptions, SourceSpec, redis_source, server_source
from ._worker import Worker

DEFAULT_SERVER = "localhost:8080"
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_log = logging.getLogger("jobqueue.worker.command")


def run_command(argv: Sequence[str]) -> int:
    """Run the worker command with ``argv`` (the arguments after the command's name).

    Returns the process exit status: 0 after a graceful stop (or ``--help``),
    1 when the worker cannot be loaded or started, 2 for a usage error (a
    MODULE:NAME that names no module, attribute or Worker included).
    """
    try:
        parser = _parser()
    except ValueError as error:  # a JOBQUEUE_* variable that is not a number
        print(f"{_prog()}: error: {error}", file=sys.stderr)
        return 2
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit:  # argparse exits on --help and on usage errors
        return exit.code if isinstance(exit.code, int) else 2
    try:
        if args.log_level is None:
            args.log_level = _env_choice("JOBQUEUE_LOG_LEVEL", "INFO", _LOG_LEVELS, _level_name)
        if args.log_format is None:
            args.log_format = _env_choice("JOBQUEUE_LOG_FORMAT", "text", _LOG_FORMATS, str.lower)
    except ValueError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    try:
        worker = load_worker(args.target)
        spec = _command_source(args)
        if spec is None and worker._source_spec is None:
            spec = server_source(DEFAULT_SERVER, _server_options(args))
        if spec is not None:
            worker._use_source(spec)
        if args.metrics_port is not None:
            worker._serve_metrics(host=args.metrics_host, port=args.metrics_port)
        worker._override(
            concurrency=args.concurrency,
            lease_ms=args.lease_ms,
            shutdown_grace_s=args.shutdown_grace_s,
            store_traceback=args.store_traceback or None,
            presence_ttl_ms=args.presence_ttl_ms,
        )
    except (ImportError, AttributeError, TypeError, ValueError, WorkerError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ValueError) else 1
    # Only now: the process is the worker's from here on (and a caller of
    # run_command that got an error back keeps its own logging).
    _configure_logging(args.log_level, args.log_format)
    try:
        worker.run()
    except WorkerError as error:
        _log.error("the worker could not run: %s", error)
        return 1
    except Exception:
        _log.exception("the worker stopped on an error")
        return 1
    return 0


def load_worker(target: str) -> Worker:
    """The Worker named by ``module:attr`` (``attr`` defaults to ``worker``).

    ``attr`` may be dotted, and may name a callable that takes no arguments
    and returns the Worker. The current directory is importable, as it is for
    ``python -m``.
    """
    module_name, _, attr = target.partition(":")
    if not module_name:
        raise ValueError(f"{target!r} is not path.to.module:attribute")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        value: object = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # The named module itself (or its package) is missing: the target is a
        # usage error. A module that exists but fails on a missing dependency
        # of its own is the environment's problem, and stays an ImportError.
        if error.name is None or not _names_part_of(error.name, module_name):
            raise
        raise BadTarget(f"{target}: {error}") from error
    try:
        for part in (attr or "worker").split("."):
            value = getattr(value, part)
    except AttributeError as error:
        raise BadTarget(f"{target}: {error}") from error
    if not isinstance(value, Worker) and callable(value):
        value = value()
    if not isinstance(value, Worker):
        raise BadTarget(f"{target} is {type(value).__name__}, not a jobqueue Worker")
    return value


class BadTarget(ValueError):
    """Raised when MODULE:NAME names no module, no attribute, or no Worker: a usage error (2)."""


def _names_part_of(missing: str, module_name: str) -> bool:
    return module_name == missing or module_name.startswith(missing + ".")


def _command_source(args: argparse.Namespace) -> SourceSpec | None:
    """The source the flags or the environment choose, or None to keep the worker's own."""
    if args.redis_url and args.server:
        raise ValueError("give --redis-url or --server, not both")
    redis_url = args.redis_url
    server = args.server
    if not (redis_url or server):
        # The environment: as the example worker always read it, Redis first.
        redis_url = os.environ.get("JOBQUEUE_REDIS_URL") or None
        server = None if redis_url else os.environ.get("JOBQUEUE_SERVER") or None
    if redis_url:
        return redis_source(redis_url, key_prefix=args.key_prefix)
    if server:
        return server_source(server, _server_options(args))
    return None


def _server_options(args: argparse.Namespace) -> ServerOptions:
    if (args.client_cert is None) != (args.client_key is None):
        raise ValueError("--client-cert and --client-key go together")
    return ServerOptions(
        auth_token=args.token,
        tls=args.tls,
        ca_cert=args.ca_cert,
        client_cert=args.client_cert,
        client_key=args.client_key,
        tls_server_name=args.tls_server_name,
    )


def _configure_logging(level: str, format: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if format == "json" else logging.Formatter(_TEXT_FORMAT))
    # DEBUG is the worker's own: at DEBUG, grpc's and asyncio's loggers write lines
    # of their own while idle, burying the jobs' starts and ends. Other loggers
    # (the handlers' own) keep INFO at the most verbose.
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(level=max(numeric, logging.INFO), handlers=[handler], force=True)
    logging.getLogger("jobqueue").setLevel(numeric)


def _prog() -> str:
    # Run as `jobqueue worker`, the usage line should say so.
    return "jobqueue worker" if os.path.basename(sys.argv[0]) == "jobqueue" else "jobqueue-worker"


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Run the jobqueue Worker defined at TARGET until SIGTERM or SIGINT.",
        epilog="Example: jobqueue-worker myapp.tasks:worker --redis-url redis://127.0.0.1:6379/0",
    )
    parser.add_argument(
        "target",
        metavar="TARGET",
        help="path.to.module:attr, a Worker or a function returning one (attr: worker)",
    )
    _env_option(
        parser,
        "--concurrency",
        _positive_int,
        "JOBQUEUE_CONCURRENCY",
        "jobs in flight at once",
        default="the worker's",
    )
    where = parser.add_argument_group("where the jobs are (default: the worker's own source)")
    where.add_argument(
        "--redis-url",
        help="take jobs straight from Redis: redis://, rediss://, redis+sentinel://, "
        "redis+cluster:// [env JOBQUEUE_REDIS_URL]",
    )
    where.add_argument(
        "--key-prefix",
        default=env("JOBQUEUE_KEY_PREFIX"),
        help="the queue's Redis key prefix [env JOBQUEUE_KEY_PREFIX; default jq]",
    )
    where.add_argument(
        "--server",
        help=f"host:port of a jobqueue server [env JOBQUEUE_SERVER; default {DEFAULT_SERVER} "
        "when the worker has no source]",
    )
    where.add_argument(
        "--token",
        default=env("JOBQUEUE_AUTH_TOKEN"),
        help="bearer token for the server [env JOBQUEUE_AUTH_TOKEN]",
    )
    where.add_argument("--tls", action="store_true", help="connect to the server with TLS")
    where.add_argument("--ca-cert", help="PEM root certificates to trust (implies --tls)")
    where.add_argument("--client-cert", help="PEM client certificate chain, for mutual TLS")
    where.add_argument("--client-key", help="PEM private key of --client-cert")
    where.add_argument("--tls-server-name", help="the name in the server's certificate")
    tuning = parser.add_argument_group("running")
    _env_option(tuning, "--lease-ms", _positive_int, "JOBQUEUE_LEASE_MS", "lease length in ms")
    _env_option(
        tuning,
        "--presence-ttl-ms",
        int,
        "JOBQUEUE_PRESENCE_TTL_MS",
        "how long this worker stays listed without a heartbeat (1000 to 600000; 0: not listed)",
    )
    _env_option(
        tuning,
        "--shutdown-grace-s",
        float,
        "JOBQUEUE_SHUTDOWN_GRACE_S",
        "seconds running jobs may finish after SIGTERM",
    )
    tuning.add_argument(
        "--store-traceback",
        action="store_true",
        help="store a failed job's traceback in its last_error, not only in this log",
    )
    _env_option(
        tuning,
        "--metrics-port",
        int,
        "JOBQUEUE_WORKER_METRICS_PORT",
        "serve the worker's Prometheus metrics on this port, 0 for a free one",
        default="none",
    )
    tuning.add_argument(
        "--metrics-host",
        default=env("JOBQUEUE_WORKER_METRICS_HOST", "127.0.0.1"),
        help="the address --metrics-port binds "
        "[env JOBQUEUE_WORKER_METRICS_HOST; default 127.0.0.1]",
    )
    logs = parser.add_argument_group("logging")
    logs.add_argument(
        "--log-level",
        type=_level_name,
        choices=_LOG_LEVELS,
        help="DEBUG logs every job's start and end [env JOBQUEUE_LOG_LEVEL; default INFO]",
    )
    logs.add_argument(
        "--log-format",
        type=str.lower,
        choices=_LOG_FORMATS,
        help="text lines, or one JSON object a line [env JOBQUEUE_LOG_FORMAT; default text]",
    )
    return parser


_LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
_LOG_FORMATS = ["text", "json"]


def _level_name(text: str) -> str:
    """A level as logging names it: any case, and WARN for WARNING (as the server takes)."""
    name = text.upper()
    return "WARNING" if name == "WARN" else name


def _env_choice(name: str, default: str, choices: list[str], normal: Callable[[str], str]) -> str:
    """A variable's value among ``choices``; ValueError otherwise, which exits 2 as a usage
    error. Read after the flags, and only for one not given: argparse checks the choices
    of a flag, never of its default, and a flag wins over a bad variable."""
    value = normal(os.environ.get(name) or default)
    if value not in choices:
        raise ValueError(f"{name}={os.environ[name]!r}: choose one of {', '.join(choices)}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def _env_option(
    group: argparse._ActionsContainer,
    flag: str,
    parse: Callable[[str], int] | Callable[[str], float],
    env_name: str,
    help: str,
    *,
    default: str = "",
) -> None:
    """A numeric option whose default is read from ``env_name``; the flag wins over it.

    The variable is read when the parser is built, so a variable that is not a
    number fails before anything starts (``run_command`` reports it as a usage
    error); its help names the variable, and ``default`` says what holds without either.
    """
    whole = parse is not float
    text = os.environ.get(env_name)
    try:
        value = (int(text) if whole else float(text)) if text else None
    except ValueError:
        what = "a whole number" if whole else "a number of seconds"
        raise ValueError(f"{env_name} must be {what}, not {text!r}") from None
    note = f"; default: {default}" if default else ""
    group.add_argument(flag, type=parse, default=value, help=f"{help} [env {env_name}{note}]")


def main() -> None:
    """The ``jobqueue-worker`` console script."""
    sys.exit(run_command(sys.argv[1:]))
