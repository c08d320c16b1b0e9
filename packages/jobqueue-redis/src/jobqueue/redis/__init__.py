"""Redis JobStore: atomic Lua scripts over one hash per job and sorted sets per type."""

from ._durability import redis_warnings
from ._errors import ShardLayoutMismatch
from ._key_upgrade import KeyUpgradeReport, upgrade_key_names
from ._migrate import MigrationReport, migrate_to_shards
from ._schedules import RedisScheduleStore
from ._settings import RedisStoreSettings
from ._store import MAX_CLAIM, RedisJobStore

__all__ = [
    "RedisJobStore",
    "RedisStoreSettings",
    "RedisScheduleStore",
    "MAX_CLAIM",
    "MigrationReport",
    "migrate_to_shards",
    "KeyUpgradeReport",
    "upgrade_key_names",
    "redis_warnings",
    "ShardLayoutMismatch",
]
