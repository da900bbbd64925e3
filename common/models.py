"""Tables and the shapes that cross the wire.

Following the Base / Create / Public / table=True split: only the `*Public`
models are ever serialised into a response, so internal columns (the token
digest) cannot leak by accident.
"""

import unicodedata
import uuid
from datetime import datetime

from pydantic import ConfigDict, field_validator
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Uuid,
    func,
    text,
)
from sqlmodel import Field, SQLModel

NAME_MAX_LENGTH = 100
FILE_NAME_MAX_LENGTH = 255

#: The MP3 is stored as rows of this many bytes (the last one shorter). A range
#: request then reads only the rows it covers, and neither writing nor reading
#: ever holds a whole record in memory.
CHUNK_BYTES = 256 * 1024


class UserBase(SQLModel):
    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)


class UserCreate(UserBase):
    """The body of `POST /register`; surrounding white space is not part of a name."""

    model_config = ConfigDict(str_strip_whitespace=True, strict=True)  # type: ignore[assignment]

    @field_validator("name")
    @classmethod
    def printable(cls, name: str) -> str:
        # PostgreSQL refuses NUL in text, and no name needs control characters.
        if any(unicodedata.category(char) == "Cc" for char in name):
            raise ValueError("must not contain control characters")
        return name


class User(UserBase, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    token_sha256: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True, index=True))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class UserRegistered(SQLModel):
    """The answer to `POST /register`: the only time the token is ever shown."""

    user_id: int
    access_token: str


class Record(SQLModel, table=True):
    """An MP3 and what is known about it; its bytes live in `record_chunks`."""

    __tablename__ = "records"
    # A user's records, newest first, one index range scan per page (migration 0004).
    __table_args__ = (Index("ix_records_user_id_created_at_id", "user_id", text("created_at DESC"), text("id DESC")),)

    id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False))
    original_name: str = Field(sa_column=Column(String(FILE_NAME_MAX_LENGTH), nullable=False))
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    duration_s: float = Field(sa_column=Column(Double, nullable=False))
    bitrate_kbps: int = Field(sa_column=Column(Integer, nullable=False))
    sample_rate: int = Field(sa_column=Column(Integer, nullable=False))
    channels: int = Field(sa_column=Column(SmallInteger, nullable=False))
    sha256: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class RecordChunk(SQLModel, table=True):
    """Slice number `seq` of a record's MP3: bytes [seq * CHUNK_BYTES, (seq + 1) * CHUNK_BYTES)."""

    __tablename__ = "record_chunks"
    __table_args__ = (CheckConstraint("seq >= 0", name="record_chunks_seq_non_negative"),)

    record_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("records.id", ondelete="CASCADE"), primary_key=True))
    seq: int = Field(sa_column=Column(Integer, primary_key=True))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class RecordCreated(SQLModel):
    """The answer to `POST /record`."""

    record_id: uuid.UUID
    url: str
    duration_s: float
    size_bytes: int
