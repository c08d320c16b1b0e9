"""The installed jobqueue-worker's version, read without ``importlib.metadata``.

Importing ``importlib.metadata`` loads ``email``, ``zipfile``, ``csv`` and
``pathlib`` (~3 MiB of a worker's resident memory, issue 17) to read one
line: a worker only needs its own ``Version:``. The usual install (a wheel or
an editable install: a ``.dist-info`` directory on ``sys.path``) is read
here, first match in ``sys.path`` order as ``importlib.metadata`` does; any
other layout (an egg, a zip, no ``METADATA``) falls back to it.
"""

from __future__ import annotations

import functools
import os
import re
import sys

_DISTRIBUTION = "jobqueue-worker"
_NORMAL = re.compile(r"[-_.]+")


@functools.cache
def installed_version() -> str:
    """``importlib.metadata.version("jobqueue-worker")``, or "unknown" if it is not installed."""
    found = _from_dist_info(_DISTRIBUTION)
    if found is not None:
        return found
    import importlib.metadata

    try:
        return importlib.metadata.version(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _from_dist_info(distribution: str) -> str | None:
    """The ``Version:`` of the first ``<name>-<version>.dist-info`` on ``sys.path``.

    None when the first entry that holds the distribution holds it another way
    (``.egg-info``), an entry is not a directory, or the metadata cannot be
    read: the caller asks ``importlib.metadata`` then.
    """
    wanted = _NORMAL.sub("_", distribution).lower()
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except FileNotFoundError:
            continue
        except OSError:
            return None  # a zip file (or unreadable): importlib.metadata reads those
        for name in sorted(names):
            stem, dot, suffix = name.lower().rpartition(".")
            if not dot or suffix not in ("dist-info", "egg-info"):
                continue
            if _NORMAL.sub("_", stem.partition("-")[0]).lower() != wanted:
                continue
            if suffix == "egg-info":
                return None
            return _version_line(os.path.join(entry or ".", name, "METADATA"))
    return None


def _version_line(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as metadata:
            for line in metadata:
                if not line.strip():
                    break  # the headers end at the first blank line
                key, colon, value = line.partition(":")
                if colon and key.strip().lower() == "version":
                    return value.strip()
    except OSError:
        return None
    return None
