"""Scenario 6: bad input at the API, from a hypothesis-driven fuzzer.

Requests are built by hand on the wire (so string fields can carry invalid
UTF-8, enums unknown numbers, fields the wrong wire type or unknown numbers)
and sent to a real server subprocess on Redis, for every RPC of JobService and
WorkerService, over each protocol its port speaks: gRPC (a grpcio channel),
Connect and gRPC-Web (raw HTTP/1.1, as the Go CLI and browsers send them).
Only documented status codes may come back (never INTERNAL or UNKNOWN); a rejected
request must leave every key under the server's prefix unchanged (DUMP before and
after; the counters' history aside); and health must answer SERVING throughout.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import grpc
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpataki.jobqueue.v1 import jobqueue_pb2 as pb
from mpataki.jobqueue.v1 import jobqueue_pb2_grpc as pb_grpc
from mpataki.jobqueue.v1 import worker_pb2 as wpb
from mpataki.jobqueue.v1 import worker_pb2_grpc as wpb_grpc
from tests.faults._http_calls import connect_call, grpc_web_call
from tests.faults._processes import ServerProc, health, own_redis
from tests.faults._scenario import LONG, SERVING, new_prefix, report, scale

pytestmark = [pytest.mark.faults, pytest.mark.timeout(scale(180, 1_800))]

EXAMPLES = scale(100, 1_000)
DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
PROTOCOLS = ["grpc", "connect", "grpcweb"]
MIB = 1024 * 1024

# -- the wire format, by hand ----------------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32/int64 go on the wire as ten bytes
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def length_delimited(number: int, data: bytes) -> bytes:
    return tag(number, 2) + varint(len(data)) + data


# Field kinds: "str" and "bytes" are length-delimited, "int" a varint (int32,
# int64 and enums alike), a tuple a nested message of those fields.
Spec = dict[int, object]
ENQUEUE: Spec = {1: "str", 2: "bytes", 3: "int", 4: "int", 5: "str"}
ID_ONLY: Spec = {1: "str"}
OUTCOME: Spec = {1: "str", 2: "str", 3: "int", 4: "bytes", 5: "str", 6: "int"}
LEASE_REF: Spec = {1: "str", 2: "str"}


@dataclass(frozen=True)
class Method:
    path: str
    fields: Spec
    repeated: frozenset[int] = frozenset()
    streaming: bool = False


JOBS = "/mpataki.jobqueue.v1.JobService/"
WORKERS = "/mpataki.jobqueue.v1.WorkerService/"
METHODS = [
    Method(JOBS + "EnqueueJob", ENQUEUE),
    Method(JOBS + "GetJob", ID_ONLY),
    Method(JOBS + "CancelJob", ID_ONLY),
    Method(JOBS + "EnqueueJobs", {1: ENQUEUE}, frozenset({1})),
    Method(JOBS + "ListJobs", {1: "str", 2: "int", 3: "int", 4: "str"}),
    Method(JOBS + "GetQueueStats", {}),
    Method(JOBS + "WatchJob", ID_ONLY, streaming=True),
    Method(WORKERS + "ClaimJobs", {1: "str", 2: "int", 3: "int", 4: "int"}, frozenset({1})),
    Method(WORKERS + "SettleJobs", {1: OUTCOME}, frozenset({1})),
    Method(WORKERS + "RenewLeases", {1: LEASE_REF, 2: "int"}, frozenset({1})),
]


@dataclass
class Known:
    """Real ids and tokens, so the fuzzer also hits jobs that exist."""

    ids: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)


KNOWN = Known()

INTS = st.one_of(
    st.sampled_from(
        [
            *(0, 1, -1, 2, 5, 99, 100, 1_000, 1_001, 30_000, 3_600_001, 2**31 - 1, -(2**31)),
            *(2**63 - 1, -(2**63), 253_402_300_799_999, 253_402_300_800_000, 10**17),
        ]
    ),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
TEXTS = st.one_of(
    st.sampled_from(["work", "", "a" * 128, "a" * 129, "bad type!", "{jq}:j:x", "../x", " "]),
    st.builds(lambda: str(uuid.uuid4())),
    st.sampled_from(["00000000-0000-0000-0000-000000000000", str(uuid.uuid4()).upper()]),
    st.text(max_size=40),
).map(str.encode)
RAW = st.one_of(
    st.binary(max_size=40),  # mostly invalid UTF-8 in a string field
    st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00", b"work\xff"]),
)


def known_ids() -> st.SearchStrategy[bytes]:
    return st.builds(lambda i: KNOWN.ids[i % len(KNOWN.ids)].encode(), st.integers(0, 1_000))


def known_tokens() -> st.SearchStrategy[bytes]:
    return st.builds(lambda i: KNOWN.tokens[i % len(KNOWN.tokens)].encode(), st.integers(0, 1_000))


STRINGS = st.one_of(TEXTS, RAW, known_ids(), known_tokens())
PAYLOADS = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([0, MIB, MIB + 1, 3 * MIB]).map(lambda n: b"x" * n),
)


@st.composite
def message(draw: st.DrawFn, spec: Spec, repeated: frozenset[int], depth: int = 0) -> bytes:
    out = bytearray()
    for number, kind in spec.items():
        count = draw(st.integers(0, 3)) if number in repeated else draw(st.integers(0, 1))
        for _ in range(count):
            wrong_wire_type = draw(st.integers(0, 19)) == 0
            if kind == "int" or wrong_wire_type:
                out += tag(number, 0) + varint(draw(INTS))
            elif kind == "str":
                out += length_delimited(number, draw(STRINGS))
            elif kind == "bytes":
                out += length_delimited(number, draw(PAYLOADS))
            else:
                assert isinstance(kind, dict)
                out += length_delimited(number, draw(message(kind, frozenset(), depth + 1)))
    if draw(st.integers(0, 9)) == 0:  # a field this server does not know
        number = draw(st.integers(min_value=6, max_value=2**29 - 1))
        out += length_delimited(number, draw(RAW)) if number % 2 else tag(number, 0) + b"\x01"
    return bytes(out)


def request_for(method: Method) -> st.SearchStrategy[bytes]:
    return st.one_of(message(method.fields, method.repeated), st.binary(max_size=64))


# -- the server under test --------------------------------------------------------------


@dataclass
class Target:
    server: ServerProc
    client: redis.Redis
    prefix: str
    channel: grpc.Channel
    codes: Counter[str] = field(default_factory=Counter)
    health_failures: list[int | None] = field(default_factory=list)
    health_checks: int = 0

    def snapshot(self) -> dict[bytes, bytes | None]:
        history = f"{{{self.prefix}}}:hz".encode()  # sampled by every server on its own clock
        keys = sorted(set(self.client.scan_iter(match=f"{{{self.prefix}}}:*")) - {history})
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.dump(key)
        return dict(zip(keys, pipe.execute(), strict=True))

    def stable_snapshot(self) -> dict[bytes, bytes | None]:
        """A snapshot no call in flight is still changing (a watch unregisters when it ends)."""
        last = self.snapshot()
        for _ in range(40):
            time.sleep(0.05)
            now = self.snapshot()
            if now == last:
                return now
            last = now
        return last

    def call(self, method: Method, request: bytes, protocol: str = "grpc") -> str:
        """The name of the status code the call ended with."""
        if protocol == "connect":
            return connect_call(self.server.port, method.path, request, streaming=method.streaming)
        if protocol == "grpcweb":
            return grpc_web_call(self.server.port, method.path, request, streaming=method.streaming)
        return self.call_grpc(method, request).name

    def call_grpc(self, method: Method, request: bytes) -> grpc.StatusCode:
        identity: Callable[[bytes], bytes] = lambda data: data  # noqa: E731
        try:
            if method.streaming:
                stream = self.channel.unary_stream(
                    method.path, request_serializer=identity, response_deserializer=identity
                )(request, timeout=5)
                try:
                    for _ in stream:
                        break  # the first message is the answer; the rest would follow changes
                finally:
                    stream.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs
                return grpc.StatusCode.OK
            self.channel.unary_unary(
                method.path, request_serializer=identity, response_deserializer=identity
            )(request, timeout=2)
        except grpc.RpcError as error:
            code: grpc.StatusCode = cast(grpc.Call, error).code()
            if code is grpc.StatusCode.CANCELLED and method.streaming:
                return grpc.StatusCode.OK  # our own cancel after the first message
            return code
        return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with own_redis() as redis_server:
        prefix = new_prefix()
        log_dir: Path = tmp_path_factory.mktemp("fuzz")
        # No lease sweep during the run: nothing but the fuzzer's requests may change the keys.
        server = ServerProc(
            redis_url=redis_server.url,
            prefix=prefix,
            log_dir=log_dir,
            env={"JOBQUEUE_SWEEP_INTERVAL_SECONDS": "3600"},
        )
        server.start()
        client = redis.Redis.from_url(redis_server.url)
        # As big as the server's messages may be: a client-side RESOURCE_EXHAUSTED
        # would be no answer of the server's, though the server did the work.
        channel = grpc.insecure_channel(
            server.target, options=[("grpc.max_receive_message_length", 128 * MIB)]
        )
        found = Target(server, client, prefix, channel)
        seed_jobs(channel)
        stop = threading.Event()

        def watch_health() -> None:
            while not stop.wait(0.1):
                status = health(server.port)
                found.health_checks += 1
                if status != SERVING:
                    found.health_failures.append(status)

        watcher = threading.Thread(target=watch_health, name="health-watch")
        watcher.start()
        try:
            yield found
        finally:
            stop.set()
            watcher.join(5)
            channel.close()
            code = server.stop()
            client.close()
            report(
                "bad-input",
                examples_per_rpc=EXAMPLES,
                rpcs=len(METHODS),
                codes=dict(found.codes),
                health_checks=found.health_checks,
                health_failures=len(found.health_failures),
                server_exit=code,
            )
            assert "Traceback" not in server.output(), server.output()[-4000:]


def seed_jobs(channel: grpc.Channel) -> None:
    """A job in every state, and the token of the running one."""
    jobs = pb_grpc.JobServiceStub(channel)
    workers = wpb_grpc.WorkerServiceStub(channel)
    KNOWN.ids.clear()
    KNOWN.tokens.clear()
    for job_type in ("seed.pending", "seed.running", "seed.done", "seed.cancelled"):
        KNOWN.ids.append(jobs.EnqueueJob(pb.EnqueueJobRequest(type=job_type)).job.id)
    jobs.CancelJob(pb.CancelJobRequest(id=KNOWN.ids[3]))
    for job_type in ("seed.running", "seed.done"):
        (lease,) = workers.ClaimJobs(
            wpb.ClaimJobsRequest(types=[job_type], max_jobs=1, lease_ms=3_600_000)
        ).leases
        KNOWN.tokens.append(lease.token)
    workers.SettleJobs(
        wpb.SettleJobsRequest(
            outcomes=[
                wpb.Outcome(
                    job_id=KNOWN.ids[2], token=KNOWN.tokens[1], kind=wpb.OUTCOME_KIND_COMPLETE
                )
            ]
        )
    )
    KNOWN.tokens.append("not-a-token")


# -- the tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.path.rsplit("/", 1)[1])
def test_bad_requests_get_documented_codes_and_change_nothing(
    target: Target, method: Method, protocol: str
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not LONG,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=request_for(method))
    def fuzz(request: bytes) -> None:
        # A watch unregisters itself after its call ended: wait for that to settle.
        before = target.stable_snapshot() if method.streaming else target.snapshot()
        code = target.call(method, request, protocol)
        target.codes[f"{protocol}:{code}"] += 1
        assert code in {status.name for status in DOCUMENTED}, (
            protocol,
            method.path,
            code,
            request[:200],
        )
        if code != "OK":
            after = target.stable_snapshot() if method.streaming else target.snapshot()
            changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
            assert not changed, (method.path, code, request[:200], sorted(changed)[:5])

    fuzz()
    assert not target.health_failures, target.health_failures[:5]


def test_concurrent_cancels_agree(target: Target) -> None:
    """Many cancels of the same jobs at once: each PENDING job is cancelled exactly once."""
    jobs = pb_grpc.JobServiceStub(target.channel)
    workers = wpb_grpc.WorkerServiceStub(target.channel)
    pending = [jobs.EnqueueJob(pb.EnqueueJobRequest(type="cancel.p")).job.id for _ in range(20)]
    for _ in range(10):
        jobs.EnqueueJob(pb.EnqueueJobRequest(type="cancel.r"))
    running = [
        lease.job.id
        for lease in workers.ClaimJobs(
            wpb.ClaimJobsRequest(types=["cancel.r"], max_jobs=10, lease_ms=60_000)
        ).leases
    ]
    assert len(running) == 10

    def cancel(job_id: str) -> tuple[str, grpc.StatusCode]:
        try:
            jobs.CancelJob(pb.CancelJobRequest(id=job_id), timeout=5)
        except grpc.RpcError as error:
            return job_id, cast(grpc.Call, error).code()
        return job_id, grpc.StatusCode.OK

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(cancel, [*pending, *running] * 8))
    by_job: dict[str, Counter[grpc.StatusCode]] = {}
    for job_id, code in answers:
        by_job.setdefault(job_id, Counter())[code] += 1
    for job_id in pending:
        # The first cancel ends it; every later one finds it finished.
        assert by_job[job_id] == Counter(
            {grpc.StatusCode.OK: 1, grpc.StatusCode.FAILED_PRECONDITION: 7}
        )
        assert jobs.GetJob(pb.GetJobRequest(id=job_id)).job.status == pb.JOB_STATUS_CANCELLED
    for job_id in running:
        # A running job only gets the request flagged, as often as it is asked.
        assert by_job[job_id] == Counter({grpc.StatusCode.OK: 8})
        job = jobs.GetJob(pb.GetJobRequest(id=job_id)).job
        assert job.status == pb.JOB_STATUS_RUNNING
        assert job.cancel_requested
    assert not target.health_failures, target.health_failures[:5]
