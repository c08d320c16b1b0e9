"""The server's security settings: tokens (inline or from a file), TLS files, the CLI."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner

from jobqueue.grpc import BearerTokenAuth, ServerTls
from jobqueue.memory import MemoryJobStore
from jobqueue_server import App, Container, ServerSettings
from jobqueue_server.__main__ import cli
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc
from tests.security._pki import Pki, make_pki

TOKEN = "server-token-0123456789abcdef"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def container_for(**settings: object) -> Container:
    container = Container()
    container.settings.override(ServerSettings(host="127.0.0.1", port=0, **settings))  # type: ignore[arg-type]
    return container


def test_by_default_there_is_no_auth_and_no_tls(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        container = container_for()
        assert container.auth() is None
    assert container.tls() is None
    assert "every client may call every RPC" in caplog.text


def test_the_token_is_a_secret_in_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_AUTH_TOKEN", f"{TOKEN}, other-token-0123456789")
    settings = ServerSettings()
    assert TOKEN not in repr(settings)
    auth = Container()
    auth.settings.override(settings)
    interceptor = auth.auth()
    assert isinstance(interceptor, BearerTokenAuth)
    assert interceptor.accepts(f"Bearer {TOKEN}")
    assert interceptor.accepts("Bearer other-token-0123456789")


def test_tokens_come_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{TOKEN}\nnext-token-0123456789abc\n")
    interceptor = container_for(auth_token_file=path).auth()
    assert isinstance(interceptor, BearerTokenAuth)
    assert interceptor.accepts("Bearer next-token-0123456789abc")


def test_an_empty_token_source_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("\n \n")
    with pytest.raises(ValueError, match="holds no token"):
        container_for(auth_token_file=path).auth()
    with pytest.raises(ValueError, match="holds no token"):
        container_for(auth_token=" , ").auth()
    with pytest.raises(OSError, match="nowhere"):
        container_for(auth_token_file=tmp_path / "nowhere").auth()


def test_a_short_token_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        container_for(auth_token="short").auth()
    assert "shorter than 16" in caplog.text


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"auth_token": TOKEN, "auth_token_file": "/x"}, "not both"),
        ({"tls_cert_file": "/c"}, "go together"),
        ({"tls_key_file": "/k"}, "go together"),
        ({"tls_client_ca_file": "/ca"}, "needs JOBQUEUE_TLS_CERT_FILE"),
    ],
)
def test_inconsistent_security_settings_are_refused(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerSettings(**settings)  # type: ignore[arg-type]


def test_tls_files_are_read(pki: Pki) -> None:
    tls = container_for(
        tls_cert_file=pki.server.cert, tls_key_file=pki.server.key, tls_client_ca_file=pki.ca.cert
    ).tls()
    assert isinstance(tls, ServerTls)
    assert tls.mutual


async def test_the_app_serves_tls_and_checks_tokens(pki: Pki) -> None:
    container = container_for(
        auth_token=TOKEN, tls_cert_file=pki.server.cert, tls_key_file=pki.server.key
    )
    with container.store.override(MemoryJobStore()):
        app = App(container)
        await app.start()
        try:
            creds = grpc.ssl_channel_credentials(root_certificates=pki.ca_pem)
            async with grpc.aio.secure_channel(f"127.0.0.1:{app.port}", creds) as channel:
                jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await jobs.EnqueueJob(pb.EnqueueJobRequest(type="t"))
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
                reply = await jobs.EnqueueJob(
                    pb.EnqueueJobRequest(type="t"), metadata=(("authorization", f"Bearer {TOKEN}"),)
                )
                assert reply.job.id
        finally:
            await app.stop()


def test_the_cli_documents_the_security_flags() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for flag in ("--auth-token-file", "--tls-cert-file", "--tls-key-file", "--tls-client-ca-file"):
        assert flag in result.output
    assert "JOBQUEUE_AUTH_TOKEN" in result.output


def test_the_cli_names_an_unreadable_certificate(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["--tls-cert-file", str(tmp_path / "missing.pem"), "--tls-key-file", str(tmp_path / "k")],
    )
    assert result.exit_code == 1
    assert "missing.pem" in result.output
