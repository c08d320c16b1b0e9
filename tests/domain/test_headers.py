"""Job headers: validated at enqueue (nothing stored when refused), kept with the job."""

from __future__ import annotations

import pytest

from jobqueue.domain import (
    MAX_HEADER_VALUE_BYTES,
    MAX_HEADERS,
    EnqueueRequest,
    InvalidJob,
    JobService,
    SystemClock,
    UuidV7Generator,
    validate_headers,
)
from jobqueue.memory import MemoryJobStore


def test_good_headers_are_copied() -> None:
    given = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    checked = validate_headers(given)
    assert checked == given
    assert checked is not given
    assert validate_headers(None) == {}


@pytest.mark.parametrize(
    "headers",
    [
        {f"k{i}": "v" for i in range(MAX_HEADERS + 1)},
        {"": "v"},
        {"has space": "v"},
        {"-leading": "v"},
        {"k" * 129: "v"},
        {"k": "é" * (MAX_HEADER_VALUE_BYTES // 2 + 1)},
        {"k": 1},
    ],
)
def test_bad_headers_are_refused(headers: dict[str, object]) -> None:
    with pytest.raises(InvalidJob) as refused:
        validate_headers(headers)  # type: ignore[arg-type]
    assert refused.value.field == "headers"


async def test_a_job_keeps_its_headers_and_a_bad_map_stores_nothing() -> None:
    store = MemoryJobStore()
    service = JobService(store, clock=SystemClock(), ids=UuidV7Generator())
    job = await service.enqueue("mail", headers={"tenant": "acme", "x.request-id": "r1"})
    assert (await service.get(job.id)).headers == {"tenant": "acme", "x.request-id": "r1"}
    with pytest.raises(InvalidJob):
        await service.enqueue_many(
            [EnqueueRequest(type="mail"), EnqueueRequest(type="mail", headers={"a b": ""})]
        )
    assert (await service.stats()).total.pending == 1
    assert MAX_HEADERS == 32
