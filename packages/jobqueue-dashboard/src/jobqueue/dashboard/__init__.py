"""The web dashboard of jobqueue: server-rendered pages over the domain's use cases.

An inbound adapter like the API: it reads and acts through ``JobService``,
renders with Jinja2, updates live by server-sent events, and ships its own
static files (htmx vendored, no CDN) under a strict Content-Security-Policy.
``jobqueue-server`` mounts it on its HTTP port under ``/dashboard/``.
"""

from ._app import SECURITY_HEADERS, Dashboard
from ._auth import CSRF_FIELD, Role
from ._history import Sample, StatsHistory
from ._settings import DashboardSettings

__all__ = [
    # The app
    "Dashboard",
    "DashboardSettings",
    # History behind the charts
    "StatsHistory",
    "Sample",
    # Security
    "Role",
    "CSRF_FIELD",
    "SECURITY_HEADERS",
]
