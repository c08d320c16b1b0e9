"""TLS on the server: reached over TLS, refused in plaintext, and mutual TLS."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jobqueue.grpc import BearerTokenAuth, RunningServer, ServerTls
from jobqueue.memory import MemoryJobStore
from mpataki.jobqueue.v1 import jobqueue_pb2, jobqueue_pb2_grpc
from tests.grpc.conftest import start_api
from tests.security._pki import Pair, Pki

ServerFactory = Callable[..., AbstractAsyncContextManager[RunningServer]]


@pytest.fixture
def tls_server() -> ServerFactory:
    @asynccontextmanager
    async def serve(tls: ServerTls, **kwargs: object) -> AsyncIterator[RunningServer]:
        store = MemoryJobStore()
        server = await start_api(store, tls=tls, **kwargs)  # type: ignore[arg-type]
        try:
            yield server
        finally:
            await server.stop(None)
            await store.close()

    return serve


def server_tls(pki: Pki, *, mutual: bool = False) -> ServerTls:
    return ServerTls.from_files(
        cert_file=pki.server.cert,
        key_file=pki.server.key,
        client_ca_file=pki.ca.cert if mutual else None,
    )


def credentials(root: bytes, client: Pair | None = None) -> grpc.ChannelCredentials:
    if client is None:
        return grpc.ssl_channel_credentials(root_certificates=root)
    return grpc.ssl_channel_credentials(
        root_certificates=root,
        private_key=client.key.read_bytes(),
        certificate_chain=client.cert.read_bytes(),
    )


async def enqueue(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] | None = None
) -> str:
    jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
    reply = await jobs.EnqueueJob(
        jobqueue_pb2.EnqueueJobRequest(type="t"), metadata=metadata, timeout=5
    )
    return reply.job.id


async def health(channel: grpc.aio.Channel) -> grpc.StatusCode:
    try:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_tls_server_answers_over_tls(
    pki: Pki, tls_server: ServerFactory, host: str
) -> None:
    async with tls_server(server_tls(pki)) as server:
        target = f"{host}:{server.port}"
        async with grpc.aio.secure_channel(target, credentials(pki.ca_pem)) as channel:
            assert await enqueue(channel)
            assert await health(channel) == grpc.StatusCode.OK


async def test_a_tls_server_refuses_plaintext(pki: Pki, tls_server: ServerFactory) -> None:
    async with (
        tls_server(server_tls(pki)) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        assert await health(channel) == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await enqueue(channel)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_client_that_does_not_trust_the_ca_is_refused(
    pki: Pki, tls_server: ServerFactory
) -> None:
    rogue_ca = (pki.ca.cert.parent / "rogue-ca.pem").read_bytes()
    async with (
        tls_server(server_tls(pki)) as server,
        grpc.aio.secure_channel(f"127.0.0.1:{server.port}", credentials(rogue_ca)) as channel,
    ):
        assert await health(channel) == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_admits_only_clients_with_a_certificate_of_the_ca(
    pki: Pki, tls_server: ServerFactory
) -> None:
    async with tls_server(server_tls(pki, mutual=True)) as server:
        target = f"127.0.0.1:{server.port}"
        async with grpc.aio.secure_channel(target, credentials(pki.ca_pem, pki.client)) as ok:
            assert await enqueue(ok)
        async with grpc.aio.secure_channel(target, credentials(pki.ca_pem)) as anonymous:
            assert await health(anonymous) == grpc.StatusCode.UNAVAILABLE
        rogue = credentials(pki.ca_pem, pki.rogue_client)
        async with grpc.aio.secure_channel(target, rogue) as channel:
            assert await health(channel) == grpc.StatusCode.UNAVAILABLE


async def test_tls_and_a_token_together(pki: Pki, tls_server: ServerFactory) -> None:
    token = "tls-and-token-0123456789"
    auth = BearerTokenAuth([token])
    async with (
        tls_server(server_tls(pki), interceptors=[auth]) as server,
        grpc.aio.secure_channel(f"127.0.0.1:{server.port}", credentials(pki.ca_pem)) as channel,
    ):
        assert await health(channel) == grpc.StatusCode.OK
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await enqueue(channel)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert await enqueue(channel, (("authorization", f"Bearer {token}"),))


def test_server_tls_checks_pem_and_hides_the_key(pki: Pki) -> None:
    tls = server_tls(pki, mutual=True)
    assert tls.mutual
    assert "PRIVATE" not in repr(tls)
    with pytest.raises(ValueError, match="not PEM"):
        ServerTls(certificate_chain=b"junk", private_key=pki.server.key.read_bytes())
    with pytest.raises(ValueError, match="key is not PEM"):
        ServerTls(certificate_chain=pki.server.cert.read_bytes(), private_key=b"junk")
    with pytest.raises(OSError, match="missing"):
        ServerTls.from_files(cert_file=pki.server.cert, key_file=pki.server.key.parent / "missing")
    # Another pair's key: it was found only when listening failed, and read as a busy port.
    with pytest.raises(ValueError, match="does not go with the certificate"):
        ServerTls.from_files(cert_file=pki.server.cert, key_file=pki.ca.key)


def test_a_pair_grpc_serves_is_not_refused_for_its_strength(tmp_path: Path) -> None:
    # gRPC applies no OpenSSL security level; Python's ssl does (level 2), and
    # read a 1024-bit RSA key as a key that did not go with its certificate.
    cert, key = tmp_path / "weak.pem", tmp_path / "weak.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=weak",
        ],
        check=True,
        capture_output=True,
    )
    assert ServerTls.from_files(cert_file=cert, key_file=key).private_key == key.read_bytes()
