"""Pausing job types through both SDKs and the CLI, over a real gRPC server.

The server is in process (its own thread and event loop) and serves
JobService and AdminService (its gates from a ``GateService``) over a
memory store; the CLI runs as a user runs it, as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from jobqueue.client import AsyncJobClient, InvalidJob, JobClient, TypeLimits
from jobqueue.domain import AdminService, GateService
from jobqueue.grpc import AdminServicer
from tests.client._servers import AdminServerThread
from tests.client.test_cli import run_cli

LEASE = 30_000


class GateServer(AdminServerThread):
    """JobService and AdminService's gates over one memory store, on a loop of its own."""

    def __init__(self) -> None:
        super().__init__("gate-server")

    def admin_servicer(self) -> AdminServicer:
        return AdminServicer(AdminService(self.store), gates=GateService(self.store))

    def claimed(self, job_type: str) -> int:
        return len(self.run(self.store.claim([job_type], limit=100, lease_ms=LEASE)))


@pytest.fixture
def gate_server() -> Iterator[GateServer]:
    server = GateServer()
    yield server
    server.stop()


def test_the_blocking_client_pauses_and_resumes(gate_server: GateServer) -> None:
    with JobClient(target=gate_server.target, timeout_s=5) as client:
        client.enqueue("a")
        client.enqueue("a")
        assert client.pause_type("a") is True
        assert client.pause_type("a") is False
        client.enqueue("a")  # producers still enqueue
        assert gate_server.claimed("a") == 0
        rows = {row.type: row for row in client.stats().types}
        assert (rows["a"].paused, rows["a"].pending) == (True, 3)
        assert rows["a"].to_dict()["paused"] is True
        assert client.resume_type("a") is True
        assert client.resume_type("a") is False
        assert gate_server.claimed("a") == 3
        assert client.stats().types[0].paused is False


async def test_the_async_client_pauses_and_resumes(gate_server: GateServer) -> None:
    async with AsyncJobClient(target=gate_server.target, timeout_s=5) as client:
        await client.enqueue("b")
        assert await client.pause_type("b") is True
        assert await asyncio.to_thread(gate_server.claimed, "b") == 0
        assert await client.resume_type("b") is True
        assert await asyncio.to_thread(gate_server.claimed, "b") == 1


def test_a_bad_type_is_invalid_argument_and_pauses_nothing(gate_server: GateServer) -> None:
    with JobClient(target=gate_server.target, timeout_s=5) as client:
        for call in (client.pause_type, client.resume_type):
            with pytest.raises(InvalidJob) as caught:
                call("not a type!")
            assert caught.value.code == "INVALID_ARGUMENT"
        assert gate_server.run(gate_server.store.paused_types()) == []


@pytest.mark.integration
def test_the_cli_pauses_and_resumes(gate_server: GateServer) -> None:
    target = gate_server.target
    with JobClient(target=target, timeout_s=5) as client:
        client.enqueue("reports")
    paused = run_cli(target, "pause", "reports")
    assert (paused.code, paused.stdout.strip()) == (0, "reports: paused")
    again = run_cli(target, "pause", "reports", "--json")
    assert again.code == 0
    assert json.loads(again.stdout) == {"type": "reports", "paused": True, "changed": False}
    assert gate_server.claimed("reports") == 0
    stats = run_cli(target, "stats")
    assert "reports (paused)" in stats.stdout
    resumed = run_cli(target, "resume", "reports")
    assert (resumed.code, resumed.stdout.strip()) == (0, "reports: resumed")
    not_paused = run_cli(target, "resume", "reports")
    assert not_paused.stdout.strip() == "reports: resumed (it was not paused)"
    assert gate_server.claimed("reports") == 1
    bad = run_cli(target, "pause", "bad type")
    assert bad.code == 2
    assert "type" in bad.stderr


@pytest.mark.integration
def test_a_jobqueue_server_process_serves_pause_and_resume(target: str) -> None:
    """The server's own wiring: its AdminService has the gates, and stats show them."""
    paused = run_cli(target, "pause", "gates.e2e")
    assert (paused.code, paused.stdout.strip()) == (0, "gates.e2e: paused")
    stats = run_cli(target, "stats", "--json")
    rows = {row["type"]: row for row in stats.json()["types"]}
    assert rows["gates.e2e"]["paused"] is True
    resumed = run_cli(target, "resume", "gates.e2e", "--json")
    assert json.loads(resumed.stdout)["changed"] is True


def test_the_clients_set_and_read_limits(gate_server: GateServer) -> None:
    with JobClient(target=gate_server.target, timeout_s=5) as client:
        for _ in range(4):
            client.enqueue("lim")
        now = client.set_type_limits("lim", concurrency=2, rate=10, rate_interval_s=0.5)
        assert now == TypeLimits(concurrency=2, rate=10, rate_interval_s=0.5)
        assert client.type_limits("lim") == now
        assert gate_server.claimed("lim") == 2  # the store applies them at the next claim
        with pytest.raises(InvalidJob):
            client.set_type_limits("lim", concurrency=0)
        # A window of 0 or less, or under 1 ms, is refused: it went out as 1 ms
        # (a thousand times the rate asked for per second).
        for window in (0, -5, 0.0004, timedelta(seconds=-1)):
            with pytest.raises(InvalidJob, match="rate_interval"):
                client.set_type_limits("lim", rate=5, rate_interval_s=window)
            with pytest.raises(InvalidJob, match="rate_interval"):
                client.set_type_limits("lim", key_rate=5, key_rate_interval_s=window)
        assert client.type_limits("lim") == now
        assert client.set_type_limits("lim", rate=5, rate_interval_s=0.001).rate_interval_s == 0.001
        assert client.set_type_limits("lim") == TypeLimits()


async def test_the_async_client_sets_limits(gate_server: GateServer) -> None:
    async with AsyncJobClient(target=gate_server.target, timeout_s=5) as client:
        assert await client.set_type_limits("alim", rate=3) == TypeLimits(rate=3)
        assert (await client.type_limits("alim")).rate == 3
        per_key = await client.set_type_limits("alim", key_concurrency=2, key_rate=5)
        assert per_key == TypeLimits(key_concurrency=2, key_rate=5)
        assert await client.type_limits("alim") == per_key


@pytest.mark.integration
def test_the_cli_shows_and_changes_limits(gate_server: GateServer) -> None:
    target = gate_server.target
    shown = run_cli(target, "limits", "mail")
    assert (shown.code, shown.stdout.strip()) == (0, "mail: no limits")
    set_ = run_cli(target, "limits", "mail", "--concurrency", "5", "--rate", "50/s")
    assert set_.stdout.strip() == "mail: at most 5 running, at most 50 starts per 1s"
    # Options not given keep their value.
    rate_only = run_cli(target, "limits", "mail", "--rate", "600/m", "--json")
    assert json.loads(rate_only.stdout) == {
        "type": "mail",
        "concurrency": 5,
        "rate": 600,
        "rate_interval_s": 60.0,
        "key_concurrency": None,
        "key_rate": None,
        "key_rate_interval_s": 1.0,
    }
    removed = run_cli(target, "limits", "mail", "--concurrency", "0")
    assert removed.stdout.strip() == "mail: at most 600 starts per 60s"
    per_key = run_cli(target, "limits", "mail", "--key-concurrency", "2", "--key-rate", "10/500ms")
    assert per_key.stdout.strip() == (
        "mail: at most 600 starts per 60s, at most 2 running per key,"
        " at most 10 starts per 0.5s per key"
    )
    bad_key = run_cli(target, "limits", "mail", "--key-rate", "often")
    assert bad_key.code == 2
    assert "--key-rate" in bad_key.stderr
    bad = run_cli(target, "limits", "mail", "--rate", "fast")
    assert bad.code == 2
    assert "--rate" in bad.stderr
    cleared = run_cli(target, "limits", "mail", "--clear")
    assert cleared.stdout.strip() == "mail: no limits"
