"""How the CLI shows things: rich tables for people, JSON for scripts.

Every text a client or a handler sent (types, keys, errors, headers, worker
hosts...) goes through ``escaped`` or ``plain`` before it reaches the
terminal: a control character would otherwise be obeyed by the terminal
(an escape sequence can rewrite the screen or the window title), and rich
would read ``[...]`` as markup. JSON output needs neither: ``json.dumps``
escapes control characters itself.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._models import Job, JobStatus, QueueStats, TypeStats

_STATUS_STYLES = {
    JobStatus.PENDING: "yellow",
    JobStatus.RUNNING: "cyan",
    JobStatus.COMPLETED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "magenta",
}
_PREVIEW_CHARS = 200
# Unicode category Cc is exactly these: C0, DEL and C1. Newlines and tabs too,
# so a line of output is one line whatever a client sent.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_C1 = re.compile(r"[\x7f-\x9f]")


def escaped(text: str) -> str:
    """``text`` with each control character shown as its escape (``\\x1b``), not obeyed."""
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def plain(text: str | Text) -> Text:
    """A table cell or line of free text: control characters escaped, no markup read."""
    return text if isinstance(text, Text) else Text(escaped(text))


class Output:
    """Writes results to stdout, as tables or as JSON (one object, or one per line)."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False)
        if not self.console.is_terminal:
            # Piped output has no width; 80 columns would squeeze ids and times.
            self.console.width = 200

    def json_line(self, value: Any) -> None:
        # print, not rich: scripts want the exact bytes, without markup or wrapping.
        # json.dumps escapes C0 controls but passes C1 ones (U+0080-U+009F, which
        # some terminals obey) through; those can only stand inside strings, so
        # their \u escapes keep the same JSON.
        text = _C1.sub(
            lambda found: f"\\u{ord(found.group()):04x}", json.dumps(value, ensure_ascii=False)
        )
        print(text, flush=True)

    def job(self, job: Job, *, title: str | None = None) -> None:
        if self.as_json:
            self.json_line(job_json(job))
            return
        table = Table(show_header=False, box=None, title=title, title_justify="left")
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        attempts = str(job.attempts)
        if job.max_attempts is not None:
            attempts += f" of {job.max_attempts}"
        rows: list[tuple[str, str | Text]] = [
            ("id", job.id),
            ("type", job.type),
            ("status", status_text(job)),
            ("payload", _preview(job.payload)),
            ("run at", _time(job.run_at)),
            ("created", _time(job.created_at)),
            ("updated", _time(job.updated_at)),
            ("attempts", attempts),
        ]
        if job.cancel_requested and not job.is_finished:
            rows.append(("cancel", Text("requested: its worker was told to stop", style="magenta")))
        if job.last_error is not None:
            rows.append(("last error", job.last_error))
        if job.result is not None:
            rows.append(("result", _preview(job.result)))
        if job.idempotency_key is not None:
            rows.append(("idempotency key", job.idempotency_key))
        if job.unique_key is not None:
            rows.append(("unique key", job.unique_key))
        if job.progress is not None:
            rows.append(("progress", progress_text(job)))
        rows.extend((f"header {key}", value) for key, value in sorted(job.headers.items()))
        for name, value in rows:
            table.add_row(escaped(name), plain(value))
        self.console.print(table)

    def jobs(self, jobs: Iterable[Job]) -> int:
        """Print a listing; returns how many jobs it held."""
        if self.as_json:
            count = 0
            for job in jobs:
                self.json_line(job_json(job))
                count += 1
            return count
        # Not a rich Table: it measures, wraps and pads every cell, which took
        # seconds for 5,000 rows. The cells here are one line each, so plain
        # columns padded once per row print the same listing in a fraction.
        now = datetime.now(UTC)
        rows = [
            (
                escaped(job.id),
                escaped(job.type),
                shown_status(job, now),
                str(job.attempts),
                _time(job.run_at),
                _time(job.updated_at),
            )
            for job in jobs
        ]
        if rows:
            self._columns(*_columns(_LIST_HEADER, rows))
        count = len(rows)
        self.console.print(f"{count} job{'s' if count != 1 else ''}", style="dim")
        return count

    def _columns(self, header: str, rows: list[tuple[str, str, str]]) -> None:
        if self.console.color_system is None:
            # Piped or colourless: nothing for rich to style, so the text goes out as it is.
            lines = [header, *("".join(row) for row in rows)]
            self.console.file.write("\n".join(lines) + "\n")
            return
        text = Text()
        text.append(header + "\n", style="bold")
        for before, status, after in rows:
            text.append(before)
            text.append(status, style=_style(status.strip().lower()))
            text.append(after + "\n")
        text.rstrip()
        self.console.print(text, soft_wrap=True)

    def stats(self, stats: QueueStats) -> None:
        if self.as_json:
            self.json_line(stats.to_dict())
            return
        table = Table(
            "TYPE",
            "PENDING",
            "SCHEDULED",
            "RUNNING",
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "OLDEST PENDING",
            "WORKERS",
        )
        for row in (*stats.types, stats.total):
            table.add_row(
                _type_cell(row),
                str(row.pending),
                str(row.scheduled),
                str(row.running),
                str(row.completed),
                str(row.failed),
                str(row.cancelled),
                f"{row.oldest_pending_age_s:.1f} s" if row.oldest_pending_age_s else "-",
                str(row.workers) if row.type else "",
                end_section=row is stats.types[-1] if stats.types else False,
            )
        self.console.print(table)
        unattended = [row.type for row in stats.types if row.unattended and not row.paused]
        if unattended:
            self.console.print(
                plain(
                    f"no live worker handles {', '.join(unattended)}: their due jobs will not run"
                ),
                style="bold red",
            )
        if stats.omitted_types:
            self.console.print(
                f"{stats.omitted_types} more types hold jobs (the first 1,000 by name are shown)",
                style="dim",
            )

    def state(self, job: Job) -> None:
        """One line per observed state, for ``watch`` and ``submit --wait``."""
        if self.as_json:
            self.json_line(job_json(job))
            return
        line = Text(f"{_time(job.updated_at)}  ")
        line.append_text(status_text(job))
        line.append(f"  attempts={job.attempts}")
        if job.progress is not None:
            line.append(f"  progress={escaped(progress_text(job))}")
        if job.cancel_requested and not job.is_finished:
            line.append("  cancel requested", style="magenta")
        if job.last_error is not None and job.status is not JobStatus.COMPLETED:
            first = job.last_error.splitlines()[0] if job.last_error else ""
            line.append(f"  error: {escaped(first)}")
        if job.result is not None:
            line.append(f"  result: {_preview(job.result)}")
        self.console.print(line)

    def message(self, text: str, *, style: str | None = None) -> None:
        """A line for people (not in ``--json``): its text is shown as it is, never as markup."""
        if not self.as_json:
            self.console.print(plain(text), style=style)


_LIST_HEADER = ("ID", "TYPE", "STATUS", "ATTEMPTS", "RUN AT", "UPDATED")
_STATUS_COLUMN = 2
SCHEDULED = "scheduled"


def shown_status(job: Job, now: datetime | None = None) -> str:
    """The status as the CLI names it: a PENDING job due later is ``scheduled``, as in stats."""
    if job.status is JobStatus.PENDING and job.run_at > (now or datetime.now(UTC)):
        return SCHEDULED
    return job.status.value


def job_json(job: Job) -> dict[str, Any]:
    """A job for ``--json``: the API's fields, and ``scheduled`` as the tables show it."""
    return job.to_dict() | {"scheduled": shown_status(job) == SCHEDULED}


def progress_text(job: Job) -> str:
    """``40% resizing``: what the handler last reported."""
    percent = f"{(job.progress or 0) * 100:.0f}%"
    return f"{percent} {job.progress_message}" if job.progress_message else percent


def status_text(job: Job, now: datetime | None = None) -> Text:
    shown = shown_status(job, now)
    style = "blue" if shown == SCHEDULED else _STATUS_STYLES[job.status]
    return Text(shown.upper(), style=style)


def _columns(
    header: tuple[str, ...], rows: Sequence[tuple[str, ...]]
) -> tuple[str, list[tuple[str, str, str]]]:
    """Left-aligned columns two spaces apart: the header line, and each row in three pieces.

    A row's pieces are the text before its status, the status, and the text
    after it, so that only the status needs a style of its own.
    """
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    status = _STATUS_COLUMN

    def line(cells: tuple[str, ...], first: int, last: int) -> str:
        pairs = zip(cells[first:last], widths[first:last], strict=True)
        return "  ".join(cell.ljust(width) for cell, width in pairs)

    pieces = [
        (
            line(row, 0, status) + "  ",
            row[status].upper().ljust(widths[status]),
            "  " + line(row, status + 1, len(row)).rstrip(),
        )
        for row in rows
    ]
    return line(header, 0, len(header)).rstrip(), pieces


def _type_cell(row: TypeStats) -> Text:
    if not row.type:
        return Text("total", style="bold")
    # A paused type's jobs wait on purpose: "no worker" is news only for a running type.
    if row.paused:
        return plain(row.type + " (paused)")
    return plain(row.type + " (no worker)" if row.unattended else row.type)


def _style(shown: str) -> str:
    return "blue" if shown == SCHEDULED else _STATUS_STYLES[JobStatus(shown)]


@functools.lru_cache(maxsize=4096)
def _time(value: datetime) -> str:
    # Jobs of one batch share their times (see _convert), so a listing formats few.
    return value.astimezone().isoformat(sep=" ", timespec="milliseconds")


def _preview(data: bytes) -> str:
    text = escaped(data.decode("utf-8", errors="backslashreplace"))
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "…"
