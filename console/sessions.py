"""Console sign-in: a random session id in an HttpOnly, SameSite=Strict cookie, looked up in
the database, so every API process serves every session and signing out ends it everywhere."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete

from config.settings import Settings
from console.models import ConsolePreference, ConsoleSession
from database import reading, session
from identity import Role

COOKIE = "disputeflow_console"
LIFETIME = timedelta(hours=12)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Opened:
    token: str
    csrf: str


class Sessions:
    def __init__(self, engine: Engine, settings: Settings):
        self._engine = engine
        # The row keeps the token's hash; the token itself is found again among the configured ones.
        self._tokens = {_digest(token): token for token in settings.tokens}
        self._grants = settings.tokens

    def start(self, token: str) -> str:
        """A new session for `token`; answers the cookie's value."""
        cookie = secrets.token_urlsafe(32)
        with session(self._engine) as db:
            db.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < datetime.now(UTC)))
            db.add(ConsoleSession(id_hash=_digest(cookie), token_hash=_digest(token), csrf=secrets.token_urlsafe(32),
                                  expires_at=datetime.now(UTC) + LIFETIME))
        return cookie

    def find(self, cookie: str | None) -> Opened | None:
        if not cookie:
            return None
        with reading(self._engine) as db:
            row = db.get(ConsoleSession, _digest(cookie))
        if row is None or row.expires_at < datetime.now(UTC) or row.token_hash not in self._tokens:
            return None
        return Opened(token=self._tokens[row.token_hash], csrf=row.csrf)

    def role(self, cookie: str | None) -> Role | None:
        """The role of the staff member a cookie signed in, e.g. for the codec server."""
        opened = self.find(cookie)
        return self._grants[opened.token].role if opened else None

    def end(self, cookie: str | None) -> None:
        if cookie:
            with session(self._engine) as db:
                db.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == _digest(cookie)))

    def preference(self, user: str) -> ConsolePreference | None:
        with reading(self._engine) as db:
            return db.get(ConsolePreference, user)

    def prefer(self, user: str, language: str, time_zone: str) -> None:
        with session(self._engine) as db:
            db.merge(ConsolePreference(user=user, language=language, time_zone=time_zone))
