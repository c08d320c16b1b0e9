"""TLS, mutual TLS and bearer tokens, from the SDK and the CLI, against the server's own checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobqueue.client import AsyncJobClient, JobClient, ServerUnavailable, Unauthenticated
from jobqueue.grpc import BearerTokenAuth, RunningServer, ServerTls
from tests.client._servers import UnreliableStore, start_test_server
from tests.client.test_cli import assert_one_line_error, run_cli_async
from tests.security._pki import Pki, make_pki

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    try:
        return make_pki(tmp_path_factory.mktemp("client-pki"))
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
async def tls_server(pki: Pki, store: UnreliableStore) -> AsyncIterator[RunningServer]:
    """TLS with the test CA's server certificate, and a bearer token on every call."""
    tls = ServerTls.from_files(cert_file=pki.server.cert, key_file=pki.server.key)
    server = await start_test_server(store, tls=tls, interceptors=[BearerTokenAuth([TOKEN])])
    yield server
    await server.stop(None)


@pytest.fixture
async def mtls_server(pki: Pki, store: UnreliableStore) -> AsyncIterator[RunningServer]:
    """TLS that also requires a client certificate signed by the test CA."""
    tls = ServerTls.from_files(
        cert_file=pki.server.cert, key_file=pki.server.key, client_ca_file=pki.ca.cert
    )
    server = await start_test_server(store, tls=tls)
    yield server
    await server.stop(None)


async def test_tls_and_a_token_reach_the_server(tls_server: RunningServer, pki: Pki) -> None:
    async with AsyncJobClient(
        target=f"127.0.0.1:{tls_server.port}", ca_cert=pki.ca.cert, auth_token=TOKEN
    ) as client:
        job = await client.enqueue("t")
        assert (await client.get(job.id)).id == job.id


@pytest.mark.parametrize("token", [None, "wrong"])
async def test_a_missing_or_wrong_token_is_unauthenticated(
    tls_server: RunningServer, pki: Pki, token: str | None
) -> None:
    async with AsyncJobClient(
        target=f"127.0.0.1:{tls_server.port}", ca_cert=pki.ca.cert, auth_token=token
    ) as client:
        with pytest.raises(Unauthenticated) as caught:
            await client.stats()
    assert caught.value.code == "UNAUTHENTICATED"


async def test_plaintext_to_a_tls_server_is_unavailable(tls_server: RunningServer) -> None:
    async with AsyncJobClient(
        target=f"127.0.0.1:{tls_server.port}", auth_token=TOKEN, retries=0
    ) as client:
        with pytest.raises(ServerUnavailable):
            await client.stats()


async def test_mutual_tls_needs_the_client_certificate(
    mtls_server: RunningServer, pki: Pki
) -> None:
    target = f"127.0.0.1:{mtls_server.port}"
    async with AsyncJobClient(
        target=target,
        ca_cert=pki.ca.cert,
        client_cert=pki.client.cert,
        client_key=pki.client.key,
    ) as client:
        await client.stats()
    async with AsyncJobClient(target=target, ca_cert=pki.ca.cert, retries=0) as anonymous:
        with pytest.raises(ServerUnavailable):
            await anonymous.stats()


def test_the_sync_client_takes_the_same_tls_options(pki: Pki) -> None:
    # Building the credentials reads the files; a wrong path fails at once.
    with JobClient(target="127.0.0.1:1", ca_cert=pki.ca.cert, auth_token=TOKEN):
        pass
    with pytest.raises(FileNotFoundError):
        JobClient(ca_cert=Path("/nonexistent/ca.pem"))


@pytest.mark.integration
async def test_the_cli_speaks_tls_with_a_token(tls_server: RunningServer, pki: Pki) -> None:
    target = f"127.0.0.1:{tls_server.port}"
    tls = ["--ca-cert", str(pki.ca.cert)]
    result = await run_cli_async(target, *tls, "--token", TOKEN, "--json", "stats")
    assert result.code == 0, result
    assert_one_line_error(
        await run_cli_async(target, *tls, "stats"), 6, "--token", "JOBQUEUE_AUTH_TOKEN"
    )
    assert_one_line_error(
        await run_cli_async(target, *tls, "--token", "wrong", "get", "x"), 6, "token"
    )


@pytest.mark.integration
async def test_the_cli_speaks_mutual_tls(mtls_server: RunningServer, pki: Pki) -> None:
    target = f"127.0.0.1:{mtls_server.port}"
    result = await run_cli_async(
        target,
        "--ca-cert",
        str(pki.ca.cert),
        "--client-cert",
        str(pki.client.cert),
        "--client-key",
        str(pki.client.key),
        "stats",
    )
    assert result.code == 0, result
    assert "total" in result.stdout
