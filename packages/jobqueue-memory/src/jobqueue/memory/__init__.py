"""In-memory stores: the server's embedded default, and the fake used in tests.

``MemoryJobStore`` keeps jobs with the Redis store's semantics (the contract
suite runs both); ``MemoryScheduleStore`` keeps recurring schedules.
"""

from ._core import MemoryStoreSettings
from ._schedules import MemoryScheduleStore
from ._store import MemoryJobStore

__all__ = [
    # Jobs
    "MemoryJobStore",
    "MemoryStoreSettings",
    # Recurring schedules
    "MemoryScheduleStore",
]
