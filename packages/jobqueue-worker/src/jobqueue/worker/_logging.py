"""How the worker's log lines read, and a JSON formatter for log collectors.

Every line about a job says which job (id, type, attempt) and, for a failure,
the error's type and message in the message itself, so a plain
``logging.basicConfig()`` shows what happened. The same facts are attached as
``extra=`` fields (``job_id``, ``job_type``, ``attempt``, ``error``...) for
structured handlers such as ``JsonFormatter``.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

from ._context import JobContext

logger = logging.getLogger("jobqueue.worker")

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def job_label(ctx: JobContext) -> str:
    """``job <id> (<type>, attempt <n> of <max>)``: how every log line names a job."""
    return f"job {ctx.id} ({ctx.type}, attempt {ctx.attempt} of {ctx.max_attempts})"


def job_fields(ctx: JobContext) -> dict[str, Any]:
    return {"job_id": ctx.id, "job_type": ctx.type, "attempt": ctx.attempt}


def error_text(error: BaseException) -> str:
    """``Type: message`` (or the type alone when the message is empty)."""
    message = str(error)
    name = type(error).__qualname__
    return f"{name}: {message}" if message else name


class JsonFormatter(logging.Formatter):
    """Formats each record as one JSON object per line, for log collectors.

    The object holds ``time`` (UTC, ISO 8601), ``level``, ``logger`` and
    ``message``, every ``extra=`` field of the record (the worker's
    ``job_id``, ``job_type``, ``attempt``, ``error``...), and ``exception``
    with the formatted traceback when the record carries one. Values JSON
    cannot hold are written as their ``str``.

    Example:
        >>> handler = logging.StreamHandler()
        >>> handler.setFormatter(JsonFormatter())
        >>> logging.basicConfig(level="INFO", handlers=[handler])
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
