"""Page tokens for job listings, shared by every store so tokens mean one thing."""

from __future__ import annotations

import base64
import json
from typing import NamedTuple

from ._errors import InvalidJob
from ._job import JobStatus


class ListPosition(NamedTuple):
    """Where a listing stands: the sort key of the last job on the previous page.

    ``position`` is the due time of a PENDING job, the lease deadline of a
    RUNNING one and the finish time of a terminal one.
    """

    status: JobStatus
    type: str
    position: int
    job_id: str


def encode_cursor(last: ListPosition) -> str:
    raw = json.dumps([int(last.status), last.type, last.position, last.job_id])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> ListPosition | None:
    """The position a page token names; None for the empty token of a first page."""
    if not cursor:
        return None
    try:
        status, job_type, position, job_id = json.loads(base64.urlsafe_b64decode(cursor))
        return ListPosition(JobStatus(int(status)), str(job_type), int(position), str(job_id))
    except (ValueError, TypeError):
        raise InvalidJob("page_token", "is not a token this server issued") from None
