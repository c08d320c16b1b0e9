"""The real ``jobqueue-server`` process, configured only by environment: a token and TLS."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from jobqueue_server._healthcheck import SERVING, probe
from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc
from tests._redis_server import free_port
from tests.security._pki import Pki

pytestmark = pytest.mark.integration

TOKEN = "process-token-0123456789abcdef"


@pytest.fixture
def secured_server(pki: Pki, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    token_file = tmp_path / "tokens"
    token_file.write_text(f"old-token-0123456789abcdef\n{TOKEN}\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")},
        "JOBQUEUE_HOST": "127.0.0.1",
        "JOBQUEUE_PORT": str(port),
        "JOBQUEUE_AUTH_TOKEN_FILE": str(token_file),
        "JOBQUEUE_TLS_CERT_FILE": str(pki.server.cert),
        "JOBQUEUE_TLS_KEY_FILE": str(pki.server.key),
        "JOBQUEUE_SHUTDOWN_GRACE_SECONDS": "1",
    }
    env.pop("REDIS_ADDR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "jobqueue_server"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca_pem)
    try:
        deadline = time.monotonic() + 15
        while probe(f"127.0.0.1:{port}", credentials=credentials, timeout_s=1)[0] != SERVING:
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server never became SERVING"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=15)
        # Neither the token nor the key material shows in the server's output.
        assert TOKEN.encode() not in output
        assert b"PRIVATE KEY" not in output


def test_the_configured_server_wants_tls_and_a_token(secured_server: int, pki: Pki) -> None:
    target = f"127.0.0.1:{secured_server}"
    with grpc.insecure_channel(target) as plaintext:
        with pytest.raises(grpc.RpcError) as refused:
            jobqueue_pb2_grpc.JobServiceStub(plaintext).GetQueueStats(
                pb.GetQueueStatsRequest(), timeout=2
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    credentials = grpc.ssl_channel_credentials(root_certificates=pki.ca_pem)
    with grpc.secure_channel(target, credentials) as channel:
        jobs = jobqueue_pb2_grpc.JobServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            jobs.GetQueueStats(pb.GetQueueStatsRequest(), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        for token in ("old-token-0123456789abcdef", TOKEN):
            reply = jobs.EnqueueJob(
                pb.EnqueueJobRequest(type="t"),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=5,
            )
            assert reply.job.id
