"""The dashboard's pure parts: settings, payload display, charts, history, exports."""

from __future__ import annotations

import pytest

import jobqueue.dashboard
from jobqueue.dashboard import DashboardSettings, StatsHistory
from jobqueue.dashboard._charts import line_chart, rate_chart
from jobqueue.dashboard._format import duration, iso, parse_time, show_bytes
from jobqueue.dashboard._live import event
from jobqueue.domain import QueueStats, TypeStats


def test_the_public_api_is_pinned() -> None:
    assert jobqueue.dashboard.__all__ == [
        "Dashboard",
        "DashboardSettings",
        "StatsHistory",
        "Sample",
        "Role",
        "CSRF_FIELD",
        "SECURITY_HEADERS",
    ]


def test_settings_come_from_the_environment() -> None:
    settings = DashboardSettings.from_env(
        {
            "JOBQUEUE_DASHBOARD_TOKEN": " admin ",
            "JOBQUEUE_DASHBOARD_READONLY_TOKEN": "reader",
            "JOBQUEUE_DASHBOARD_SECRET": "secret",
            "JOBQUEUE_DASHBOARD_SAMPLE_INTERVAL_MS": "1000",
        }
    )
    assert (settings.token, settings.readonly_token, settings.secret) == (
        "admin",
        "reader",
        "secret",
    )
    assert settings.auth_required
    assert settings.short_tokens
    assert settings.sample_interval_ms == 1000
    empty = DashboardSettings.from_env({"JOBQUEUE_DASHBOARD_TOKEN": ""})
    assert not empty.auth_required
    assert empty.enabled
    assert empty.secret is None
    assert not DashboardSettings.from_env({"JOBQUEUE_DASHBOARD_ENABLED": "false"}).enabled


@pytest.mark.parametrize(
    "env",
    [
        {"JOBQUEUE_DASHBOARD_TOKEN": "same", "JOBQUEUE_DASHBOARD_READONLY_TOKEN": "same"},
        {"JOBQUEUE_DASHBOARD_SAMPLE_INTERVAL_MS": "soon"},
        {"JOBQUEUE_DASHBOARD_SAMPLE_INTERVAL_MS": "0"},
        {"JOBQUEUE_DASHBOARD_ENABLED": "perhaps"},
        {"JOBQUEUE_DASHBOARD_PREFIX": "/dash/"},
    ],
)
def test_bad_settings_refuse_to_start(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"JOBQUEUE_DASHBOARD|dashboard"):
        DashboardSettings.from_env(env)


def test_payloads_show_as_json_text_or_hex() -> None:
    assert show_bytes(b'{"a":[1,2]}').text == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    assert show_bytes(b'{"a":').kind == "text"
    assert show_bytes(b"\xff\x00ab").text == "00000000  ff 00 61 62" + " " * 36 + "  ..ab"
    assert show_bytes(b"a\x00b").kind == "hex"
    assert show_bytes(b"").kind == show_bytes(None).kind == "empty"
    big = show_bytes(b"x" * (64 * 1024 + 1))
    assert big.truncated
    assert len(big.text) == 64 * 1024


def test_times_and_durations_read_well() -> None:
    assert iso(1_764_567_890_123) == "2025-12-01 05:44:50.123Z"
    assert [duration(ms) for ms in (850, 12_340, 245_000, 10_920_000, 187_200_000)] == [
        "850 ms",
        "12.3 s",
        "4 min 5 s",
        "3 h 2 min",
        "2 d 4 h",
    ]
    assert parse_time("2025-12-01T05:44:50.123") == 1_764_567_890_123
    assert parse_time("2025-12-01T06:44:50.123+01:00") == 1_764_567_890_123
    assert parse_time(" ") is None
    with pytest.raises(ValueError, match="yesterday"):
        parse_time("yesterday")


def stats(pending: int, completed: int) -> QueueStats:
    return QueueStats(types=[TypeStats(type="t", pending=pending, completed=completed)])


def test_the_history_is_a_bounded_ring() -> None:
    history = StatsHistory(3)
    for i in range(5):
        history.record(i * 1000, stats(i, 0))
    assert [s.pending for s in history.samples()] == [2, 3, 4]
    with pytest.raises(ValueError, match="positive"):
        StatsHistory(0)


def test_charts_scale_to_the_peak_and_rates_never_go_negative() -> None:
    history = StatsHistory(10)
    for at_ms, pending, completed in [(0, 0, 0), (30_000, 10, 5), (60_000, 5, 2)]:
        history.record(at_ms, stats(pending, completed))
    depth = line_chart("depth", history.samples(), ["pending"])
    assert depth.peak == 10
    assert depth.span_s == 60
    assert depth.series[0].points == "4.0,156.0 300.0,4.0 596.0,80.0"
    rates = rate_chart("rates", history.samples(), ["completed"])
    assert rates.series[0].latest == 0  # 5 -> 2: old jobs forgotten, not negative throughput
    assert rates.peak == 10  # 5 in 30 s is 10 a minute
    assert line_chart("none", [], ["pending"]).empty


def test_an_sse_event_carries_each_line_in_its_own_data_field() -> None:
    assert event("refresh", "<p>\n</p>") == "event: refresh\ndata: <p>\ndata: </p>\n\n"
