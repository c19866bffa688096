from datetime import datetime

from sqlmodel import Field, SQLModel

from casebook.models import UtcDateTime


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random id; the row keeps only its hash and the
    hash of the user's token, so neither a session nor a bearer token can be read off the table."""

    __tablename__ = "console_sessions"

    id_hash: str = Field(primary_key=True, max_length=64)
    token_hash: str = Field(max_length=64)
    # Every form of the session carries it; a cross-site form cannot know it.
    csrf: str = Field(max_length=64)
    expires_at: datetime = Field(sa_type=UtcDateTime)


class ConsolePreference(SQLModel, table=True):
    """What each user chose to read the console in, kept across sessions."""

    __tablename__ = "console_preferences"

    user: str = Field(primary_key=True, max_length=100)
    language: str = Field(max_length=20)
    time_zone: str = Field(max_length=64)
