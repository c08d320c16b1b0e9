"""The server runs on uvloop where it is installed, unless told otherwise."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from pydantic import ValidationError

from jobqueue_server.__main__ import loop_factory
from jobqueue_server.settings import ServerSettings


def test_auto_and_uvloop_choose_uvloop_when_it_is_installed() -> None:
    assert loop_factory("auto") is uvloop.new_event_loop
    assert loop_factory("uvloop") is uvloop.new_event_loop


def test_asyncio_keeps_the_standard_loop() -> None:
    factory = loop_factory("asyncio")
    assert factory is None
    with asyncio.Runner(loop_factory=factory) as runner:
        assert not isinstance(runner.get_loop(), uvloop.Loop)


def test_the_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_EVENT_LOOP", "asyncio")
    assert ServerSettings().event_loop == "asyncio"
    monkeypatch.setenv("JOBQUEUE_EVENT_LOOP", "trio")
    with pytest.raises(ValidationError, match="event_loop"):
        ServerSettings()
