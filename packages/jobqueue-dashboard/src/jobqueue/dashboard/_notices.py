"""The one-line notice a page shows after an action ("Deleted job X."), signed.

The notice travels in the redirect's query (post/redirect/get, so it works
without JavaScript), and a query anyone can write: unsigned, a link could
make a genuine dashboard page say whatever its author wanted. Signed with
the dashboard's secret (itsdangerous, as the session is) and short-lived, a
notice shows only if this dashboard wrote it, and only for a while.
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer

MAX_AGE_S = 600
"""How long a notice's link shows it: the redirect is followed at once."""
MAX_CHARS = 200


class Notices:
    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="jobqueue-dashboard-notice")

    def sign(self, text: str) -> str:
        """The query value carrying ``text``."""
        return self._serializer.dumps(text[:MAX_CHARS])

    def read(self, value: str) -> str:
        """The notice ``value`` carries; empty when missing, forged or expired."""
        if not value:
            return ""
        try:
            text = self._serializer.loads(value, max_age=MAX_AGE_S)
        except BadSignature:  # SignatureExpired is one too
            return ""
        return text[:MAX_CHARS] if isinstance(text, str) else ""
