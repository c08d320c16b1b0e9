"""grpc.health.v1 follows the store; reflection describes both services."""

from __future__ import annotations

import asyncio

from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from jobqueue.grpc import JOB_SERVICE_NAME, WORKER_SERVICE_NAME
from tests.grpc.conftest import Api

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def check(api: Api, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(api.channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
    status: int = response.status
    return status


async def wait_for(api: Api, wanted: int, service: str = "") -> None:
    for _ in range(100):
        if await check(api, service) == wanted:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"health never became {wanted}")


async def test_health_is_serving_for_the_server_and_each_service(api: Api) -> None:
    for service in ("", JOB_SERVICE_NAME, WORKER_SERVICE_NAME):
        assert await check(api, service) == SERVING


async def test_health_is_not_serving_while_the_store_is_down(api: Api) -> None:
    api.store.down = True
    await wait_for(api, NOT_SERVING)
    await wait_for(api, NOT_SERVING, JOB_SERVICE_NAME)
    assert api.server.health.healthy is False
    api.store.down = False
    await wait_for(api, SERVING)
    await wait_for(api, SERVING, WORKER_SERVICE_NAME)


async def test_stopping_reports_not_serving_first(api: Api) -> None:
    await api.server.health.shutdown()
    assert await check(api) == NOT_SERVING


async def reflect(
    api: Api, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    stub = reflection_pb2_grpc.ServerReflectionStub(api.channel)
    call = stub.ServerReflectionInfo(iter([request]))
    async for response in call:
        answer: reflection_pb2.ServerReflectionResponse = response
        return answer
    raise AssertionError("no reflection answer")


async def test_reflection_lists_both_services_and_health(api: Api) -> None:
    answer = await reflect(api, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {service.name for service in answer.list_services_response.service}
    assert {JOB_SERVICE_NAME, WORKER_SERVICE_NAME, "grpc.health.v1.Health"} <= names


async def test_reflection_describes_the_worker_service(api: Api) -> None:
    answer = await reflect(
        api, reflection_pb2.ServerReflectionRequest(file_containing_symbol=WORKER_SERVICE_NAME)
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answer.file_descriptor_response.file_descriptor_proto
    ]
    methods = {method.name for f in files for service in f.service for method in service.method}
    assert {"ClaimJobs", "SettleJobs", "RenewLeases"} <= methods
