"""Which Redis failures mean "try again, elsewhere or later", decided by redis-py's types.

An error reply is typed once, by redis-py's own parser table
(``BaseParser.parse_error``: ``READONLY`` is ``ReadOnlyError``, ``LOADING``
is ``BusyLoadingError``...), whichever connection read it: redis-py's own or
the store's multiplexed one, whose hiredis reader is given the same function.
Nothing here matches message text, so a reply Redis words differently in a
later version is still classified by its code, as redis-py classifies it.

Two kinds of failure concern the connection that saw them:

- *Failover* replies say this node is not (or not yet) a primary that can
  serve us: a demoted primary (``READONLY``), one still loading its data
  (``LOADING``), a replica cut from its primary (``MASTERDOWN``), a cluster
  in transition (``TRYAGAIN``, ``CLUSTERDOWN``). The command did not run.
  The connection that got one is dropped, so the next call resolves the
  primary afresh (through Sentinel when configured) instead of asking the
  same node again.
- *Transport* failures (a reset, a timeout, a refused connection): the
  connection is gone already; a write in flight may or may not have applied.

Both reach callers as the domain's ``StoreUnavailable`` (UNAVAILABLE on the
wire, which the SDKs retry).
"""

from __future__ import annotations

from redis import exceptions as rexc
from redis._parsers.base import BaseParser

FAILOVER_ERRORS: tuple[type[rexc.RedisError], ...] = (
    rexc.ReadOnlyError,
    rexc.BusyLoadingError,
    rexc.TryAgainError,
    rexc.ClusterDownError,  # MasterDownError is one
)
"""Replies of a node that cannot serve writes now: the command did not run."""

UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    rexc.ConnectionError,  # AuthenticationError, BusyLoadingError, MaxConnectionsError...
    rexc.TimeoutError,
    OSError,
    *FAILOVER_ERRORS,
)
"""Failures a caller may retry: Redis is unreachable, or not the primary at the moment."""


def parse_error_reply(message: str) -> rexc.RedisError:
    """An error reply as redis-py's parser types it (the hiredis reader's ``replyError``)."""
    error: rexc.RedisError = BaseParser.parse_error(message)  # type: ignore[no-untyped-call]
    return error


def is_failover(error: BaseException) -> bool:
    """Whether ``error`` says the node is no primary now, so its connection must be re-resolved."""
    return isinstance(error, FAILOVER_ERRORS)
