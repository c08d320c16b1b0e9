"""A worker module whose own import fails: the command must not call it a usage error."""

import no_such_dependency  # type: ignore[import-not-found]  # noqa: F401
