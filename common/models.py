"""The tables, as SQLModel classes (the migrations in common/migrations create them).

Following the Base / Create / table=True split, a table is never what crosses
the wire: each function answers with a model of its own (register's
UserRegistered, add_record's RecordCreated, list_records' RecordListed) that
names every field it shows, so an internal column (the token digest) cannot
leak by accident. Only what the functions share lives here.
"""

import uuid
from datetime import datetime

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


class UserBase(SQLModel):
    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)


class User(UserBase, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, sa_column=Column(BigInteger, Identity(), primary_key=True))
    token_sha256: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True, index=True))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class Record(SQLModel, table=True):
    """An MP3 and what is known about it; its bytes live where `storage` says (common.storage.backend)."""

    __tablename__ = "records"
    __table_args__ = (
        # A user's records, newest first, one index range scan per page (migration 0004).
        Index("ix_records_user_id_created_at_id", "user_id", text("created_at DESC"), text("id DESC")),
        CheckConstraint("storage IN ('postgres', 's3')", name="records_storage_known"),
    )

    id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False))
    original_name: str = Field(sa_column=Column(String(FILE_NAME_MAX_LENGTH), nullable=False))
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    duration_s: float = Field(sa_column=Column(Double, nullable=False))
    bitrate_kbps: int = Field(sa_column=Column(Integer, nullable=False))
    sample_rate: int = Field(sa_column=Column(Integer, nullable=False))
    channels: int = Field(sa_column=Column(SmallInteger, nullable=False))
    sha256: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    #: Where the bytes are: `postgres` (record_chunks) or `s3` (one object); migration 0007.
    storage: str = Field(default="postgres", sa_column=Column(String(16), nullable=False, server_default="postgres"))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class RecordChunk(SQLModel, table=True):
    """Slice number `seq` of a record's MP3 (the layout: common.storage)."""

    __tablename__ = "record_chunks"
    __table_args__ = (CheckConstraint("seq >= 0", name="record_chunks_seq_non_negative"),)

    # Deferrable: an upload's chunks go in while it converts, its row at the end (common.storage.write).
    record_id: uuid.UUID = Field(
        sa_column=Column(
            Uuid,
            ForeignKey("records.id", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE"),
            primary_key=True,
        )
    )
    seq: int = Field(sa_column=Column(Integer, primary_key=True))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
