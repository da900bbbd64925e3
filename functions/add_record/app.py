"""`POST /record`: a WAV in, converted to MP3 while it arrives, stored, and a link out.

The upload streams through three stages without ever being held whole:
request body → WavReader (validates the header, counts the audio) → ffmpeg's
stdin; ffmpeg's stdout → a spool file of the upload's own
(common.storage.streaming). Once ffmpeg has succeeded, the MP3 goes to the
record store and the row goes in, in one transaction (or one object, then the
row). Any failure on the way kills ffmpeg and drops the spool: nothing is left
behind.
"""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, aclosing
from typing import TypedDict

from pydantic import BaseModel
from sqlalchemy import Connection, Engine
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.auth import (
    Credentials,
    bearer_token,
    refuse_token_in_url,
    token_still_current,
    unauthorized,
    verified_user,
)
from common.config import Settings
from common.db import run_in_pool
from common.links import links_base, record_url
from common.logs import record_ref
from common.models import Record
from common.problems import Problem, retry_later
from common.security import hash_token
from common.storage.backend import StoreUnavailableError
from common.storage.streaming import StreamedWrite
from common.storage.write import (
    QuotaExceededError,
    ServiceStorage,
    StorageFullError,
    check_quota,
    within_quota,
)
from common.web import AppState, backends_of, create_app, engine_of, settings_of, state_of

from .admission import Admission, stalled
from .convert import Conversion, ConversionError, Mp3, Mp3Sink, Mp3TooLargeError, converting, ffmpeg_arguments
from .metrics import AUDIO_SECONDS, MP3_BYTES_OUT, REJECTIONS, WAV_BYTES_IN
from .names import clean_file_name
from .upload import Event, FieldValue, FileData, FileEnd, FileStart, upload_events
from .wav import InvalidWavError, TooLongError, UnsupportedWavError, WavFormat, WavReader

logger = logging.getLogger("records.add_record")


class RecordCreated(BaseModel):
    """The answer to `POST /record`."""

    record_id: uuid.UUID
    url: str
    duration_s: float
    size_bytes: int


#: A form whose file comes before its credentials: this much of the file is held until they arrive.
UNAUTHENTICATED_PREFIX_BYTES = 1024 * 1024


class TokenReplacedError(Exception):
    """The uploader's token was rotated while the upload arrived: its record is not stored."""


class ConverterState(TypedDict):
    admission: Admission
    storage: ServiceStorage
    #: Uploads whose MP3 may go to the store while ffmpeg finishes, each holding a connection
    #: between hops: half the pool, so the hops always find one (common.storage.streaming).
    early_stores: asyncio.Semaphore


class AddRecordState(AppState, ConverterState):
    """add_record's lifespan state: the common one and its converters'."""


def converter_state(settings: Settings, _engine: Engine) -> ConverterState:
    return {
        "admission": Admission(settings),
        "storage": ServiceStorage(settings.max_total_storage_bytes),
        "early_stores": asyncio.Semaphore(max(1, settings.db_pool_size // 2)),
    }


class Upload:
    """One request's walk through the stages; `run` returns the stored record.

    Nothing holds a converter before the uploader is authenticated: a raw body
    and a form whose credentials come first are authenticated at the file's
    first byte. A form whose file comes first is held, up to
    UNAUTHENTICATED_PREFIX_BYTES and within the process's budget for such
    bytes, until its credentials arrive after it; a longer one is refused
    with 422. Whatever of the form follows the file, no converter waits for it.
    """

    def __init__(self, request: Request, settings: Settings) -> None:
        self.request = request
        self.settings = settings
        state = state_of(request, AddRecordState)
        self.admission = state["admission"]
        self.storage = state["storage"]
        self.early_stores = state["early_stores"]
        self.credentials = Credentials(request.query_params.get("user_id"), bearer_token(request.headers))
        self.user_id: int | None = None
        self.filename: str | None = None
        self.reader = WavReader(settings.max_duration_s)
        self.record_id = uuid.uuid4()

    async def authenticate(self) -> int:
        if self.user_id is None:
            self.user_id = await run_in_pool(engine_of(self.request), self.admit)
        return self.user_id

    def admit(self, engine: Engine) -> int:
        """The uploader, if their token matches (401), their quota has room (403) and the service's too (507).

        One connection, one hop to a worker thread: on an upload's path before ffmpeg starts.
        """
        with engine.connect() as connection:
            user_id = verified_user(connection, self.credentials)
            check_quota(connection, user_id, self.settings.user_quota_bytes)
            self.storage.check(connection)
        return user_id

    def may_store(self, connection: Connection, record: Record) -> None:
        """In the record's transaction: the token is still the uploader's (a rotation meanwhile
        refuses it, 401), and the record fits in their quota (403)."""
        assert self.credentials.token is not None
        if not token_still_current(connection, record.user_id, hash_token(self.credentials.token)):
            raise TokenReplacedError
        within_quota(connection, record, self.settings.user_quota_bytes)

    def take_field(self, event: FieldValue) -> None:
        if event.name == "user_id":
            self.credentials.user_id = event.value
        elif event.name == "access_token" and self.credentials.token is None:
            self.credentials.token = event.value

    async def run(self, events: AsyncIterator[Event]) -> Record:
        """Convert, authenticate and store.

        No clock bounds the whole: a slow but honest upload takes as long as its
        size and pace allow (`Admission.paced`), and ffmpeg as long as it keeps up
        (CONVERSION_TIMEOUT_S, in convert.py).
        """
        engine = engine_of(self.request)
        writer = backends_of(self.request).writing.writer(self.record_id)
        stored = StreamedWrite(writer, engine, self.early_stores)
        try:
            wav, mp3 = await self.convert(events, stored)
            # The converter is free again; what is left of the form must still come soon, and be small.
            await self.rest_of_form(events)
            record = self.describe(wav, mp3)
            await stored.commit(record, self.may_store)
            return record
        finally:
            await stored.close()

    async def convert(self, events: AsyncIterator[Event], stored: StreamedWrite) -> tuple[WavFormat, Mp3]:
        """The file through ffmpeg; the converter is held from its first audio to its last byte, no longer."""
        file_data = await self.until_the_file(events)
        if file_data is None:  # the file came first: hold a prefix of it until the credentials arrive
            file_data = iter_once(await self.hold_prefix(events))
        await self.authenticate()
        async with AsyncExitStack() as converter:
            conversion: Conversion | None = None
            async for data in file_data:  # up to the first audio: the header
                if audio := self.reader.feed(data):
                    conversion = await self.start_conversion(converter, stored.write)
                    await conversion.write(audio)
                    break
            if conversion is not None:  # a converter is held from here on: the upload must keep moving
                async for data in self.admission.paced(file_data):
                    await conversion.write(self.reader.feed(data))
            wav = self.reader.finish()
            assert conversion is not None  # a header that parses has been passed on
            await stored.input_complete()
            return wav, await conversion.finish()

    async def rest_of_form(self, events: AsyncIterator[Event]) -> None:
        """Read the fields after the file to the body's end, for their errors; 408 when they dawdle.

        upload.py bounds their size (MAX_TAIL_BYTES).
        """
        try:
            async with asyncio.timeout(self.settings.upload_idle_timeout_s):
                async for _ in events:
                    pass
        except TimeoutError:
            wait = self.settings.upload_idle_timeout_s
            raise stalled(f"the form did not end within {wait:g} s of the file") from None

    async def until_the_file(self, events: AsyncIterator[Event]) -> AsyncIterator[bytes] | None:
        """Read fields up to the file; its data, or None when credentials may still follow it."""
        async for event in events:
            if isinstance(event, FieldValue):
                self.take_field(event)
            elif isinstance(event, FileStart):
                self.filename = event.filename
                if not event.fields_may_follow or (self.credentials.user_id and self.credentials.token):
                    return file_bytes(events)
                return None
        return iter_once(b"")

    async def hold_prefix(self, events: AsyncIterator[Event]) -> bytes:
        """The file, while its sender is unknown: bounded in size, in pace, and by the process's budget."""
        held = bytearray()
        async with self.admission.held.account() as hold:
            async for data in self.admission.paced(file_bytes(events)):
                hold(len(data))
                held += data
                if len(held) > UNAUTHENTICATED_PREFIX_BYTES:
                    raise Problem(
                        422,
                        f"Send user_id and access_token before the file: a file over {UNAUTHENTICATED_PREFIX_BYTES} "
                        "bytes is not held for credentials that come after it.",
                        errors=[{"field": "file", "message": "comes before the credentials"}],
                    )
            try:
                async with asyncio.timeout(self.settings.upload_idle_timeout_s):
                    async for event in events:
                        if isinstance(event, FieldValue):
                            self.take_field(event)
            except TimeoutError:
                wait = self.settings.upload_idle_timeout_s
                raise stalled(f"the credentials did not arrive within {wait:g} s of the file") from None
            return bytes(held)

    async def start_conversion(self, stack: AsyncExitStack, sink: Mp3Sink) -> Conversion:
        wav = self.reader.format
        assert wav is not None
        assert self.user_id is not None
        await stack.enter_async_context(self.admission.slot(self.user_id))
        arguments = ffmpeg_arguments(wav, self.settings.mp3_bitrate)
        timeout_s = self.settings.conversion_timeout_s
        return await stack.enter_async_context(converting(arguments, self.settings.max_mp3_bytes, sink, timeout_s))

    def describe(self, wav: WavFormat, mp3: Mp3) -> Record:
        assert self.user_id is not None
        return Record(
            id=self.record_id,
            user_id=self.user_id,
            original_name=clean_file_name(self.filename),
            size_bytes=mp3.size_bytes,
            duration_s=round(wav.duration_s(self.reader.audio_bytes), 3),
            bitrate_kbps=mp3.stream.bitrate_kbps,
            sample_rate=mp3.stream.sample_rate,
            channels=mp3.stream.channels,
            sha256=mp3.sha256,
        )


async def file_bytes(events: AsyncIterator[Event]) -> AsyncIterator[bytes]:
    """The file part's data, up to its end."""
    async for event in events:
        if isinstance(event, FileEnd):
            return
        if isinstance(event, FileData):
            WAV_BYTES_IN.inc(len(event.data))
            yield event.data


async def iter_once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def add_record(request: Request) -> Response:
    try:
        return await convert_and_store(request)
    except Problem as problem:
        REJECTIONS.labels(str(problem.status_code)).inc()
        raise


async def convert_and_store(request: Request) -> Response:
    settings = settings_of(request)
    refuse_token_in_url(request)
    upload = Upload(request, settings)
    try:
        async with aclosing(upload_events(request, settings.max_upload_bytes)) as events:
            record = await upload.run(events)
    except UnsupportedWavError as exc:
        raise Problem(415, f"The file is not a WAV this service converts: {exc}.") from None
    except InvalidWavError as exc:
        raise Problem(422, f"The WAV is invalid: {exc}.", errors=[{"field": "file", "message": str(exc)}]) from None
    except TooLongError as exc:
        raise Problem(413, f"The WAV is too long: {exc}.") from None
    except TokenReplacedError:
        logger.info("an upload's token was replaced while it arrived; nothing stored")
        raise unauthorized() from None
    except QuotaExceededError:
        quota = settings.user_quota_mb
        # 403, as storage services answer it: the request is fine, this user may not store more.
        raise Problem(403, f"Your recordings would take more than your {quota} MB of storage.") from None
    except StorageFullError:
        logger.warning("uploads refused: the records take MAX_TOTAL_STORAGE_GB (%g GB)", settings.max_total_storage_gb)
        raise Problem(507, "The service's storage is full; no recording can be stored until some are gone.") from None
    except Mp3TooLargeError as exc:
        logger.warning("%s", exc)
        raise Problem(413, "The recording makes a larger MP3 than MAX_DURATION_S allows.") from None
    except ConversionError as exc:
        logger.warning("conversion failed: %s", exc)
        if exc.returncode is not None and exc.returncode < 0:
            # Killed by a signal (out of memory, an operator): our failure, worth retrying.
            raise retry_later("The conversion was interrupted; try again.") from None
        raise Problem(422, "The WAV could not be decoded; it may be truncated or corrupt.") from None
    except TimeoutError:
        logger.warning("ffmpeg made no progress for %s s", settings.conversion_timeout_s)
        raise retry_later("The conversion took too long; try again later.") from None
    except StoreUnavailableError as exc:
        logger.warning("the record store failed: %s", exc)
        raise retry_later("The record store is not reachable; try again shortly.") from None
    except ClientDisconnect:
        logger.info("client disconnected mid-upload; nothing stored")
        return Response(status_code=400)
    url = record_url(links_base(request, settings), record.id, record.user_id)
    fields = {"record": record_ref(record.id), "user_id": record.user_id, "bytes": record.size_bytes}
    logger.info("stored record=%s user_id=%d bytes=%d", *fields.values(), extra=fields)
    AUDIO_SECONDS.inc(record.duration_s)
    MP3_BYTES_OUT.inc(record.size_bytes)
    body = RecordCreated(record_id=record.id, url=url, duration_s=record.duration_s, size_bytes=record.size_bytes)
    return JSONResponse(body.model_dump(mode="json"), status_code=201, headers={"Location": url})


routes = [Route("/record", add_record, methods=["POST"])]


def build(settings: Settings | None = None) -> Starlette:
    return create_app("add_record", routes, settings, state=converter_state)


app = build()
