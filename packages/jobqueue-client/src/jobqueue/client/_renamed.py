"""Deprecated parameter names, kept working while callers move to the unit-suffixed ones.

The project's convention puts the unit in every public duration name (``_s``
for float seconds in the SDK); the old names still work for a while and say
what to use instead.
"""

from __future__ import annotations

import warnings
from typing import TypeVar

T = TypeVar("T")


def renamed(
    old: str, old_value: T | None, new: str, new_value: T, *, given: bool, stacklevel: int = 3
) -> T:
    """``new_value``, or ``old_value`` with a DeprecationWarning when the old name was used.

    ``given`` tells whether the caller passed the new name too: both at once is
    a mistake, not a preference.
    """
    if old_value is None:
        return new_value
    if given:
        raise TypeError(f"give {new}, not both {new} and {old}")
    # stacklevel counts from this function up to the user's call, so the
    # warning points at the line to change.
    warnings.warn(f"{old}= is deprecated; use {new}=", DeprecationWarning, stacklevel=stacklevel)
    return old_value
