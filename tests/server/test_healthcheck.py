"""``jobqueue-healthcheck`` against a real server: SERVING → 0, NOT_SERVING → 1, nothing → 2."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from jobqueue.memory import MemoryJobStore
from jobqueue_server import App, Container, ServerSettings
from tests._redis_server import free_port
from tests.grpc._fakes import FaultyStore
from tests.security._pki import Pki, make_pki

SCRIPT = Path(sys.executable).parent / "jobqueue-healthcheck"

Serve = Callable[..., AbstractAsyncContextManager[App]]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def serve() -> Serve:
    @asynccontextmanager
    async def run(*, store_down: bool = False, **settings: object) -> AsyncIterator[App]:
        store = FaultyStore(MemoryJobStore())
        store.down = store_down
        container = Container()
        container.settings.override(ServerSettings(host="127.0.0.1", port=0, **settings))  # type: ignore[arg-type]
        with container.store.override(store):
            app = App(container)
            await app.start()
            try:
                yield app
            finally:
                await app.stop()

    return run


async def healthcheck(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the installed console script, as a container's HEALTHCHECK would."""
    assert SCRIPT.exists(), f"{SCRIPT} is missing: run `uv sync`"
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JOBQUEUE_TLS_", "JOBQUEUE_HEALTHCHECK_"))
    }
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        *args,
        env={**base, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_no_arguments_probe_jobqueue_port_and_pass_when_serving(serve: Serve) -> None:
    async with serve() as app:
        port = app.port
        code, output = await healthcheck(env={"JOBQUEUE_PORT": str(port)})
    assert code == 0, output
    assert output.strip() == f"127.0.0.1:{port}: SERVING"


async def test_a_server_whose_store_is_down_fails_with_1(serve: Serve) -> None:
    async with serve(store_down=True) as app:
        code, output = await healthcheck("--target", f"127.0.0.1:{app.port}")
    assert code == 1, output
    assert "NOT_SERVING" in output


async def test_nothing_listening_fails_with_2() -> None:
    code, output = await healthcheck("--timeout", "2", env={"JOBQUEUE_PORT": str(free_port())})
    assert code == 2, output
    assert "unreachable" in output
    assert len(output.strip().splitlines()) == 1


async def test_an_unknown_service_fails_with_1(serve: Serve) -> None:
    async with serve() as app:
        code, output = await healthcheck("--target", f"127.0.0.1:{app.port}", "--service", "nope")
    assert code == 1, output
    assert "does not know" in output


async def test_health_needs_no_token(serve: Serve) -> None:
    async with serve(auth_token="healthcheck-token-0123456789") as app:
        code, output = await healthcheck("--target", f"127.0.0.1:{app.port}")
    assert code == 0, output


async def test_tls_with_a_ca_file_and_the_servers_own_environment(serve: Serve, pki: Pki) -> None:
    tls = {"tls_cert_file": pki.server.cert, "tls_key_file": pki.server.key}
    async with serve(**tls) as app:
        target = f"127.0.0.1:{app.port}"
        code, output = await healthcheck("--target", target, "--ca-file", str(pki.ca.cert))
        assert code == 0, output
        # In plaintext, a TLS server is unreachable.
        code, output = await healthcheck("--target", target, "--no-tls")
        assert code == 2, output
        # No arguments in the server's container: its TLS settings switch TLS on,
        # JOBQUEUE_HEALTHCHECK_CA_FILE says whom to trust.
        env = {
            "JOBQUEUE_PORT": str(app.port),
            "JOBQUEUE_TLS_CERT_FILE": str(pki.server.cert),
            "JOBQUEUE_HEALTHCHECK_CA_FILE": str(pki.ca.cert),
        }
        code, output = await healthcheck(env=env)
        assert code == 0, output


async def test_mutual_tls_with_a_client_certificate(serve: Serve, pki: Pki) -> None:
    tls = {
        "tls_cert_file": pki.server.cert,
        "tls_key_file": pki.server.key,
        "tls_client_ca_file": pki.ca.cert,
    }
    async with serve(**tls) as app:
        target = f"127.0.0.1:{app.port}"
        ca = ("--target", target, "--ca-file", str(pki.ca.cert))
        code, output = await healthcheck(*ca)
        assert code == 2, output
        client = ("--cert-file", str(pki.client.cert), "--key-file", str(pki.client.key))
        code, output = await healthcheck(*ca, *client)
        assert code == 0, output


async def test_without_a_ca_file_the_servers_chain_file_is_trusted(
    serve: Serve, pki: Pki, tmp_path: Path
) -> None:
    chain = tmp_path / "chain.pem"
    chain.write_bytes(pki.server.cert.read_bytes() + pki.ca.cert.read_bytes())
    async with serve(tls_cert_file=chain, tls_key_file=pki.server.key) as app:
        env = {"JOBQUEUE_PORT": str(app.port), "JOBQUEUE_TLS_CERT_FILE": str(chain)}
        code, output = await healthcheck(env=env)
    assert code == 0, output
