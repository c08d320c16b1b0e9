"""Fixtures of the security tests: a throwaway PKI, and servers with auth or TLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.security._pki import Pki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    try:
        return make_pki(tmp_path_factory.mktemp("pki"))
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def pki_dir(pki: Pki) -> Path:
    return pki.ca.cert.parent
