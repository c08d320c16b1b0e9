"""``jobqueue schedules``: create, list, show, pause, resume, trigger and delete schedules.

The commands are thin over ``JobClient``'s schedule calls; this module holds
their options and how a schedule is shown (a table for people, one JSON
object per schedule with ``--json``). Errors leave through ``cli.main`` like
every command's: a missing schedule exits 3, a rejected argument 2.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from datetime import datetime

import click
from rich.table import Table
from rich.text import Text

from ._cli_input import duration_option, read_payload
from ._cli_output import Output, escaped, plain
from ._cli_settings import Settings, json_flag, pass_settings
from ._errors import InvalidSchedule
from ._schedule_models import OverlapPolicy, Schedule

_OVERLAPS = [policy.value for policy in OverlapPolicy]
_LIST_HEADER = ("ID", "NAME", "TYPE", "RULE", "TIME ZONE", "STATE", "NEXT TICK", "FIRED")


@click.group(name="schedules")
def schedules() -> None:
    """Recurring schedules: a job enqueued at every tick of a cron expression or interval.

    Every server fires schedules, with no leader; each tick enqueues one job
    however many servers run.
    """


@schedules.command()
@click.argument("name")
@click.argument("job_type", metavar="TYPE")
@click.argument("payload", required=False)
@click.option("--cron", metavar="EXPR", help="Five-field cron expression, e.g. '*/5 * * * *'.")
@click.option(
    "--every",
    "interval_s",
    callback=duration_option,
    metavar="DURATION",
    help="Or a fixed interval: 30s, 5m, 1h (at least 1s).",
)
@click.option(
    "--tz",
    "time_zone",
    default="UTC",
    show_default=True,
    metavar="ZONE",
    help="IANA time zone of the cron expression, e.g. Europe/Paris.",
)
@click.option(
    "--overlap",
    type=click.Choice(_OVERLAPS, case_sensitive=False),
    default=OverlapPolicy.SKIP.value,
    show_default=True,
    help="While the previous tick's job is unfinished: skip the tick, buffer one, or allow all.",
)
@click.option(
    "--catchup",
    "catchup_window_s",
    callback=duration_option,
    metavar="DURATION",
    help="Fire ticks missed while no server ran if at most this late (default 60s).",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata for the handler (repeatable).",
)
@click.option("--max-attempts", type=click.IntRange(min=1), help="Runs of each job before FAILED.")
@click.option(
    "--priority",
    type=click.IntRange(-100, 100),
    default=0,
    help="Of each job, -100 to 100 (0 by default): due jobs of a type run highest first.",
)
@click.option(
    "--limit-key",
    help="Of each job: it runs under the type's per-key limits, in its key's turn.",
)
@click.option("--paused", is_flag=True, help="Create it paused.")
@click.option(
    "--key",
    "idempotency_key",
    help="Idempotency key: running the command again with it within 24 h creates nothing.",
)
@json_flag
@pass_settings
def create(
    settings: Settings,
    name: str,
    job_type: str,
    payload: str | None,
    cron: str | None,
    interval_s: float | None,
    time_zone: str,
    overlap: str,
    catchup_window_s: float | None,
    headers: tuple[str, ...],
    max_attempts: int | None,
    priority: int,
    limit_key: str | None,
    paused: bool,
    idempotency_key: str | None,
) -> None:
    """Create a schedule NAME that enqueues a job of TYPE with an optional PAYLOAD.

    PAYLOAD is sent as text; '-' reads it from stdin and '@path' from a file.

    \b
    Examples:
      jobqueue schedules create nightly report '{"day": 1}' --cron '30 2 * * *' --tz Europe/Paris
      jobqueue schedules create heartbeat ping --every 30s --overlap allow_all
    """
    if (cron is None) == (interval_s is None):
        raise click.UsageError("give exactly one of --cron and --every")
    try:
        schedule = settings.connect().create_schedule(
            name,
            job_type,
            read_payload(payload, sys.stdin.buffer),
            cron=cron,
            interval_s=interval_s,
            time_zone=time_zone,
            overlap=overlap.lower(),
            catchup_window_s=catchup_window_s,
            headers=_headers(headers),
            max_attempts=max_attempts,
            priority=priority,
            limit_key=limit_key,
            paused=paused,
            idempotency_key=idempotency_key,
        )
    except InvalidSchedule as error:
        raise InvalidSchedule(in_flags(error), code=error.code, field=error.field) from None
    show(settings.output, schedule)


_FLAGS = {
    "name": "NAME",
    "type": "TYPE",
    "payload": "PAYLOAD",
    "cron": "--cron",
    "interval_s": "--every",
    "time_zone": "--tz",
    "overlap": "--overlap",
    "catchup_window_s": "--catchup",
    "headers": "--header",
    "max_attempts": "--max-attempts",
    "priority": "--priority",
    "limit_key": "--limit-key",
    "idempotency_key": "--key",
}
"""The SDK's argument names (``InvalidSchedule.field``) as this command spells them."""
_MS_RANGE = re.compile(r"must be (\d+)\.\.(\d+)")
_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1))


def in_flags(error: InvalidSchedule) -> str:
    """The server's message about a field, told in the command's flags and units.

    ``interval_ms: must be 1000..31622400000`` becomes ``--every: 1s to 366d``.
    """
    flag = _FLAGS.get(error.field)
    _, colon, rest = error.message.partition(": ")
    if flag is None or not colon:
        return error.message
    if error.field.endswith("_s") and (bounds := _MS_RANGE.fullmatch(rest)):
        rest = f"{_duration(int(bounds[1]))} to {_duration(int(bounds[2]))}"
    return f"{flag}: {rest}"


def _duration(ms: int) -> str:
    """The largest unit that tells ``ms`` exactly, as the DURATION flags are written."""
    if ms == 0:
        return "0s"
    return next(f"{ms // size}{unit}" for unit, size in _UNITS if ms % size == 0)


@schedules.command(name="list")
@json_flag
@pass_settings
def list_schedules(settings: Settings) -> None:
    """List the schedules (JSON lines with --json)."""
    show_all(settings.output, settings.connect().list_schedules())


@schedules.command()
@click.argument("schedule_id", metavar="ID")
@json_flag
@pass_settings
def get(settings: Settings, schedule_id: str) -> None:
    """Show a schedule: its rule, job, counters and next tick."""
    show(settings.output, settings.connect().get_schedule(schedule_id))


@schedules.command()
@click.argument("schedule_id", metavar="ID")
@json_flag
@pass_settings
def pause(settings: Settings, schedule_id: str) -> None:
    """Stop firing a schedule (pausing a paused one changes nothing)."""
    show(settings.output, settings.connect().pause_schedule(schedule_id))


@schedules.command()
@click.argument("schedule_id", metavar="ID")
@json_flag
@pass_settings
def resume(settings: Settings, schedule_id: str) -> None:
    """Fire a paused schedule again, from now on: ticks missed while paused never fire."""
    show(settings.output, settings.connect().resume_schedule(schedule_id))


@schedules.command()
@click.argument("schedule_id", metavar="ID")
@click.option(
    "--key",
    "idempotency_key",
    help="Idempotency key: triggering again with it returns the first job, enqueues nothing.",
)
@json_flag
@pass_settings
def trigger(settings: Settings, schedule_id: str, idempotency_key: str | None) -> None:
    """Enqueue the schedule's job now, outside its ticks; prints the job's id."""
    job_id = settings.connect().trigger_schedule(schedule_id, idempotency_key=idempotency_key)
    if settings.output.as_json:
        settings.output.json_line({"schedule_id": schedule_id, "job_id": job_id})
    else:
        settings.output.message(f"triggered schedule {schedule_id}: job {job_id}")


@schedules.command()
@click.argument("schedule_id", metavar="ID")
@json_flag
@pass_settings
def delete(settings: Settings, schedule_id: str) -> None:
    """Delete a schedule; the jobs it enqueued stay."""
    settings.connect().delete_schedule(schedule_id)
    if settings.output.as_json:
        settings.output.json_line({"id": schedule_id, "deleted": True})
    else:
        settings.output.message(f"deleted schedule {schedule_id}")


def show(output: Output, schedule: Schedule) -> None:
    """One schedule: a two-column table, or one JSON object."""
    if output.as_json:
        output.json_line(schedule.to_dict())
        return
    template = schedule.template
    job = template.type
    if template.max_attempts is not None:
        job += f" (max attempts {template.max_attempts})"
    if template.priority:
        job += f" (priority {template.priority})"
    if template.limit_key is not None:
        job += f" (limit key {template.limit_key})"
    rows: list[tuple[str, str | Text]] = [
        ("id", schedule.id),
        ("name", schedule.name),
        ("rule", schedule.every),
        ("time zone", schedule.time_zone),
        ("state", _state(schedule)),
        ("job type", job),
        ("payload", template.payload.decode("utf-8", errors="backslashreplace")),
        *((f"header {key}", value) for key, value in sorted(template.headers.items())),
        ("overlap", schedule.overlap.value),
        ("catch-up", f"{schedule.catchup_window_s:g}s"),
        ("created", _time(schedule.created_at)),
        ("last tick", _time(schedule.last_tick_at)),
        ("next tick", _time(schedule.next_tick_at)),
        ("last job", schedule.last_job_id or "-"),
        (
            "ticks",
            f"{schedule.fired} fired, {schedule.skipped_overlap} held back by overlap, "
            f"{schedule.missed} missed",
        ),
    ]
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(escaped(name), plain(value))
    output.console.print(table)


def show_all(output: Output, found: Iterable[Schedule]) -> None:
    """A listing: a table, or one JSON object per line."""
    if output.as_json:
        for schedule in found:
            output.json_line(schedule.to_dict())
        return
    table = Table(*_LIST_HEADER, box=None)
    count = 0
    for schedule in found:
        table.add_row(
            plain(schedule.id),
            plain(schedule.name),
            plain(schedule.template.type),
            plain(schedule.every),
            plain(schedule.time_zone),
            _state(schedule),
            _time(schedule.next_tick_at),
            str(schedule.fired),
        )
        count += 1
    if count:
        output.console.print(table)
    output.console.print(f"{count} schedule{'s' if count != 1 else ''}", style="dim")


def _state(schedule: Schedule) -> Text:
    return Text("PAUSED", style="yellow") if schedule.paused else Text("ACTIVE", style="green")


def _time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone().isoformat(sep=" ", timespec="seconds")


def _headers(pairs: tuple[str, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--header")
        headers[key] = value
    return headers
