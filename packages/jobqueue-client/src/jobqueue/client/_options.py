"""The constructor both clients share: their options are one list, documented once."""

from __future__ import annotations

from ._channel import DEFAULT_TIMEOUT_S, PathLike, connection
from ._errors import JobQueueClientError
from ._renamed import renamed
from ._retry import DEFAULT_RETRY, RetryPolicy

OPTIONS_DOC = """
    Every call has a deadline (``timeout_s``). Calls that are safe to repeat are
    retried with backoff when the server is unavailable; enqueues are among
    them because each carries an idempotency key (generated per call unless
    given), so a retry after a lost reply never creates a second job.

    Args:
        target: ``host:port`` of the server; default ``$JOBQUEUE_SERVER``, else
            ``localhost:8080``.
        timeout_s: the deadline of each call attempt, in seconds.
        retries: retries on UNAVAILABLE (an int), or a full ``RetryPolicy``.
        tls: connect with TLS using the system's root certificates.
        ca_cert: path of the PEM root certificates to trust (implies TLS).
        client_cert: path of the PEM client certificate chain, for mutual TLS.
        client_key: path of the PEM private key of ``client_cert``.
        tls_server_name: the name to expect in the server's certificate, when
            it differs from the target's host.
        auth_token: sent as ``authorization: Bearer <token>`` on every call.
        timeout: deprecated name of ``timeout_s``.
"""
"""The part of each client's docstring that describes the options (``Args:``)."""


class ClientOptions:
    """What both clients are built from; the client classes document the options."""

    def __init__(
        self,
        *,
        target: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int | RetryPolicy = DEFAULT_RETRY,
        tls: bool = False,
        ca_cert: PathLike | None = None,
        client_cert: PathLike | None = None,
        client_key: PathLike | None = None,
        tls_server_name: str | None = None,
        auth_token: str | None = None,
        timeout: float | None = None,
    ) -> None:
        given = timeout_s != DEFAULT_TIMEOUT_S
        self._conn = connection(
            target=target,
            timeout=renamed("timeout", timeout, "timeout_s", timeout_s, given=given),
            retries=retries,
            tls=tls,
            ca_cert=ca_cert,
            client_cert=client_cert,
            client_key=client_key,
            tls_server_name=tls_server_name,
            auth_token=auth_token,
        )
        self._closed = False

    @property
    def target(self) -> str:
        """The ``host:port`` this client talks to."""
        return self._conn.target

    def _check_open(self) -> None:
        if self._closed:
            raise JobQueueClientError("the client is closed")
