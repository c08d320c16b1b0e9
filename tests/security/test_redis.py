"""The Redis store behind a password and behind TLS, and job input that never leaves the prefix.

Each test starts its own redis-server (``tests._redis_server.RedisProcess``)
with the configuration it needs, on a free loopback port.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote, urlencode

import grpc
import pytest
import redis

from jobqueue.domain import StoreUnavailable
from jobqueue.redis import RedisJobStore, RedisStoreSettings
from jobqueue_server import App, Container, ServerSettings
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc, worker_pb2, worker_pb2_grpc
from tests._redis_server import HOW_TO_GET_REDIS, RedisProcess, free_port
from tests.grpc.conftest import start_api
from tests.security._pki import Pki

pytestmark = pytest.mark.redis

PASSWORD = "p@ss:w/rd with spaces"  # characters that must be escaped in a URL
PREFIX = "jqsec"


class PasswordRedis(RedisProcess):
    """redis-server with ``requirepass``; its URL carries the password."""

    def __init__(self, password: str) -> None:
        super().__init__(extra_args=("--requirepass", password))
        self.password = password

    @property
    def url(self) -> str:
        return f"redis://:{quote(self.password, safe='')}@127.0.0.1:{self.port}/0"


class TlsRedis(RedisProcess):
    """redis-server speaking only TLS; its URL names the CA (and a client certificate)."""

    def __init__(self, pki: Pki, *, client_certificates: bool) -> None:
        port = free_port()
        super().__init__(
            port=port,
            extra_args=(
                "--port", "0",  # no plaintext port: the later --port wins
                "--tls-port", str(port),
                "--tls-cert-file", str(pki.server.cert),
                "--tls-key-file", str(pki.server.key),
                "--tls-ca-cert-file", str(pki.ca.cert),
                "--tls-auth-clients", "yes" if client_certificates else "no",
            ),
        )  # fmt: skip
        self.pki = pki
        self.client_certificates = client_certificates

    @property
    def url(self) -> str:
        query = {"ssl_ca_certs": str(self.pki.ca.cert)}
        if self.client_certificates:
            query |= {
                "ssl_certfile": str(self.pki.client.cert),
                "ssl_keyfile": str(self.pki.client.key),
            }
        return f"rediss://127.0.0.1:{self.port}/0?{urlencode(query)}"


def running(server: RedisProcess) -> Iterator[RedisProcess]:
    try:
        server.start()
    except RuntimeError as error:
        pytest.fail(f"{error}\n{HOW_TO_GET_REDIS}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def password_redis() -> Iterator[RedisProcess]:
    yield from running(PasswordRedis(PASSWORD))


@pytest.fixture
def plain_redis() -> Iterator[RedisProcess]:
    yield from running(RedisProcess())


def make_store(url: str) -> RedisJobStore:
    return RedisJobStore(
        RedisStoreSettings(
            url=url, key_prefix=PREFIX, connect_timeout_ms=1_000, socket_timeout_ms=2_000
        )
    )


async def round_trip(store: RedisJobStore) -> None:
    """Enqueue, claim and complete one job through the gRPC API over ``store``."""
    server = await start_api(store)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
            workers = worker_pb2_grpc.WorkerServiceStub(channel)
            job = (await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t", payload=b"x"))).job
            lease = (await workers.ClaimJobs(worker_pb2.ClaimJobsRequest(types=["t"]))).leases[0]
            settled = await workers.SettleJobs(
                worker_pb2.SettleJobsRequest(
                    outcomes=[
                        worker_pb2.Outcome(
                            job_id=lease.job.id,
                            token=lease.token,
                            kind=worker_pb2.OUTCOME_KIND_COMPLETE,
                            result=b"ok",
                        )
                    ]
                )
            )
            assert list(settled.accepted) == [True]
            done = (await jobs.GetJob(pb.GetJobRequest(id=job.id))).job
            assert done.status == pb.JOB_STATUS_COMPLETED
    finally:
        await server.stop(None)


# --- passwords -------------------------------------------------------------------------


async def test_the_store_works_with_the_password_in_the_url(
    password_redis: RedisProcess,
) -> None:
    store = make_store(password_redis.url)
    try:
        await store.ping()
        await round_trip(store)
    finally:
        await store.close()


@pytest.mark.parametrize("password", [None, "wrong"])
async def test_without_the_right_password_the_store_is_unavailable(
    password_redis: RedisProcess, password: str | None
) -> None:
    auth = "" if password is None else f":{password}@"
    store = make_store(f"redis://{auth}127.0.0.1:{password_redis.port}/0")
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await store.ping()
        assert PASSWORD not in str(caught.value)
    finally:
        await store.close()


async def test_the_server_never_logs_the_password(
    password_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    container = Container()
    container.settings.override(
        ServerSettings(host="127.0.0.1", port=0, redis_url=password_redis.url, key_prefix=PREFIX)
    )
    with caplog.at_level(logging.DEBUG):
        app = App(container)
        await app.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
                await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t"))
        finally:
            await app.stop()
    assert caplog.records
    assert quote(PASSWORD, safe="") not in caplog.text
    assert PASSWORD not in caplog.text


# --- TLS -------------------------------------------------------------------------------


@pytest.fixture
def tls_redis(pki: Pki) -> Iterator[RedisProcess]:
    yield from running(TlsRedis(pki, client_certificates=False))


@pytest.fixture
def mutual_tls_redis(pki: Pki) -> Iterator[RedisProcess]:
    yield from running(TlsRedis(pki, client_certificates=True))


async def test_the_store_works_over_rediss(tls_redis: RedisProcess) -> None:
    assert tls_redis.url.startswith("rediss://")
    store = make_store(tls_redis.url)
    try:
        await round_trip(store)
    finally:
        await store.close()


async def test_the_store_works_over_rediss_with_a_client_certificate(
    mutual_tls_redis: RedisProcess,
) -> None:
    store = make_store(mutual_tls_redis.url)
    try:
        await round_trip(store)
    finally:
        await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:{port}/0",  # plaintext to a TLS port
        "rediss://127.0.0.1:{port}/0?ssl_ca_certs={rogue}",  # a CA that did not sign Redis
        "rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}",  # Redis wants a client certificate
    ],
    ids=["plaintext", "untrusted", "no-client-cert"],
)
async def test_tls_mistakes_make_the_store_unavailable(
    mutual_tls_redis: RedisProcess, pki: Pki, url: str
) -> None:
    store = make_store(
        url.format(
            port=mutual_tls_redis.port,
            ca=quote(str(pki.ca.cert)),
            rogue=quote(str(pki.ca.cert.parent / "rogue-ca.pem")),
        )
    )
    try:
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.close()


# --- the key prefix --------------------------------------------------------------------

HOSTILE = [
    "{other}",
    "}:x",
    "{",
    "*",
    "a b",
    "a\nb",
    "a\r\nFLUSHALL\r\n",
    "\x00",
    "../../etc",
    "jq}:job:1",
    "caf\u00e9",
    "x" * 129,
    "y" * 100_000,
    "",
]
VALID_BUT_ODD = [":", "..", "-", "a:b:c", f"{PREFIX}:j:x", "x" * 128]


@pytest.fixture
async def prefixed_api(plain_redis: RedisProcess) -> AsyncIterator[grpc.aio.Channel]:
    store = make_store(plain_redis.url)
    server = await start_api(store)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield channel
    finally:
        await channel.close(None)
        await server.stop(None)
        await store.close()


async def answer(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_no_request_addresses_a_key_outside_the_prefix(
    prefixed_api: grpc.aio.Channel, plain_redis: RedisProcess
) -> None:
    jobs = jobqueue_pb2_grpc.JobServiceStub(prefixed_api)
    workers = worker_pb2_grpc.WorkerServiceStub(prefixed_api)
    ok_or_invalid = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
    for text in HOSTILE + VALID_BUT_ODD:
        expected = ok_or_invalid if text in VALID_BUT_ODD else {grpc.StatusCode.INVALID_ARGUMENT}
        assert await answer(jobs.EnqueueJob(pb.EnqueueJobRequest(type=text))) in expected, text
        keyed = pb.EnqueueJobRequest(type="t", idempotency_key=text)
        assert await answer(jobs.EnqueueJob(keyed)) in ok_or_invalid, text
        assert await answer(jobs.ListJobs(pb.ListJobsRequest(type=text))) in expected, text
        claim = worker_pb2.ClaimJobsRequest(types=[text], max_jobs=1)
        assert await answer(workers.ClaimJobs(claim)) in expected, text
        for job_id in (text, "{other}:" + text):
            assert await answer(jobs.GetJob(pb.GetJobRequest(id=job_id))) != (
                grpc.StatusCode.INTERNAL
            )
            assert await answer(jobs.CancelJob(pb.CancelJobRequest(id=job_id))) != (
                grpc.StatusCode.INTERNAL
            )
            ref = worker_pb2.LeaseRef(job_id=job_id, token=text)
            renew = worker_pb2.RenewLeasesRequest(leases=[ref])
            assert await answer(workers.RenewLeases(renew)) != grpc.StatusCode.INTERNAL
            outcome = worker_pb2.Outcome(
                job_id=job_id, token=text, kind=worker_pb2.OUTCOME_KIND_COMPLETE
            )
            settle = worker_pb2.SettleJobsRequest(outcomes=[outcome])
            assert await answer(workers.SettleJobs(settle)) != grpc.StatusCode.INTERNAL
    assert await answer(jobs.GetQueueStats(pb.GetQueueStatsRequest())) == grpc.StatusCode.OK

    raw = redis.Redis.from_url(plain_redis.url)
    try:
        keys = [key.decode(errors="replace") for key in raw.scan_iter(count=1000)]
    finally:
        raw.close()
    assert keys, "the requests wrote nothing: the test proves nothing"
    outside = [key for key in keys if not key.startswith("{" + PREFIX + "}:")]
    assert outside == []
