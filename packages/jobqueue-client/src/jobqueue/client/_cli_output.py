"""How the CLI shows things: rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._models import Job, JobStatus, QueueStats

_STATUS_STYLES = {
    JobStatus.PENDING: "yellow",
    JobStatus.RUNNING: "cyan",
    JobStatus.COMPLETED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "magenta",
}
_PREVIEW_CHARS = 200


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
        print(json.dumps(value, ensure_ascii=False), flush=True)

    def job(self, job: Job, *, title: str | None = None) -> None:
        if self.as_json:
            self.json_line(job.to_dict())
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
        if job.last_error is not None:
            rows.append(("last error", job.last_error))
        if job.result is not None:
            rows.append(("result", _preview(job.result)))
        if job.idempotency_key is not None:
            rows.append(("idempotency key", job.idempotency_key))
        for name, value in rows:
            table.add_row(name, value)
        self.console.print(table)

    def jobs(self, jobs: Iterable[Job]) -> int:
        """Print a listing; returns how many jobs it held."""
        if self.as_json:
            count = 0
            for job in jobs:
                self.json_line(job.to_dict())
                count += 1
            return count
        table = Table("ID", "TYPE", "STATUS", "ATTEMPTS", "RUN AT", "UPDATED")
        count = 0
        for job in jobs:
            table.add_row(
                job.id,
                job.type,
                status_text(job),
                str(job.attempts),
                _time(job.run_at),
                _time(job.updated_at),
            )
            count += 1
        if count:
            self.console.print(table)
        self.console.print(f"{count} job{'s' if count != 1 else ''}", style="dim")
        return count

    def stats(self, stats: QueueStats) -> None:
        if self.as_json:
            self.json_line(stats.to_dict())
            return
        table = Table("TYPE", "PENDING", "SCHEDULED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
        for row in (*stats.types, stats.total):
            table.add_row(
                row.type or Text("total", style="bold"),
                str(row.pending),
                str(row.scheduled),
                str(row.running),
                str(row.completed),
                str(row.failed),
                str(row.cancelled),
                end_section=row is stats.types[-1] if stats.types else False,
            )
        self.console.print(table)
        if stats.omitted_types:
            self.console.print(
                f"{stats.omitted_types} more types hold jobs (the first 1,000 by name are shown)",
                style="dim",
            )

    def state(self, job: Job) -> None:
        """One line per observed state, for ``watch`` and ``submit --wait``."""
        if self.as_json:
            self.json_line(job.to_dict())
            return
        line = Text(f"{_time(job.updated_at)}  ")
        line.append_text(status_text(job))
        line.append(f"  attempts={job.attempts}")
        if job.cancel_requested and not job.is_finished:
            line.append("  cancel requested", style="magenta")
        if job.last_error is not None and job.status is not JobStatus.COMPLETED:
            line.append(f"  error: {job.last_error.splitlines()[0] if job.last_error else ''}")
        if job.result is not None:
            line.append(f"  result: {_preview(job.result)}")
        self.console.print(line)

    def message(self, text: str) -> None:
        if not self.as_json:
            self.console.print(text)


def status_text(job: Job) -> Text:
    return Text(job.status.name, style=_STATUS_STYLES[job.status])


def _time(value: datetime) -> str:
    return value.astimezone().isoformat(sep=" ", timespec="milliseconds")


def _preview(data: bytes) -> str:
    text = data.decode("utf-8", errors="backslashreplace")
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "…"
