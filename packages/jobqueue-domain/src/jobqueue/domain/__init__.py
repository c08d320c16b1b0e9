"""The pure domain of jobqueue: jobs, their state machine, rules, ports and use cases.

It imports nothing but the standard library, so any service can depend on it.
"""

from ._admin import (
    DEFAULT_BULK_LIMIT,
    MAX_BULK_LIMIT,
    RETRYABLE_STATUSES,
    AdminService,
    AdminStore,
    BulkAction,
    BulkResult,
    JobFilter,
    JobNotFinished,
    JobNotRetryable,
    decode_bulk_cursor,
    encode_bulk_cursor,
)
from ._clock import ManualClock, SystemClock, UuidV7Generator
from ._cursor import ListPosition, decode_cursor, encode_cursor
from ._errors import (
    CapacityExceeded,
    InvalidJob,
    InvalidTransition,
    JobAlreadyFinished,
    JobNotFound,
    JobQueueError,
    LeaseLost,
    StoreUnavailable,
)
from ._gates import GateService, TypeGates
from ._job import (
    TERMINAL_STATUSES,
    Job,
    JobPage,
    JobQuery,
    JobStatus,
    Lease,
    LeaseState,
    Outcome,
    OutcomeKind,
    QueueStats,
    TypeStats,
)
from ._leasing import MAX_RETRY_DELAY_MS, LeaseRules, LeaseService
from ._ports import Clock, IdGenerator, JobStore
from ._presence import (
    DEFAULT_WORKER_TTL_MS,
    MAX_LISTED_WORKERS,
    MAX_WORKER_TTL_MS,
    MAX_WORKER_TYPES,
    MIN_WORKER_TTL_MS,
    PresenceService,
    PresenceStore,
    WorkerInfo,
    live_workers_by_type,
    validate_worker,
    validate_worker_id,
    validate_worker_ttl,
)
from ._retry import DEFAULT_RETRY_POLICY, RetryPolicy, failure_outcome
from ._schedule_service import Advance, ScheduleService, ScheduleStore
from ._schedules import (
    DEFAULT_CATCHUP_WINDOW_MS,
    CronParser,
    CronRule,
    FirePlan,
    JobTemplate,
    OverlapPolicy,
    Schedule,
    ScheduleNotFound,
    plan,
    tick_key,
    ticks_after,
)
from ._service import EnqueueRequest, JobService
from ._transitions import (
    DEFAULT_MAX_ATTEMPTS,
    MAX_UNCONFIRMED_DELIVERIES,
    TRANSITIONS,
    Event,
    effective_max_attempts,
    resolve,
    transition,
)
from ._unique import (
    MAX_UNIQUE_KEY_LENGTH,
    MAX_UNIQUE_WINDOW_MS,
    OnConflict,
    UniqueConflict,
    UniqueRule,
    UniqueScope,
    validate_unique,
)
from ._validation import (
    MAX_EPOCH_MS,
    MAX_TYPE_LENGTH,
    Limits,
    result_too_large,
    truncate_error,
    validate_execution_time,
    validate_idempotency_key,
    validate_job_id,
    validate_max_attempts,
    validate_payload,
    validate_type,
)

__all__ = [
    # Jobs and their values
    "Job",
    "JobStatus",
    "TERMINAL_STATUSES",
    "Lease",
    "LeaseState",
    "Outcome",
    "OutcomeKind",
    "JobQuery",
    "JobPage",
    "TypeStats",
    "QueueStats",
    "ListPosition",
    "encode_cursor",
    "decode_cursor",
    # State machine
    "Event",
    "TRANSITIONS",
    "transition",
    "resolve",
    "effective_max_attempts",
    "DEFAULT_MAX_ATTEMPTS",
    "MAX_UNCONFIRMED_DELIVERIES",
    # Rules
    "Limits",
    "MAX_EPOCH_MS",
    "MAX_TYPE_LENGTH",
    "validate_type",
    "validate_payload",
    "validate_execution_time",
    "validate_max_attempts",
    "validate_idempotency_key",
    "validate_job_id",
    "truncate_error",
    "result_too_large",
    # Retries
    "RetryPolicy",
    "DEFAULT_RETRY_POLICY",
    "failure_outcome",
    # Ports and their defaults
    "JobStore",
    "Clock",
    "IdGenerator",
    "SystemClock",
    "ManualClock",
    "UuidV7Generator",
    # Use cases
    "JobService",
    "EnqueueRequest",
    "LeaseService",
    "LeaseRules",
    "MAX_RETRY_DELAY_MS",
    # Claim-time gates
    "TypeGates",
    "GateService",
    # Operators' actions
    "AdminService",
    "AdminStore",
    "BulkAction",
    "BulkResult",
    "JobFilter",
    "JobNotRetryable",
    "JobNotFinished",
    "RETRYABLE_STATUSES",
    "DEFAULT_BULK_LIMIT",
    "MAX_BULK_LIMIT",
    "encode_bulk_cursor",
    "decode_bulk_cursor",
    # Worker presence
    "WorkerInfo",
    "PresenceStore",
    "PresenceService",
    "validate_worker",
    "validate_worker_id",
    "validate_worker_ttl",
    "live_workers_by_type",
    "DEFAULT_WORKER_TTL_MS",
    "MIN_WORKER_TTL_MS",
    "MAX_WORKER_TTL_MS",
    "MAX_WORKER_TYPES",
    "MAX_LISTED_WORKERS",
    # Unique jobs
    "UniqueRule",
    "UniqueScope",
    "OnConflict",
    "UniqueConflict",
    "validate_unique",
    "MAX_UNIQUE_KEY_LENGTH",
    "MAX_UNIQUE_WINDOW_MS",
    # Recurring schedules
    "Schedule",
    "JobTemplate",
    "OverlapPolicy",
    "ScheduleStore",
    "ScheduleService",
    "Advance",
    "CronParser",
    "CronRule",
    "FirePlan",
    "plan",
    "ticks_after",
    "tick_key",
    "DEFAULT_CATCHUP_WINDOW_MS",
    # Errors
    "JobQueueError",
    "InvalidJob",
    "JobNotFound",
    "JobAlreadyFinished",
    "InvalidTransition",
    "LeaseLost",
    "CapacityExceeded",
    "StoreUnavailable",
    "ScheduleNotFound",
]
