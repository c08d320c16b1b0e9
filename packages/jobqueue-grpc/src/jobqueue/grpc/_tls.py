"""TLS for the server: a certificate chain, its key, and optionally a CA for client certificates."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

import grpc


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerTls:
    """PEM bytes the server presents, and the CA that client certificates must chain to.

    With ``client_ca`` set the server requires a client certificate signed by
    it (mutual TLS) and refuses the handshake otherwise; without it any client
    that trusts the server's certificate may connect (and bearer tokens, if
    configured, do the authentication).
    """

    certificate_chain: bytes = field(repr=False)
    private_key: bytes = field(repr=False)
    client_ca: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if b"-----BEGIN" not in self.certificate_chain:
            raise ValueError("the TLS certificate is not PEM")
        if b"-----BEGIN" not in self.private_key:
            raise ValueError("the TLS private key is not PEM")
        if self.client_ca is not None and b"-----BEGIN" not in self.client_ca:
            raise ValueError("the TLS client CA is not PEM")

    @classmethod
    def from_files(
        cls,
        *,
        cert_file: Path | str,
        key_file: Path | str,
        client_ca_file: Path | str | None = None,
    ) -> ServerTls:
        """Read the PEM files. Raises OSError (with the path) when one cannot be read,
        and ValueError when the key is not the certificate's (found at startup, not
        as a failure to listen that reads like a busy port)."""
        tls = cls(
            certificate_chain=Path(cert_file).read_bytes(),
            private_key=Path(key_file).read_bytes(),
            client_ca=Path(client_ca_file).read_bytes() if client_ca_file is not None else None,
        )
        if b"ENCRYPTED" in tls.private_key:
            raise ValueError(
                f"the TLS key {str(key_file)!r} is encrypted: gRPC reads no passphrase"
            )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # gRPC's TLS applies no security level: neither does this check, so a SHA-1
        # signature or a 1024-bit key that gRPC serves is not refused here.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        try:
            # An empty password: OpenSSL would otherwise ask for one on the terminal.
            context.load_cert_chain(cert_file, key_file, b"")
        except ssl.SSLError as error:
            if error.reason in ("KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED"):
                raise ValueError(
                    f"the TLS key {str(key_file)!r} does not go with the certificate "
                    f"{str(cert_file)!r}"
                ) from None
            raise ValueError(
                f"the TLS certificate {str(cert_file)!r} and key {str(key_file)!r} "
                f"cannot be loaded: {error.reason or error}"
            ) from None
        return tls

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )
