"""AdminService.SetTypeLimits and GetTypeLimits on grpcio: round trips, refusals, no use case."""

from __future__ import annotations

import grpc
import pytest

from mpataki.jobqueue.v1 import admin_pb2 as apb
from tests.grpc.test_admin_service import AdminApi, api, bare_api

__all__ = ["api", "bare_api"]  # the fixtures, shared with test_admin_service


async def test_limits_round_trip(api: AdminApi) -> None:
    limits = apb.TypeLimits(concurrency=5, rate=50, rate_interval_ms=1_000)
    set_ = await api.stub.SetTypeLimits(apb.SetTypeLimitsRequest(type="mail", limits=limits))
    assert set_.limits == limits
    got = await api.stub.GetTypeLimits(apb.GetTypeLimitsRequest(type="mail"))
    assert got.limits == limits
    # A zero window is the default second; unset fields are no limit.
    only_rate = apb.TypeLimits(rate=3)
    set_ = await api.stub.SetTypeLimits(apb.SetTypeLimitsRequest(type="mail", limits=only_rate))
    assert set_.limits == apb.TypeLimits(rate=3, rate_interval_ms=1_000)
    assert not set_.limits.HasField("concurrency")
    cleared = await api.stub.SetTypeLimits(apb.SetTypeLimitsRequest(type="mail"))
    assert not cleared.limits.HasField("rate")
    assert not cleared.limits.HasField("concurrency")


@pytest.mark.parametrize(
    "request_",
    [
        apb.SetTypeLimitsRequest(type="mail", limits=apb.TypeLimits(concurrency=0)),
        apb.SetTypeLimitsRequest(type="mail", limits=apb.TypeLimits(rate=-1)),
        apb.SetTypeLimitsRequest(
            type="mail", limits=apb.TypeLimits(rate=1, rate_interval_ms=86_400_001)
        ),
        apb.SetTypeLimitsRequest(type="bad type", limits=apb.TypeLimits(concurrency=1)),
    ],
)
async def test_bad_limits_are_invalid_argument_and_change_nothing(
    api: AdminApi, request_: apb.SetTypeLimitsRequest
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.SetTypeLimits(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    got = await api.stub.GetTypeLimits(apb.GetTypeLimitsRequest(type="mail"))
    assert got.limits == apb.TypeLimits(rate_interval_ms=1_000)


async def test_a_bad_type_to_read_is_invalid_argument(api: AdminApi) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.GetTypeLimits(apb.GetTypeLimitsRequest(type=""))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_without_gates_the_limits_rpcs_are_unimplemented(bare_api: AdminApi) -> None:
    for call in (
        bare_api.stub.SetTypeLimits(apb.SetTypeLimitsRequest(type="a")),
        bare_api.stub.GetTypeLimits(apb.GetTypeLimitsRequest(type="a")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
