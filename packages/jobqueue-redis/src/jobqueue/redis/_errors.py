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

import asyncio
from types import TracebackType

from jobqueue.domain import CapacityExceeded, JobQueueError, StoreUnavailable
from redis import exceptions as rexc
from redis._parsers.base import BaseParser

FAILOVER_ERRORS: tuple[type[Exception], ...] = (
    rexc.ReadOnlyError,
    rexc.BusyLoadingError,
    rexc.TryAgainError,
    rexc.ClusterError,  # ClusterDownError and MasterDownError are ones; "TTL exhausted" too
    rexc.AskError,  # MovedError is one: a redirection left over, not followed
    rexc.SlotNotCoveredError,
)
"""Replies of a node that cannot serve writes now: the command did not run.

On a cluster, a slot being resharded answers ``ASK``/``MOVED`` (which
RedisCluster follows, a few times: then ``ClusterError("TTL exhausted")``)
and ``TRYAGAIN`` (a multi-key command whose keys are split between the two
nodes for the moment). Each means "retry shortly"."""

_NON_LOCAL_KEY = "Script attempted to access a non local key in a cluster node"
"""Redis's reply when a script reaches a key its node does not hold (redis-py has no type)."""

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


def is_resharding(error: BaseException) -> bool:
    """Whether a plain error reply means a script met a slot in migration.

    A script that reaches a key of its slot that already left for the new
    master (mid ``redis-cli --cluster reshard``) fails inside Redis with
    "non local key"; redis-py types it only as ResponseError, so this one
    reply is recognised by its text, the one exception to typing by class.
    It cannot mean a bug of ours: every script touches only keys of its own
    shard's slot (declared, and proven on a cluster by tests/redis/test_cluster.py),
    so a key is "non local" only while that slot moves. ``probe`` in
    _common.lua makes the script fail before it changed anything.
    """
    return isinstance(error, rexc.ResponseError) and str(error).startswith(_NON_LOCAL_KEY)


def translated() -> _Translated:
    """Turn redis-py's failures into the domain's, so callers never import redis.

    It also gives back cancellations redis-py loses. On Python 3.11, a task
    cancelled just as a command's socket write completes has the cancellation
    dropped inside ``asyncio.wait_for`` (fixed in 3.12), or sees it as a
    connection error; a caller that retries on StoreUnavailable would then
    never stop. A dropped cancellation still counts in ``Task.cancelling()``,
    so a count that grew during the call means one was lost.

    Errors are classified by their redis-py types (above): a node that is no
    primary now (READONLY, LOADING, MASTERDOWN, TRYAGAIN, CLUSTERDOWN) is
    unavailable like an unreachable one, and the connection that heard it
    was already retired, so a retry reaches the new primary.
    """
    return _Translated()


class _Translated:
    """``translated``'s context manager: a class, not a generator, as every store call
    enters one (``contextlib.contextmanager`` costs a generator and two frames more)."""

    __slots__ = ("_cancels", "_task")

    def __enter__(self) -> None:
        task = self._task = asyncio.current_task()
        self._cancels = task.cancelling() if task is not None else 0

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task = self._task
        if error is None:
            if task is not None and task.cancelling() > self._cancels:
                raise asyncio.CancelledError
            return
        if isinstance(error, UNAVAILABLE_ERRORS):
            if task is not None and task.cancelling() > self._cancels:
                raise asyncio.CancelledError from error
            if is_failover(error):
                code = getattr(error, "status_code", None) or type(error).__name__
                raise StoreUnavailable(f"Redis cannot serve this now ({code}: {error})") from error
            raise StoreUnavailable(f"Redis is unreachable: {error}") from error
        if isinstance(error, rexc.OutOfMemoryError):
            raise CapacityExceeded("Redis is out of memory (maxmemory reached)") from error
        if isinstance(error, rexc.ResponseError) and is_resharding(error):
            raise StoreUnavailable(f"Redis Cluster is moving this shard's slot: {error}") from error


class ShardLayoutMismatch(JobQueueError):
    """Raised when a store's ``shards`` setting disagrees with the layout its data is in.

    A store that guessed the layout would read and write where no other
    process of the prefix does: jobs stranded, never claimed. So an explicit
    ``shards`` must equal the number recorded in ``{<prefix>}:cfg`` (by the
    first store that wrote the prefix, or by ``jobqueue-server migrate``), and
    a sharded store refuses a prefix whose jobs are still in the one-shard
    layout until they are migrated. Not retryable: the configuration must change.
    """

    def __init__(self, *, key_prefix: str, configured: int, recorded: int | None) -> None:
        self.key_prefix = key_prefix
        self.configured = configured
        self.recorded = recorded
        if recorded is None:
            message = (
                f"key prefix {key_prefix!r} holds jobs in the one-shard layout, but this store "
                f"is configured with shards={configured}: move them with `jobqueue-server "
                f"migrate` (JOBQUEUE_REDIS_SHARDS={configured}) first"
            )
        else:
            message = (
                f"key prefix {key_prefix!r} is recorded in Redis as {recorded} virtual "
                f"shard(s), but this store is configured with shards={configured}: leave "
                "shards (JOBQUEUE_REDIS_SHARDS) unset to adopt the recorded layout, or set "
                f"it to {recorded}"
            )
        super().__init__(message)
