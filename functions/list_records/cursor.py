"""The opaque `next` cursor: where the previous page stopped, as (created_at, id).

Pages are cut by those two values (keyset pagination), never by an offset:
a record added or deleted meanwhile moves nothing, so paging on skips no
record and repeats none, and a page deep in the list costs what the first does.
"""

import base64
import binascii
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Microseconds since the epoch (PostgreSQL's precision), then the UUID's 16 bytes.
_LAYOUT = struct.Struct(">q16s")


class InvalidCursorError(ValueError):
    """Not a cursor this service gave out."""


@dataclass(frozen=True)
class Position:
    """The last record of a page: the next page starts strictly after it, newest first."""

    created_at: datetime
    record_id: uuid.UUID

    def encode(self) -> str:
        microseconds = (self.created_at - _EPOCH) // timedelta(microseconds=1)
        packed = _LAYOUT.pack(microseconds, self.record_id.bytes)
        return base64.urlsafe_b64encode(packed).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, cursor: str) -> "Position":
        try:
            packed = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            microseconds, record_id = _LAYOUT.unpack(packed)
            return cls(_EPOCH + timedelta(microseconds=microseconds), uuid.UUID(bytes=record_id))
        except (binascii.Error, struct.error, OverflowError, ValueError):
            raise InvalidCursorError(cursor) from None
