"""Unique and idempotency keys on the wire: control characters, a key repeated in a batch."""

from __future__ import annotations

import grpc
import pytest

from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from tests.grpc.conftest import Api


async def test_a_batch_repeating_a_unique_key_is_refused_with_nothing_stored(api: Api) -> None:
    request = pb.EnqueueJobsRequest(
        jobs=[
            pb.EnqueueJobRequest(type="t", unique_key="K"),
            pb.EnqueueJobRequest(
                type="t",
                unique_key="K",
                on_conflict=pb.UNIQUE_CONFLICT_POLICY_REJECT,
            ),
        ]
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await api.jobs.EnqueueJobs(request)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "jobs[1].unique_key: repeats jobs[0]" in (raised.value.details() or "")
    stats = await api.jobs.GetQueueStats(pb.GetQueueStatsRequest())
    assert stats.total.pending == 0


@pytest.mark.parametrize("bad", ["a\x00b", "a\x1b[31m", "a\x7f", "a\x85b", "a\x9bb"])
@pytest.mark.parametrize("field", ["unique_key", "idempotency_key"])
async def test_keys_with_control_characters_are_refused(api: Api, field: str, bad: str) -> None:
    request = pb.EnqueueJobRequest(type="t", **{field: bad})  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await api.jobs.EnqueueJob(request)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in (raised.value.details() or "")
    stats = await api.jobs.GetQueueStats(pb.GetQueueStatsRequest())
    assert stats.total.pending == 0


async def test_keys_may_hold_any_printable_text(api: Api) -> None:
    job = await api.jobs.EnqueueJob(
        pb.EnqueueJobRequest(type="t", unique_key="kunde:ä 7 ✓", idempotency_key="order 42/ü")
    )
    assert job.job.unique_key == "kunde:ä 7 ✓"


async def test_one_key_in_two_types_is_no_repeat(api: Api) -> None:
    response = await api.jobs.EnqueueJobs(
        pb.EnqueueJobsRequest(
            jobs=[
                pb.EnqueueJobRequest(type="a", unique_key="K"),
                pb.EnqueueJobRequest(type="b", unique_key="K"),
            ]
        )
    )
    assert len({job.id for job in response.jobs}) == 2
