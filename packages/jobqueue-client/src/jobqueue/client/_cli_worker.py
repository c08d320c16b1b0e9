"""``jobqueue worker``: run a Worker from your code, through the worker SDK's own command.

The client does not depend on ``jobqueue-worker``: the command imports it only
when used, and says in one line how to get it when it is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import click

_MISSING = (
    "the worker command needs the jobqueue-worker package "
    "(install jobqueue-worker next to jobqueue-client)"
)
_HELP = """Run the Worker at MODULE:NAME (a Worker object, or a function returning one).

\b
Examples:
  jobqueue worker myapp.jobs:worker --concurrency 8
  jobqueue worker myapp.jobs:worker --redis-url redis://localhost:6379/0

Every option after the name is the worker command's own: see
'jobqueue worker --help' with jobqueue-worker installed.
"""


class WorkerMissing(click.ClickException):
    """Raised when ``jobqueue worker`` runs without the jobqueue-worker package."""

    exit_code = 1


def _run_command() -> Callable[[Sequence[str]], int] | None:
    try:
        from jobqueue.worker import run_command
    except ImportError:
        return None
    return run_command


@click.command(
    help=_HELP,
    add_help_option=False,  # --help belongs to the worker command, which knows its options
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def worker(ctx: click.Context, argv: tuple[str, ...]) -> None:
    run_command = _run_command()
    if run_command is None:
        if "--help" in argv or "-h" in argv:
            click.echo(ctx.get_help())
            click.echo(f"\nNote: {_MISSING}.")
            return
        raise WorkerMissing(_MISSING)
    raise click.exceptions.Exit(run_command([*_global_server(ctx, argv), *argv]))


def _global_server(ctx: click.Context, argv: Sequence[str]) -> list[str]:
    """``jobqueue --server X worker ...`` means the worker's ``--server X`` too."""
    parent = ctx.parent
    if parent is None or "--server" in argv:
        return []
    if parent.get_parameter_source("server") is not click.core.ParameterSource.COMMANDLINE:
        return []  # the worker command reads JOBQUEUE_SERVER itself
    return ["--server", str(parent.params["server"])]
