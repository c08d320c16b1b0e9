"""Job headers, on every store: kept with the job, given back by every read."""

from __future__ import annotations

import dataclasses

from jobqueue.domain import JobQuery, JobStore
from tests.contract.conftest import MakeJob

HEADERS = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tenant": 'acme "quoted" é',
}


async def test_headers_survive_add_get_claim_and_list(store: JobStore, make_job: MakeJob) -> None:
    job = dataclasses.replace(make_job("mail"), headers=HEADERS)
    plain = make_job("mail")
    [stored, stored_plain] = await store.add([job, plain])
    assert stored.headers == HEADERS
    assert stored_plain.headers == {}
    got = await store.get(job.id)
    assert got is not None
    assert got.headers == HEADERS
    leases = await store.claim(["mail"], limit=2, lease_ms=30_000)
    assert {lease.job.id: lease.job.headers for lease in leases} == {
        job.id: HEADERS,
        plain.id: {},
    }
    page = await store.list_jobs(JobQuery(type="mail"))
    assert {listed.id: listed.headers for listed in page.jobs} == {job.id: HEADERS, plain.id: {}}
