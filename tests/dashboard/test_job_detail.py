"""The job page shows what the job was enqueued with and how far it got, all of it escaped."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from jobqueue.dashboard import Dashboard
from jobqueue.domain import (
    EnqueueRequest,
    JobService,
    JobStore,
    OnConflict,
    Outcome,
    OutcomeKind,
    ProgressReport,
    ProgressService,
    ProgressStore,
    UniqueScope,
)

from .conftest import BASE, client_of


async def test_the_job_page_shows_priority_unique_key_progress_and_headers(
    service: JobService, store: JobStore, dashboard_for: Callable[..., Dashboard]
) -> None:
    await service.enqueue(
        EnqueueRequest(
            type="resize",
            priority=7,
            unique_key="img-<b>42</b>",
            unique_scope=UniqueScope.DEBOUNCE,
            on_conflict=OnConflict.RETURN_EXISTING,
            unique_window_ms=90_000,
            headers={"traceparent": "00-abc-def-01", "note": "<script>alert(1)</script>"},
        )
    )
    (lease,) = await store.claim(["resize"], limit=1, lease_ms=60_000)
    progress = ProgressService(cast(ProgressStore, store))
    report = ProgressReport(
        job_id=lease.job.id, token=lease.token, fraction=0.4, message="resizing <em>big</em>"
    )
    assert await progress.report([report]) == [True]
    async with client_of(dashboard_for()) as client:
        page = (await client.get(f"{BASE}/jobs/{lease.job.id}")).text
        # A finished job's stream sends it once and ends; its progress is kept.
        outcome = Outcome(job_id=lease.job.id, token=lease.token, kind=OutcomeKind.FAIL)
        assert await store.settle([outcome]) == [True]
        live = (await client.get(f"{BASE}/live/jobs/{lease.job.id}")).text
    assert '<dd id="job-priority">7</dd>' in page
    assert "<code>img-&lt;b&gt;42&lt;/b&gt;</code> · scope debounce (" in page
    assert "on conflict: return existing" in page
    assert '<progress max="1" value="0.4">40%</progress>' in page
    assert '<span id="job-progress-percent">40%</span>' in page
    assert '<span id="job-progress-message">resizing &lt;em&gt;big&lt;/em&gt;</span>' in page
    assert "<dt><code>note</code></dt><dd>&lt;script&gt;alert(1)&lt;/script&gt;</dd>" in page
    assert "<dt><code>traceparent</code></dt><dd>00-abc-def-01</dd>" in page
    assert "<script>alert" not in page
    # The live fragment that replaces it every few seconds carries the same facts.
    assert '<progress max="1" value="0.4">' in live
    assert 'id="job-headers"' in live


async def test_a_plain_job_shows_its_default_priority_and_nothing_it_lacks(
    service: JobService, dashboard_for: Callable[..., Dashboard]
) -> None:
    job = await service.enqueue("plain", b"{}")
    async with client_of(dashboard_for()) as client:
        page = (await client.get(f"{BASE}/jobs/{job.id}")).text
    assert '<dd id="job-priority">0 <span class="muted">(default)</span></dd>' in page
    for absent in ('id="job-unique"', 'id="job-progress"', 'id="job-headers"'):
        assert absent not in page
