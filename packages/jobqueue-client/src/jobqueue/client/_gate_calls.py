"""AdminService's claim-time gate calls of both clients, written once (as ``_calls`` does).

Pausing a type stops workers from being handed its jobs; nothing else
changes: producers still enqueue (the jobs wait, PENDING) and jobs already
running finish. Both calls are idempotent, so they are retried like reads;
after a retry whose first reply was lost, ``changed`` may read False for a
change that attempt made.
"""

from __future__ import annotations

from typing import Any

from mpataki.jobqueue.v1 import admin_pb2 as pb
from mpataki.jobqueue.v1 import admin_pb2_grpc as pb_grpc

from ._calls import Unary

_STUB = pb_grpc.AdminServiceStub


def _changed(response: Any) -> bool:
    return bool(response.changed)


def pause_type(type: str) -> Unary[bool]:
    """Stop handing out jobs of ``type``, on every worker, until ``resume_type``.

    Its jobs stay PENDING and producers can still enqueue; jobs already
    running finish, and a retry of one waits behind the pause.
    ``stats()`` shows the type with ``paused`` set.

    Returns:
        True when the type was running and is now paused; False when it was
        paused already.

    Raises:
        InvalidJob: ``type`` is not a valid job type.
    """
    return Unary("PauseType", pb.PauseTypeRequest(type=type), _changed, stub=_STUB)


def resume_type(type: str) -> Unary[bool]:
    """Hand out jobs of a paused ``type`` again; idle workers of it wake at once.

    Returns:
        True when the type was paused; False when it was not.

    Raises:
        InvalidJob: ``type`` is not a valid job type.
    """
    return Unary("ResumeType", pb.ResumeTypeRequest(type=type), _changed, stub=_STUB)
