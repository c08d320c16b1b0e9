"""Use cases for producers and operators, free of any transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ._errors import InvalidJob, JobNotFound
from ._frozen import slot_builder, with_slot_init
from ._headers import validate_headers
from ._job import Job, JobPage, JobQuery, JobStatus, QueueStats
from ._ports import Clock, IdGenerator, JobStore
from ._unique import OnConflict, UniqueScope, validate_unique
from ._validation import (
    Limits,
    validate_execution_time,
    validate_idempotency_key,
    validate_job_id,
    validate_limit_key,
    validate_max_attempts,
    validate_payload,
    validate_priority,
    validate_type,
)

_KNOWN_TYPES = 1_024
"""Most job types a service remembers as valid (``_checked_type``)."""


@with_slot_init  # built per job by every transport's bulk enqueue: see _frozen.py
@dataclass(frozen=True, slots=True, kw_only=True)
class EnqueueRequest:
    """What a producer asks for; ``execution_time_ms`` None means "as soon as possible"."""

    type: str
    payload: bytes = b""
    execution_time_ms: int | None = None
    max_attempts: int | None = None
    idempotency_key: str | None = None
    # -100..100: among due jobs of a type, a higher one is claimed first.
    priority: int = 0
    # Per-key limits and turns (see _gates.py): a tenant such as a customer id.
    limit_key: str | None = None
    # A unique job (see _unique.py): None/0 leave the defaults (ACTIVE scope,
    # RETURN_EXISTING); options without a key are refused.
    unique_key: str | None = None
    unique_scope: UniqueScope | None = None
    on_conflict: OnConflict | None = None
    unique_window_ms: int | None = None
    # Context carried with the job (see _headers.py): at most 32 small strings.
    headers: Mapping[str, str] = field(default_factory=dict)


_plain_job: Callable[[str, str, bytes, int, int, int | None, str | None], Job] = slot_builder(
    Job,
    ("id", "type", "payload", "due", "now", "max_attempts", "idempotency_key"),
    {
        "id": "id",
        "type": "type",
        "payload": "payload",
        "status": "PENDING",
        "execution_time_ms": "due",
        "created_at": "now",
        "updated_at": "now",
        "max_attempts": "max_attempts",
        "idempotency_key": "idempotency_key",
    },
    {"PENDING": JobStatus.PENDING},
)
"""A new job with no flow-control option, from validated values: the keyword
``Job(...)`` cost 3.5 µs of it, this 1.7 (see _frozen.py)."""


class JobService:
    """Submit, inspect and cancel jobs; every input is validated before the store sees it."""

    def __init__(
        self,
        store: JobStore,
        *,
        clock: Clock,
        ids: IdGenerator,
        limits: Limits | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._limits = limits or Limits()
        self._known_types: set[str] = set()

    @property
    def limits(self) -> Limits:
        return self._limits

    async def enqueue(
        self,
        request: EnqueueRequest | str,
        payload: bytes = b"",
        *,
        execution_time_ms: int | None = None,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
        priority: int = 0,
        headers: Mapping[str, str] | None = None,
    ) -> Job:
        """Store one new job, validated.

        ``request`` is an ``EnqueueRequest`` (what a transport builds from its
        message, the same object ``enqueue_many`` takes). A job type with the
        fields as arguments is the shorter form for Python callers and builds
        that request; the fields must not be given beside a request.
        """
        if isinstance(request, EnqueueRequest):
            given = (payload, execution_time_ms, max_attempts, idempotency_key, priority, headers)
            if given != (b"", None, None, None, 0, None):
                raise TypeError("give the fields in the EnqueueRequest, not beside it")
            job = self._new_job(request, self._clock.now_ms())
        elif priority.__class__ is int and not priority and not headers:
            # The short form of a plain job builds no request (_new_job's shortcut).
            job = self._plain(
                request,
                payload,
                execution_time_ms,
                max_attempts,
                idempotency_key,
                self._clock.now_ms(),
            )
        else:
            request = EnqueueRequest(
                type=request,
                payload=payload,
                execution_time_ms=execution_time_ms,
                max_attempts=max_attempts,
                idempotency_key=idempotency_key,
                priority=priority,
                headers=headers or {},
            )
            job = self._new_job(request, self._clock.now_ms())
        (job,) = await self._store.add([job])
        return job

    async def enqueue_many(
        self, requests: Sequence[EnqueueRequest], *, idempotency_key: str | None = None
    ) -> list[Job]:
        """Enqueue a batch atomically: one invalid request rejects the whole batch.

        ``idempotency_key`` names the batch, so a retried call returns the jobs
        the first one stored: one key for the batch instead of one per job.
        """
        batch_key = validate_idempotency_key(idempotency_key)
        if not requests:
            return []
        if len(requests) > self._limits.max_batch_size:
            raise InvalidJob("jobs", f"a batch holds at most {self._limits.max_batch_size} jobs")
        now = self._clock.now_ms()
        jobs = []
        for index, request in enumerate(requests):
            try:
                jobs.append(self._new_job(request, now))
            except InvalidJob as error:
                raise InvalidJob(f"jobs[{index}].{error.field}", error.message) from None
        _refuse_repeated_unique_keys(jobs)
        return await self._store.add(jobs, batch_key=batch_key)

    async def get(self, job_id: str) -> Job:
        job_id = validate_job_id(job_id)
        job = await self._store.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def cancel(self, job_id: str) -> Job:
        return await self._store.cancel(validate_job_id(job_id))

    async def list_jobs(
        self,
        *,
        job_type: str | None = None,
        status: JobStatus | None = None,
        page_size: int = 100,
        cursor: str = "",
    ) -> JobPage:
        if job_type is not None:
            validate_type(job_type)
        if page_size <= 0:
            page_size = 100
        page_size = min(page_size, self._limits.max_page_size)
        query = JobQuery(type=job_type, status=status, limit=page_size, cursor=cursor)
        return await self._store.list_jobs(query)

    async def stats(self) -> QueueStats:
        return await self._store.stats()

    def watch(self, job_id: str) -> AsyncIterator[Job]:
        return self._store.watch(validate_job_id(job_id))

    def _new_job(self, request: EnqueueRequest, now: int) -> Job:
        execution_time = request.execution_time_ms
        priority = request.priority
        if (
            priority.__class__ is int
            and not priority
            and request.limit_key is None
            and request.unique_key is None
            and not request.headers
            and not (request.unique_scope or request.on_conflict or request.unique_window_ms)
        ):
            # The common job uses none of the flow-control options: their
            # validators would only return their defaults (issue 15 kept plain
            # enqueue within 10% of before). Any option set takes the full path.
            return self._plain(
                request.type,
                request.payload,
                execution_time,
                request.max_attempts,
                request.idempotency_key,
                now,
            )
        return Job(
            id=self._ids.new_id(),
            type=self._checked_type(request.type),
            payload=validate_payload(request.payload, self._limits),
            status=JobStatus.PENDING,
            execution_time_ms=now
            if execution_time is None
            else validate_execution_time(execution_time),
            created_at=now,
            updated_at=now,
            max_attempts=validate_max_attempts(request.max_attempts, self._limits),
            idempotency_key=validate_idempotency_key(request.idempotency_key),
            priority=validate_priority(request.priority),
            limit_key=validate_limit_key(request.limit_key, priority=request.priority),
            headers=validate_headers(request.headers),
            unique=validate_unique(
                request.unique_key,
                request.unique_scope,
                request.on_conflict,
                request.unique_window_ms,
            ),
        )

    def _plain(
        self,
        job_type: str,
        payload: bytes,
        execution_time: int | None,
        max_attempts: int | None,
        idempotency_key: str | None,
        now: int,
    ) -> Job:
        """A new job with no flow-control option, validated in the full path's order."""
        return _plain_job(
            self._ids.new_id(),
            self._checked_type(job_type),
            validate_payload(payload, self._limits),
            now if execution_time is None else validate_execution_time(execution_time),
            now,
            validate_max_attempts(max_attempts, self._limits),
            validate_idempotency_key(idempotency_key),
        )

    def _checked_type(self, job_type: str) -> str:
        """``validate_type``, remembered: a producer sends a few types over and over."""
        if job_type.__class__ is not str:
            return validate_type(job_type)  # its errors, never a set's TypeError
        if job_type in self._known_types:
            return job_type
        validate_type(job_type)
        if len(self._known_types) >= _KNOWN_TYPES:
            self._known_types.clear()  # bounded: many types only cost the check again
        self._known_types.add(job_type)
        return job_type


def _refuse_repeated_unique_keys(jobs: Sequence[Job]) -> None:
    """Refuse a batch that names one unique key (of one type) twice.

    Within one batch the second job would be decided against the first before
    it is stored: a REJECT would name a holder that never exists, a REPLACE
    would cancel a job its caller never saw. Both are the caller's mistake.
    """
    first: dict[tuple[str, str], int] = {}
    for index, job in enumerate(jobs):
        if job.unique is None:
            continue
        earlier = first.setdefault((job.type, job.unique.key), index)
        if earlier != index:
            raise InvalidJob(f"jobs[{index}].unique_key", f"repeats jobs[{earlier}]")
