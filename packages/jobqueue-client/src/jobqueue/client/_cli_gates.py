"""``jobqueue pause|resume TYPE`` and ``jobqueue limits TYPE``: gates on handing out a job type."""

from __future__ import annotations

import click

from ._cli_input import parse_duration
from ._cli_settings import Settings, json_flag, pass_settings
from ._gate_calls import TypeLimits


def _report(settings: Settings, job_type: str, paused: bool, changed: bool) -> None:
    output = settings.output
    if output.as_json:
        output.json_line({"type": job_type, "paused": paused, "changed": changed})
        return
    state = "paused" if paused else "resumed"
    already = "" if changed else " (it already was)" if paused else " (it was not paused)"
    output.message(f"{job_type}: {state}{already}")


@click.command()
@click.argument("job_type", metavar="TYPE")
@json_flag
@pass_settings
def pause(settings: Settings, job_type: str) -> None:
    """Stop handing out jobs of TYPE to every worker, until `jobqueue resume`.

    Its jobs stay pending and producers can still enqueue; running jobs finish.
    """
    _report(settings, job_type, True, settings.connect().pause_type(job_type))


@click.command()
@click.argument("job_type", metavar="TYPE")
@json_flag
@pass_settings
def resume(settings: Settings, job_type: str) -> None:
    """Hand out jobs of a paused TYPE again."""
    _report(settings, job_type, False, settings.connect().resume_type(job_type))


def parse_rate(text: str, option: str = "--rate") -> tuple[int, float]:
    """``50/s``, ``600/m``, ``10/500ms``: the starts and the window in seconds; ``0``: none."""
    count_text, _, period = text.strip().partition("/")
    try:
        count = int(count_text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: give N/PERIOD, such as 50/s", param_hint=option
        ) from None
    if count == 0 and not period:
        return 0, 1.0
    if count < 0 or not period:
        raise click.BadParameter(f"{text!r}: give N/PERIOD, such as 50/s", param_hint=option)
    try:
        window = parse_duration(period if period[0].isdigit() else "1" + period)
    except ValueError as error:
        raise click.BadParameter(f"{text!r}: {error}", param_hint=option) from None
    if window <= 0:
        raise click.BadParameter(f"{text!r}: the period must be positive", param_hint=option)
    return count, window


def _describe(limits: TypeLimits) -> str:
    parts = []
    if limits.concurrency is not None:
        parts.append(f"at most {limits.concurrency} running")
    if limits.rate is not None:
        parts.append(f"at most {limits.rate} starts per {limits.rate_interval_s:g}s")
    if limits.key_concurrency is not None:
        parts.append(f"at most {limits.key_concurrency} running per key")
    if limits.key_rate is not None:
        parts.append(
            f"at most {limits.key_rate} starts per {limits.key_rate_interval_s:g}s per key"
        )
    return ", ".join(parts) if parts else "no limits"


@click.command()
@click.argument("job_type", metavar="TYPE")
@click.option(
    "--concurrency",
    type=click.IntRange(min=0),
    help="At most N of its jobs running at once, across all workers (0 removes it).",
)
@click.option(
    "--rate",
    metavar="N/PERIOD",
    help="At most N starts per period: 50/s, 600/m, 10/500ms (0 removes it).",
)
@click.option(
    "--key-concurrency",
    type=click.IntRange(min=0),
    help="At most N running at once per limit key (0 removes it).",
)
@click.option(
    "--key-rate",
    metavar="N/PERIOD",
    help="At most N starts per period per limit key: 50/s (0 removes it).",
)
@click.option("--clear", is_flag=True, help="Remove every limit of TYPE.")
@json_flag
@pass_settings
def limits(
    settings: Settings,
    job_type: str,
    concurrency: int | None,
    rate: str | None,
    key_concurrency: int | None,
    key_rate: str | None,
    clear: bool,
) -> None:
    """Show or change the limits of TYPE, enforced at claim on every worker.

    Options not given keep their current value. A limited job waits, pending;
    it is never handed to a worker and taken back.

    \b
    Examples:
      jobqueue limits send_email --concurrency 5 --rate 50/s
      jobqueue limits send_email --key-concurrency 2 --key-rate 10/s
      jobqueue limits send_email            # show them
      jobqueue limits send_email --clear
    """
    client = settings.connect()
    changes = (concurrency, rate, key_concurrency, key_rate)
    if clear and any(change is not None for change in changes):
        raise click.UsageError("--clear cannot be combined with other limits")
    if clear:
        now = client.set_type_limits(job_type)
    elif all(change is None for change in changes):
        now = client.type_limits(job_type)
    else:
        current = client.type_limits(job_type)
        new_concurrency, new_key_concurrency = current.concurrency, current.key_concurrency
        new_rate, window = current.rate, current.rate_interval_s
        new_key_rate, key_window = current.key_rate, current.key_rate_interval_s
        if concurrency is not None:
            new_concurrency = concurrency or None
        if rate is not None:
            count, window = parse_rate(rate)
            new_rate = count or None
        if key_concurrency is not None:
            new_key_concurrency = key_concurrency or None
        if key_rate is not None:
            count, key_window = parse_rate(key_rate, "--key-rate")
            new_key_rate = count or None
        now = client.set_type_limits(
            job_type,
            concurrency=new_concurrency,
            rate=new_rate,
            rate_interval_s=window,
            key_concurrency=new_key_concurrency,
            key_rate=new_key_rate,
            key_rate_interval_s=key_window,
        )
    output = settings.output
    if output.as_json:
        output.json_line({"type": job_type, **now.to_dict()})
    else:
        output.message(f"{job_type}: {_describe(now)}")
