"""``jobqueue-healthcheck``: probe a server's grpc.health.v1 from inside its container.

Exit status: 0 when the server reports SERVING, 1 when it answers anything else
(NOT_SERVING, an unknown service, an error), 2 when it cannot be reached. One
line on stdout (0) or stderr (1, 2) says why.

Without arguments it probes ``127.0.0.1:$JOBQUEUE_PORT`` (8080 by default), so
the same environment that configures the server configures its probe. When
the server serves TLS (``JOBQUEUE_TLS_CERT_FILE`` is set) the probe speaks TLS
too, trusting ``JOBQUEUE_HEALTHCHECK_CA_FILE`` — or, lacking it, the server's
own certificate file, which is enough for a self-signed certificate or a
chain file that ends with its CA.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = 0
UNHEALTHY = 1
UNREACHABLE = 2

_UNREACHABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def default_target() -> str:
    return f"127.0.0.1:{os.environ.get('JOBQUEUE_PORT') or '8080'}"


def probe(
    target: str,
    *,
    service: str = "",
    timeout_s: float = 3.0,
    credentials: grpc.ChannelCredentials | None = None,
    server_name: str | None = None,
) -> tuple[int, str]:
    """Call Health/Check once; the exit status and a one-line verdict."""
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    channel = (
        grpc.insecure_channel(target, options=options)
        if credentials is None
        else grpc.secure_channel(target, credentials, options=options)
    )
    name = f"{target}{f' ({service})' if service else ''}"
    with channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError as error:
            code: grpc.StatusCode = error.code()
            details: str = error.details() or ""
            if code in _UNREACHABLE_CODES:
                return UNREACHABLE, f"{name}: unreachable ({code.name}): {details}"
            if code == grpc.StatusCode.NOT_FOUND:
                return UNHEALTHY, f"{name}: the server does not know this service"
            return UNHEALTHY, f"{name}: health check failed ({code.name}): {details}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    if response.status == health_pb2.HealthCheckResponse.SERVING:
        return SERVING, f"{name}: {status}"
    return UNHEALTHY, f"{name}: {status}"


def _credentials(
    *, tls: bool, ca_file: Path | None, cert_file: Path | None, key_file: Path | None
) -> grpc.ChannelCredentials | None:
    if not (tls or ca_file or cert_file):
        return None
    if (cert_file is None) != (key_file is None):
        raise click.UsageError("--cert-file and --key-file go together")
    return grpc.ssl_channel_credentials(
        root_certificates=ca_file.read_bytes() if ca_file else None,
        private_key=key_file.read_bytes() if key_file else None,
        certificate_chain=cert_file.read_bytes() if cert_file else None,
    )


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--target",
    envvar="JOBQUEUE_HEALTHCHECK_TARGET",
    help="host:port to probe [default 127.0.0.1:$JOBQUEUE_PORT, else 127.0.0.1:8080].",
)
@click.option("--service", default="", help="Service to ask about [default: the whole server].")
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=3.0,
    show_default=True,
    help="Seconds to wait for the answer before calling the server unreachable.",
)
@click.option(
    "--tls/--no-tls",
    default=None,
    help="Speak TLS [default: on when JOBQUEUE_TLS_CERT_FILE is set or --ca-file is given].",
)
@click.option(
    "--ca-file",
    type=_FILE,
    envvar="JOBQUEUE_HEALTHCHECK_CA_FILE",
    help="PEM CA to trust; implies TLS [env JOBQUEUE_HEALTHCHECK_CA_FILE].",
)
@click.option(
    "--cert-file",
    type=_FILE,
    envvar="JOBQUEUE_HEALTHCHECK_CERT_FILE",
    help="Client certificate, for a server that requires mutual TLS.",
)
@click.option(
    "--key-file",
    type=_FILE,
    envvar="JOBQUEUE_HEALTHCHECK_KEY_FILE",
    help="Private key of the client certificate.",
)
@click.option(
    "--server-name",
    envvar="JOBQUEUE_HEALTHCHECK_SERVER_NAME",
    help="Name the server's certificate must carry, when not the target's host.",
)
def cli(
    target: str | None,
    service: str,
    timeout_s: float,
    tls: bool | None,
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
    server_name: str | None,
) -> None:
    """Exit 0 when the jobqueue server is SERVING, 1 when it is not, 2 when unreachable."""
    server_cert = os.environ.get("JOBQUEUE_TLS_CERT_FILE")
    if tls is None:
        tls = bool(server_cert) or ca_file is not None or cert_file is not None
    if tls and ca_file is None and server_cert:
        ca_file = Path(server_cert)
    try:
        credentials = (
            _credentials(tls=True, ca_file=ca_file, cert_file=cert_file, key_file=key_file)
            if tls
            else None
        )
    except OSError as error:
        click.echo(f"jobqueue-healthcheck: {error}", err=True)
        sys.exit(UNREACHABLE)
    code, message = probe(
        target or default_target(),
        service=service,
        timeout_s=timeout_s,
        credentials=credentials,
        server_name=server_name,
    )
    click.echo(message, err=code != SERVING)
    sys.exit(code)


def main() -> None:
    cli(auto_envvar_prefix=None)
