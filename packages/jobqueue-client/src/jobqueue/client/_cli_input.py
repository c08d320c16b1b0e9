"""Parsing what people type: times, durations, and the lines of a jobs file."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import click

from ._convert import execution_time_ms
from ._models import JobSpec

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``5m``, ``1h30m``, ``250ms``, ``2d``, or a plain number of seconds."""
    text = text.strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds < 0:
            raise ValueError("must not be negative")
        return seconds
    position = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m, 1h30m or 250ms")
    return total


def parse_time(text: str) -> datetime | int:
    """Epoch milliseconds (all digits) or an ISO 8601 time; without an offset it is local time."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither epoch milliseconds nor an ISO 8601 time "
            "such as 2030-01-31T09:00:00+00:00"
        ) from None


# Option callbacks rather than ParamType subclasses: ParamType became generic
# in click 8.2+, and a callback works the same on every click we accept.
def duration_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """Click callback: a ``--in``-style duration in seconds."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None


def time_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> datetime | int | None:
    """Click callback: an ``--at``-style time (epoch ms or ISO 8601)."""
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx=ctx, param=param) from None


_FIELDS = {
    "type": "type",
    "payload": "payload",
    "run_at": "run_at",
    "at": "run_at",
    "delay": "delay_s",
    "delay_s": "delay_s",
    "in": "delay_s",
    "max_attempts": "max_attempts",
    "idempotency_key": "idempotency_key",
    "key": "idempotency_key",
    "priority": "priority",
    "limit_key": "limit_key",
}


class BadJobLine(ValueError):
    """Raised when a line of a jobs file does not describe a job; says which line and why."""


@dataclass(frozen=True, slots=True)
class JobLine:
    """One job of a jobs file: where it stands, what it asks for, and its text as read."""

    number: int
    spec: JobSpec
    text: str


def read_job_lines(lines: Iterable[str], *, source: str) -> Iterator[JobLine]:
    """A ``JobLine`` per non-blank line of JSON objects, checked before sending.

    Each object has ``type`` and optionally ``payload`` (a string is sent as
    text, anything else as JSON), ``run_at``/``at`` (ISO 8601 or epoch ms),
    ``delay``/``in`` (seconds or ``30s``-style), ``max_attempts``,
    ``idempotency_key``/``key``, ``priority`` and ``limit_key``. Unknown fields
    are refused, so a typo never silently drops an option.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield JobLine(number, _checked(_spec(json.loads(line))), line.rstrip("\r\n"))
        except (ValueError, TypeError) as error:
            raise BadJobLine(f"{source}:{number}: {error}") from None


_TYPE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_MAX_KEY_CHARS = 256


def _checked(spec: JobSpec) -> JobSpec:
    """The server's own rules for a job, checked here too so a bad line stops the whole file.

    Only the payload's size limit is the server's to tell (it is configurable);
    a batch the server rejects for it stores nothing, and a re-run stores no
    batch twice (see ``batch_key``).
    """
    if not _TYPE.fullmatch(spec.type):
        raise ValueError("type: must be 1-128 characters of letters, digits and _ . : -")
    if spec.max_attempts is not None and spec.max_attempts < 1:
        raise ValueError("max_attempts: must be at least 1")
    key = spec.idempotency_key
    if key is not None and not 1 <= len(key) <= _MAX_KEY_CHARS:
        raise ValueError(f"idempotency_key: must be 1 to {_MAX_KEY_CHARS} characters")
    execution_time_ms(spec.run_at, spec.delay_s)  # raises for a negative delay or a bad time
    return spec


def batch_key(lines: Sequence[JobLine]) -> str:
    """The idempotency key of one batch of a jobs file, from its lines' text and position.

    Running the same file again sends the same keys, so the server returns the
    jobs it stored the first time instead of storing them again; after a fix
    to one line, only that line's batch is new.
    """
    digest = hashlib.sha256(f"{lines[0].number}\n".encode())
    for line in lines:
        digest.update(line.text.encode())
        digest.update(b"\n")
    return f"jobqueue-cli-file:{digest.hexdigest()}"


def _spec(item: Any) -> JobSpec:
    if not isinstance(item, dict):
        raise ValueError("each line must be a JSON object")
    fields: dict[str, Any] = {}
    for key, value in item.items():
        name = _FIELDS.get(key)
        if name is None:
            raise ValueError(f"unknown field {key!r}")
        if name in fields:
            raise ValueError(f"{name!r} is given twice")
        fields[name] = value
    job_type = fields.pop("type", None)
    if not isinstance(job_type, str):
        raise ValueError("'type' is required and must be a string")
    run_at = fields.get("run_at")
    if isinstance(run_at, str):
        fields["run_at"] = parse_time(run_at)
    elif run_at is not None and (isinstance(run_at, bool) or not isinstance(run_at, int)):
        raise ValueError("'run_at' must be an ISO 8601 string or epoch milliseconds")
    delay = fields.get("delay_s")
    if isinstance(delay, str):
        fields["delay_s"] = parse_duration(delay)
    elif delay is not None and (isinstance(delay, bool) or not isinstance(delay, int | float)):
        raise ValueError("'delay' must be seconds or a duration such as '30s'")
    attempts = fields.get("max_attempts")
    if attempts is not None and (isinstance(attempts, bool) or not isinstance(attempts, int)):
        raise ValueError("'max_attempts' must be an integer")
    priority = fields.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise ValueError("'priority' must be an integer")
    key = fields.get("idempotency_key")
    if key is not None and not isinstance(key, str):
        raise ValueError("'idempotency_key' must be a string")
    limit_key = fields.get("limit_key")
    if limit_key is not None and not isinstance(limit_key, str):
        raise ValueError("'limit_key' must be a string")
    if fields.get("run_at") is not None and fields.get("delay_s") is not None:
        raise ValueError("give run_at or delay, not both")
    return JobSpec(job_type, **fields)


def read_payload(text: str | None, stdin: IO[bytes]) -> str | bytes | None:
    """A PAYLOAD argument: text as given, ``-`` for stdin, ``@path`` for a file's bytes.

    Bytes from stdin or a file are sent exactly as read: JSON, text or binary.
    (Text that starts with ``@`` can be sent through stdin.)
    """
    if text == "-":
        return stdin.read()
    if text is not None and text.startswith("@"):
        return Path(text[1:]).expanduser().read_bytes()
    return text
