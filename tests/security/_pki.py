"""A throwaway PKI for the TLS tests, made with the ``openssl`` command line at test time.

EC P-256 keys keep it fast (a few milliseconds a certificate). The server
certificate names ``localhost`` and ``127.0.0.1``; certificates live one day.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """A CA, a server and a client it signed, and a client signed by a CA nobody trusts."""

    ca: Pair
    server: Pair
    client: Pair
    rogue_client: Pair

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert.read_bytes()


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


def _ca(directory: Path, name: str) -> Pair:
    pair = Pair(directory / f"{name}.pem", directory / f"{name}.key")
    _openssl(
        "req", "-x509", *_KEY, "-keyout", pair.key, "-out", pair.cert, "-days", "1",
        "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    return pair


def _leaf(directory: Path, name: str, ca: Pair, extensions: str) -> Pair:
    pair = Pair(directory / f"{name}.pem", directory / f"{name}.key")
    csr = directory / f"{name}.csr"
    ext = directory / f"{name}.ext"
    ext.write_text(extensions)
    _openssl("req", *_KEY, "-keyout", pair.key, "-out", csr, "-subj", f"/CN={name}", cwd=directory)
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key,
        "-set_serial", str(secrets.randbits(63)), "-days", "1", "-out", pair.cert,
        "-extfile", ext,
        cwd=directory,
    )  # fmt: skip
    return pair


def make_pki(directory: Path) -> Pki:
    """Write the PKI's PEM files into ``directory``. Raises RuntimeError without openssl."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the TLS tests need the openssl command line (Debian: openssl)")
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "jobqueue-test-ca")
    rogue_ca = _ca(directory, "rogue-ca")
    server = _leaf(
        directory,
        "server",
        ca,
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        # redis-server also presents this certificate as a client (replication).
        "extendedKeyUsage=serverAuth,clientAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    client_ext = (
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\n"
    )
    client = _leaf(directory, "client", ca, client_ext)
    rogue_client = _leaf(directory, "rogue-client", rogue_ca, client_ext)
    return Pki(ca=ca, server=server, client=client, rogue_client=rogue_client)
