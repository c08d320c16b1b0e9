"""The public surface of ``jobqueue.redis``, pinned, and its deprecated setting names."""

from __future__ import annotations

import dataclasses

import pytest

import jobqueue.redis
from jobqueue.domain import JobQueueError
from jobqueue.redis import RedisStoreSettings, ShardLayoutMismatch


def test_redis_exports_are_pinned() -> None:
    assert jobqueue.redis.__all__ == [
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
    for name in jobqueue.redis.__all__:
        assert getattr(jobqueue.redis, name) is not None


def test_every_duration_setting_names_its_unit() -> None:
    names = [field.name for field in dataclasses.fields(RedisStoreSettings)]
    durations = [n for n in names if "timeout" in n or "retention" in n]
    assert durations == [
        "retention_ms",
        "socket_timeout_ms",
        "connect_timeout_ms",
        "replica_timeout_ms",
    ]


def test_the_old_seconds_names_still_work_and_warn() -> None:
    with pytest.warns(DeprecationWarning, match="socket_timeout_ms"):
        settings = RedisStoreSettings(socket_timeout_s=1.5)
    assert settings.socket_timeout_ms == 1_500
    with pytest.warns(DeprecationWarning, match="connect_timeout_ms"):
        settings = RedisStoreSettings(connect_timeout_s=0.25)
    assert settings.connect_timeout_ms == 250
    assert RedisStoreSettings() == RedisStoreSettings(
        socket_timeout_ms=5_000, connect_timeout_ms=2_000
    )


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        RedisStoreSettings(socket_timeout_ms=0)
    with pytest.raises(ValueError, match="shards"):
        RedisStoreSettings(shards=0)


def test_a_layout_mismatch_is_a_jobqueue_error_with_its_numbers() -> None:
    error = ShardLayoutMismatch(key_prefix="jq", configured=2, recorded=8)
    assert isinstance(error, JobQueueError)
    assert (error.key_prefix, error.configured, error.recorded) == ("jq", 2, 8)
