"""The public faces of ``jobqueue.domain`` and ``jobqueue.memory``, pinned name by name.

A name added, removed or moved between groups is an API change: it shows
here first, in review, rather than in a user's import.
"""

from __future__ import annotations

import jobqueue.domain
import jobqueue.memory

DOMAIN = [
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
    "validate_priority",
    "validate_limit_key",
    "MIN_PRIORITY",
    "MAX_PRIORITY",
    "truncate_error",
    "result_too_large",
    "validate_headers",
    "MAX_HEADERS",
    "MAX_HEADER_KEY_LENGTH",
    "MAX_HEADER_VALUE_BYTES",
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
    "TypeLimits",
    "validate_limits",
    # Counters and their history
    "JobCounters",
    "TypeCounters",
    "CounterSample",
    "COUNTER_KINDS",
    "DEFAULT_SAMPLE_INTERVAL_MS",
    "DEFAULT_SAMPLES_KEPT",
    "counters_from_pairs",
    "totals",
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
    # Progress
    "ProgressReport",
    "ProgressStore",
    "ProgressService",
    "validate_progress",
    "MAX_PROGRESS_MESSAGE_LENGTH",
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
    "trigger_key",
    "DEFAULT_CATCHUP_WINDOW_MS",
    "SCHEDULE_KEY_WINDOW_MS",
    "MAX_TRIGGER_KEY_LENGTH",
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

MEMORY = ["MemoryJobStore", "MemoryStoreSettings", "MemoryScheduleStore"]


def test_the_domain_face_is_pinned() -> None:
    assert jobqueue.domain.__all__ == DOMAIN
    for name in DOMAIN:
        assert hasattr(jobqueue.domain, name), name


def test_the_memory_face_is_pinned() -> None:
    assert jobqueue.memory.__all__ == MEMORY
    for name in MEMORY:
        assert hasattr(jobqueue.memory, name), name


def test_no_private_module_leaks_through_a_face() -> None:
    for package in (jobqueue.domain, jobqueue.memory):
        public = {name for name in vars(package) if not name.startswith("_")}
        # Submodules are attributes of their package once imported; anything
        # else public must be listed.
        leaked = {
            name
            for name in public - set(package.__all__)
            if not hasattr(getattr(package, name), "__path__")
            and type(getattr(package, name)).__name__ != "module"
        }
        assert leaked == set(), package.__name__
