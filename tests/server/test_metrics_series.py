"""RPC series are looked up once per (method, code), then reused: the counts must still add up."""

from __future__ import annotations

import grpc

from jobqueue_server._metrics import Metrics

ENQUEUE = "/mpataki.jobqueue.v1.JobService/EnqueueJob"
CLAIM = "/mpataki.jobqueue.v1.WorkerService/ClaimJobs"


def value(text: str, line_start: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_repeated_observations_add_up_per_method_and_code() -> None:
    metrics = Metrics()
    try:
        for _ in range(3):
            metrics.observe(method=ENQUEUE, code=grpc.StatusCode.OK, duration_s=0.001)
        metrics.observe(method=ENQUEUE, code=grpc.StatusCode.INVALID_ARGUMENT, duration_s=0.002)
        metrics.observe(method=CLAIM, code=grpc.StatusCode.OK, duration_s=0.5)
        text = metrics.exposition()[0].decode()
    finally:
        metrics.close()
    requests = "jobqueue_rpc_requests_total"
    assert value(text, f'{requests}{{code="OK",method="{ENQUEUE}"}}') == 3
    assert value(text, f'{requests}{{code="INVALID_ARGUMENT",method="{ENQUEUE}"}}') == 1
    assert value(text, f'{requests}{{code="OK",method="{CLAIM}"}}') == 1
    seconds = "jobqueue_rpc_duration_seconds"
    assert value(text, f'{seconds}_count{{method="{ENQUEUE}"}}') == 4
    assert value(text, f'{seconds}_count{{method="{CLAIM}"}}') == 1
    assert value(text, f'{seconds}_sum{{method="{CLAIM}"}}') == 0.5
