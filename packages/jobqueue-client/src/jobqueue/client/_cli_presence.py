"""``jobqueue workers``: the live workers, as a table or one JSON object per line."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from rich.table import Table

from ._cli_output import plain
from ._cli_settings import Settings, json_flag, pass_settings
from ._presence_calls import WorkerInfo

# A worker that did not say when it started sends 0: the epoch, which is no time to show.
_NEVER = datetime.fromtimestamp(0, UTC)


def _ago(when: datetime, now: datetime) -> str:
    seconds = max((now - when).total_seconds(), 0.0)
    if seconds < 120:
        return f"{seconds:.1f} s ago"
    if seconds < 7_200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3_600:.1f} h ago"


def show_workers(settings: Settings, workers: list[WorkerInfo]) -> None:
    output = settings.output
    if output.as_json:
        for info in workers:
            output.json_line(info.to_dict())
        return
    if not workers:
        output.message("no live workers")
        return
    now = datetime.now(UTC)
    table = Table("ID", "HOST", "PID", "SDK", "TYPES", "BUSY", "STARTED", "LAST SEEN")
    for info in workers:
        table.add_row(
            plain(info.id),
            plain(info.host),
            str(info.pid),
            plain(info.sdk),
            plain(", ".join(info.types)),
            f"{info.busy}/{info.concurrency}",
            _ago(info.started_at, now) if info.started_at > _NEVER else "-",
            _ago(info.last_seen_at, now),
        )
    output.console.print(table)


@click.command()
@json_flag
@pass_settings
def workers(settings: Settings) -> None:
    """List the live workers: who they are, what they handle, how busy they are.

    A worker is listed from its first heartbeat until its time to live passes
    without another (it was killed or cut off), or until it stops.
    """
    show_workers(settings, settings.connect().list_workers())
