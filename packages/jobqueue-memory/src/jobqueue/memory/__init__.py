"""In-memory JobStore: the server's embedded default and the fake used in tests."""

from ._schedules import MemoryScheduleStore
from ._store import MemoryJobStore, MemoryStoreSettings

__all__ = ["MemoryJobStore", "MemoryStoreSettings", "MemoryScheduleStore"]
