"""The two shapes an upload arrives in, read as one stream of events, as the bytes arrive.

- `multipart/form-data` (browsers, Postman's form-data): fields `user_id`,
  `access_token` and `file`, in any order.
- The WAV as the raw body (`audio/wav`, `audio/x-wav`, `audio/wave`,
  `application/octet-stream`), `user_id` in the query string, the file name
  optionally in a `Content-Disposition` header.

Starlette's `request.form()` would spool the file to disk first; python-multipart's
streaming parser hands us each piece of it instead, to pass straight to ffmpeg.
"""

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from common.payloads import body_chunks, media_type
from common.problems import Problem

RAW_MEDIA_TYPES = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "application/octet-stream"})
FILE_FIELD = "file"
# A form for this endpoint has three parts; a little slack for clients that add their own.
MAX_PARTS = 16
MAX_FIELD_BYTES = 1024
#: What may follow the file part (a few fields, the closing boundary, an epilogue), counted
#: from the first chunk after the one where the file ended.
MAX_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class FieldValue:
    name: str
    value: str


@dataclass(frozen=True)
class FileStart:
    filename: str | None
    #: Whether form fields (credentials among them) may still come after the file.
    fields_may_follow: bool


@dataclass(frozen=True)
class FileData:
    data: bytes


@dataclass(frozen=True)
class FileEnd:
    pass


Event = FieldValue | FileStart | FileData | FileEnd


def upload_events(request: Request, limit: int) -> AsyncGenerator[Event, None]:
    """The request's events; 415 for a Content-Type that is neither shape, 413 past `limit` bytes."""
    content_type = media_type(request)
    if content_type == "multipart/form-data":
        _, parameters = parse_options_header(request.headers.get("content-type"))
        boundary = parameters.get(b"boundary")
        if not boundary:
            raise Problem(400, "The multipart/form-data Content-Type has no boundary.")
        return _multipart_events(request, boundary, limit)
    if content_type in RAW_MEDIA_TYPES:
        return _raw_events(request, limit)
    if content_type == "application/x-www-form-urlencoded":
        # A form, but one that cannot carry a file: the form is incomplete, not of the wrong type.
        raise Problem(
            422,
            "The form has no field 'file': send it as multipart/form-data (fields user_id, access_token, file).",
            errors=[_file_error("missing: a form with a file is multipart/form-data")],
        )
    raise Problem(
        415,
        "Send the WAV as multipart/form-data (fields user_id, access_token, file) "
        "or as the raw body with Content-Type: audio/wav.",
        headers={"Accept-Post": ", ".join(["multipart/form-data", *sorted(RAW_MEDIA_TYPES)])},
    )


def disposition_filename(header: bytes | str | None) -> str | None:
    """The `filename` parameter of a Content-Disposition header, if any."""
    if not header:
        return None
    _, parameters = parse_options_header(header)
    filename = parameters.get(b"filename")
    return filename.decode("utf-8", errors="replace") if filename is not None else None


async def _raw_events(request: Request, limit: int) -> AsyncGenerator[Event, None]:
    yield FileStart(disposition_filename(request.headers.get("content-disposition")), fields_may_follow=False)
    async for chunk in body_chunks(request, limit):
        yield FileData(chunk)
    yield FileEnd()


class _FormReader:
    """python-multipart's callbacks, turned into a list of events per chunk of body."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.parts = 0
        self.files = 0
        self.finished = False
        self.file_ended = False
        self._headers: dict[bytes, bytes] = {}
        self._header_name = b""
        self._header_value = b""
        self._name = ""
        self._is_file = False
        self._value = bytearray()

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise Problem(413, f"The form has more than {MAX_PARTS} parts.")
        self._headers = {}

    # python-multipart bounds a part's headers itself ("Maximum header size exceeded": 400).
    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, parameters = parse_options_header(self._headers.get(b"content-disposition"))
        self._name = parameters.get(b"name", b"").decode("utf-8", errors="replace")
        self._is_file = self._name == FILE_FIELD
        self._value = bytearray()
        if self._is_file:
            self.files += 1
            if self.files > 1:
                raise Problem(422, "Send exactly one file, in the field 'file'.", errors=[_file_error("only one")])
            filename = disposition_filename(self._headers.get(b"content-disposition"))
            self.events.append(FileStart(filename, fields_may_follow=True))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.events.append(FileData(data[start:end]))
            return
        # Other parts are small fields; anything bigger is not one of ours.
        self._value += data[start:end]
        if len(self._value) > MAX_FIELD_BYTES:
            raise Problem(413, f"The form field '{self._name}' is longer than {MAX_FIELD_BYTES} bytes.")

    def on_part_end(self) -> None:
        if self._is_file:
            self.file_ended = True
            self.events.append(FileEnd())
            return
        try:
            value = self._value.decode("utf-8")
        except UnicodeDecodeError:
            raise Problem(
                422,
                f"The form field '{self._name}' is not UTF-8 text.",
                errors=[{"field": self._name, "message": "not UTF-8 text"}],
            ) from None
        self.events.append(FieldValue(self._name, value))

    def on_end(self) -> None:
        self.finished = True


def _file_error(message: str) -> dict[str, str]:
    return {"field": FILE_FIELD, "message": message}


async def _multipart_events(request: Request, boundary: bytes, limit: int) -> AsyncGenerator[Event, None]:
    reader = _FormReader()
    try:
        parser = _parser(boundary, reader)
    except FormParserError as exc:  # python-multipart refuses a boundary over 256 characters
        raise Problem(400, f"The multipart boundary is not one this service reads: {exc}.") from None
    tail = 0
    async for chunk in body_chunks(request, limit):
        if reader.file_ended:
            tail += len(chunk)
            if tail > MAX_TAIL_BYTES:
                raise Problem(413, f"More than {MAX_TAIL_BYTES} bytes follow the file; the form has nothing that long.")
        try:
            parser.write(chunk)
        except FormParserError as exc:
            raise Problem(400, f"The multipart body is malformed: {exc}.") from None
        events, reader.events = reader.events, []
        for event in events:
            yield event
    if not reader.finished:
        raise Problem(400, "The multipart body ends before its closing boundary.")
    if reader.files == 0:
        raise Problem(422, "The form has no field 'file'.", errors=[_file_error("missing")])


def _parser(boundary: bytes, reader: _FormReader) -> MultipartParser:
    return MultipartParser(
        boundary,
        callbacks={
            "on_part_begin": reader.on_part_begin,
            "on_header_field": reader.on_header_field,
            "on_header_value": reader.on_header_value,
            "on_header_end": reader.on_header_end,
            "on_headers_finished": reader.on_headers_finished,
            "on_part_data": reader.on_part_data,
            "on_part_end": reader.on_part_end,
            "on_end": reader.on_end,
        },
    )
