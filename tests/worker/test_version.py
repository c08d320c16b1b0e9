"""The worker's own version, read from its ``.dist-info`` (no ``importlib.metadata`` import)."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

from jobqueue.worker import _version


@pytest.mark.parametrize("distribution", ["jobqueue-worker", "grpcio", "typing_extensions"])
def test_it_reads_what_importlib_metadata_reads(distribution: str) -> None:
    assert _version._from_dist_info(distribution) == importlib.metadata.version(distribution)


def test_the_first_entry_on_sys_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = tmp_path / "Jobqueue.Worker-9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: jobqueue-worker\nVersion: 9.9\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    assert _version._from_dist_info("jobqueue-worker") == "9.9"


def test_an_egg_or_a_zip_is_left_to_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "jobqueue_worker-1.0.egg-info").mkdir()
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    assert _version._from_dist_info("jobqueue-worker") is None
    archive = tmp_path / "deps.zip"
    archive.write_bytes(b"")
    monkeypatch.setattr(sys, "path", [str(archive), *sys.path[1:]])
    assert _version._from_dist_info("jobqueue-worker") is None


def test_not_installed_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_version, "_DISTRIBUTION", "jobqueue-worker-not-installed")
    _version.installed_version.cache_clear()
    try:
        assert _version.installed_version() == "unknown"
    finally:
        _version.installed_version.cache_clear()
