"""Tables and the shapes that cross the wire.

Following the Base / Create / Public / table=True split: only the `*Public`
models are ever serialised into a response, so internal columns (the token
digest) cannot leak by accident.
"""

import unicodedata
from datetime import datetime

from pydantic import ConfigDict, field_validator
from sqlalchemy import BigInteger, Column, DateTime, Identity, LargeBinary, func
from sqlmodel import Field, SQLModel

NAME_MAX_LENGTH = 100


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
    token_sha256: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


class UserRegistered(SQLModel):
    """The answer to `POST /register`: the only time the token is ever shown."""

    user_id: int
    access_token: str
