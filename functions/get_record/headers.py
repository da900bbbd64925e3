"""The HTTP semantics of a download: validators, ranges and the file name (RFC 9110, RFC 6266).

Pure functions of header values, so each rule is tested on its own.
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

from common.filenames import base_name

_SINGLE_RANGE = re.compile(r"^bytes=(?P<first>\d*)-(?P<last>\d*)$")
# RFC 5987 attr-char: what may appear unescaped in filename*.
_ATTR_CHARS = "!#$&+-.^_`|~"
FALLBACK_STEM = "record"
#: The most each of Content-Disposition's two names takes: the whole header stays under 1 kB.
NAME_BYTES = 400
# Past any size a record can have; longer numbers are read as this (int() refuses past 4,300 digits).
HUGE = 10**18


@dataclass(frozen=True)
class ByteRange:
    """Bytes `start` to `end` inclusive, as Content-Range counts them."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class UnsatisfiableRangeError(Exception):
    """The range lies wholly past the end (416 with `Content-Range: bytes */size`)."""


def entity_tag(sha256: bytes) -> str:
    """A strong ETag: the content's own digest, so equal bytes always share it."""
    return f'"{sha256.hex()}"'


def http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def none_match(if_none_match: str | None, etag: str) -> bool:
    """Whether If-None-Match names our ETag (weak comparison, as RFC 9110 §13.1.2 asks)."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def if_range_holds(if_range: str | None, etag: str, last_modified: str) -> bool:
    """Whether a Range may be honoured: no If-Range, or one that still matches (strong comparison)."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith(('"', "W/")):
        return value == etag
    try:
        return parsedate_to_datetime(value) == parsedate_to_datetime(last_modified)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a year of more digits than a C long
        return False


def requested_range(range_header: str | None, size: int) -> ByteRange | None:
    """The single byte range asked for, or None to send everything.

    Forms: `bytes=a-b`, `bytes=a-` and `bytes=-n`. A header this does not
    understand, several ranges among them, is ignored (RFC 9110 allows it) and
    the whole file is sent.
    """
    if range_header is None:
        return None
    match = _SINGLE_RANGE.match(range_header.strip())
    if match is None or (not match["first"] and not match["last"]):
        return None
    if not match["first"]:  # the last n bytes
        suffix = byte_position(match["last"])
        if suffix == 0:
            raise UnsatisfiableRangeError
        return ByteRange(max(0, size - suffix), size - 1)
    start = byte_position(match["first"])
    if match["last"] and byte_position(match["last"]) < start:
        return None  # not a valid range: ignore it
    if start >= size:
        raise UnsatisfiableRangeError
    end = byte_position(match["last"]) if match["last"] else size - 1
    return ByteRange(start, min(end, size - 1))


def byte_position(digits: str) -> int:
    """A Range number; one too long to be any file's is HUGE, so the rules above still apply."""
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= len(str(HUGE)) - 1 else HUGE


def mp3_name(original_name: str) -> str:
    """The original file name with its extension replaced by .mp3, cleaned for a header."""
    name = base_name(original_name).replace('"', "")
    stem, dot, _ = name.rpartition(".")
    stem = (stem if dot else name).strip().strip(".")
    return f"{stem or FALLBACK_STEM}.mp3"


def content_disposition(original_name: str) -> str:
    """`attachment` with an ASCII `filename` for old clients and the name itself in `filename*`.

    Both are bounded (NAME_BYTES each), whatever the stored name: a legal 255-character
    name can expand twentyfold (NFKD, then percent-encoding), and a header past the
    gateway's buffer would make the record undownloadable.
    """
    name = mp3_name(original_name)
    stem = name.removesuffix(".mp3")
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    ascii_stem = re.sub(r"[^A-Za-z0-9 !#$&'()+,\-.;=@\[\]^_`{}~]", "_", ascii_stem)[:NAME_BYTES].strip(" .")
    if not ascii_stem.strip("_"):
        ascii_stem = FALLBACK_STEM
    encoded = encoded_prefix(stem, NAME_BYTES - len(".mp3"))
    return f"attachment; filename=\"{ascii_stem}.mp3\"; filename*=UTF-8''{encoded or FALLBACK_STEM}.mp3"


def encoded_prefix(text: str, limit: int) -> str:
    """`text` percent-encoded (RFC 5987), cut at a whole character so that it fits in `limit` bytes."""
    encoded = ""
    for char in text:
        piece = quote(char, safe=_ATTR_CHARS)
        if len(encoded) + len(piece) > limit:
            break
        encoded += piece
    return encoded
