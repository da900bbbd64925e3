"""WAV bytes in, MP3 bytes out: one ffmpeg process per upload, fed while the upload arrives.

ffmpeg-python only builds the argument list (it is unmaintained and its
runner is blocking); the process itself runs under asyncio, its stdin written
with back-pressure while a task drains stdout, so neither side can deadlock
and the event loop keeps serving other requests.
"""

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import ffmpeg

from common.config import MP3_BITRATES_KBPS

from .mp3 import MP3_SAMPLE_RATES, MPEG2_BITRATES_KBPS, Mp3Stream, read_frame_header
from .wav import WavFormat

logger = logging.getLogger("records.add_record")

READ_BYTES = 256 * 1024
PIPE_BYTES = 1024 * 1024
#: Conversion is batch work: below requests in the scheduler's eyes, so two
#: conversions on two cores do not starve /register (722 -> ~1,200 req/s while
#: converting). SCHED_IDLE was no better for requests and cost uploads ~10%:
#: it starved ffmpeg behind the upload's own nginx and uvicorn work.
FFMPEG_NICENESS = 10
STDERR_KEPT_BYTES = 4096
#: Where the MP3 goes as ffmpeg writes it: awaited for each piece read from ffmpeg's stdout.
Mp3Sink = Callable[[bytes], Awaitable[None]]


class Mp3TooLargeError(Exception):
    """ffmpeg wrote more than the MP3 of the longest allowed recording could be; it was stopped."""


class ConversionError(Exception):
    """ffmpeg exited with an error; `stderr` is its last words, for the log only."""

    def __init__(self, returncode: int | None, stderr: str) -> None:
        super().__init__(f"ffmpeg exited with {returncode}: {stderr.strip()[-300:]}")
        self.returncode = returncode
        self.stderr = stderr


#: ffmpeg's raw sample formats, by (encoding, bits per sample): little-endian, as in a WAV; 8-bit PCM is unsigned.
RAW_FORMATS = {
    ("pcm", 8): "u8",
    ("pcm", 16): "s16le",
    ("pcm", 24): "s24le",
    ("pcm", 32): "s32le",
    ("float", 32): "f32le",
    ("float", 64): "f64le",
}


def mp3_sample_rate(source_rate: int) -> int:
    """The nearest MP3 sample rate at or below the source's: resampling up only costs CPU and bytes."""
    return max((rate for rate in MP3_SAMPLE_RATES if rate <= source_rate), default=MP3_SAMPLE_RATES[0])


def mp3_bitrate_kbps(wav: WavFormat, sample_rate: int, ceiling_kbps: int) -> int:
    """The largest bitrate of the stream's MPEG version within `ceiling_kbps` and what the source carries.

    An 8 kHz 8-bit mono WAV carries 64 kbit/s; encoding it at 192 would store
    three times the upload and hold nothing more.
    """
    table = MP3_BITRATES_KBPS if sample_rate >= 32_000 else MPEG2_BITRATES_KBPS
    carried_kbps = wav.sample_rate * wav.channels * wav.bits_per_sample // 1000
    fitting = [rate for rate in table if rate <= min(ceiling_kbps, carried_kbps)]
    return max(fitting, default=table[0])


def ffmpeg_arguments(wav: WavFormat, bitrate: str) -> list[str]:
    """The one command line: nothing in it comes from the request but the validated format.

    `bitrate` is the ceiling (MP3_BITRATE): a source that carries less is encoded at less.

    ffmpeg reads raw samples (only the data chunk's frames, wav.py) in the format,
    rate and channel count we validated: no demuxer of a client's container ever
    runs, and only the pipe protocol is allowed, so no input can make ffmpeg
    open a file, a URL or a decoder of its choosing.
    """
    sample_rate = mp3_sample_rate(wav.sample_rate)
    kbps = mp3_bitrate_kbps(wav, sample_rate, int(bitrate.removesuffix("k")))
    options: dict[str, object] = {
        "acodec": "libmp3lame",
        "audio_bitrate": f"{kbps}k",
        "f": "mp3",
        "map_metadata": -1,  # carry nothing over from the upload
        "id3v2_version": 0,  # no tag: the file starts with its first frame
        # Into a pipe, ffmpeg would write each MP3 frame as it is made (627
        # bytes at 192k, 38 writes a second of audio), waking this process for
        # each: that alone made a conversion 7% slower than file to file.
        # Unflushed, it writes its 32 KiB buffer whenever it fills.
        "flush_packets": 0,
    }
    if wav.encoding == "float":
        # lame aborts on floats far out of range (or NaN); 16-bit samples clip them
        # first, and carry more precision than an MP3 keeps.
        options["sample_fmt"] = "s16p"
    if wav.channels > 2:
        options["ac"] = 2
    if sample_rate != wav.sample_rate:
        options["ar"] = sample_rate
    source = ffmpeg.input(
        "pipe:0",
        f=RAW_FORMATS[wav.encoding, wav.bits_per_sample],
        ar=wav.sample_rate,
        ac=wav.channels,
        protocol_whitelist="pipe",
    )
    output = ffmpeg.output(source.audio, "pipe:1", **options)
    arguments: list[str] = output.global_args("-nostdin", "-hide_banner", "-loglevel", "error").compile()
    return arguments


@dataclass
class Mp3:
    """The converted file, its bytes handed to the sink: its size, digest and format."""

    size_bytes: int
    sha256: bytes
    stream: Mp3Stream


@contextlib.asynccontextmanager
async def converting(
    arguments: list[str], max_mp3_bytes: int, sink: Mp3Sink, stall_timeout_s: float
) -> AsyncIterator["Conversion"]:
    """Start ffmpeg, its MP3 to `sink`; on leaving, however that happens, it is killed if still running and reaped.

    An MP3 that grows past `max_mp3_bytes` stops the conversion (Mp3TooLargeError),
    and so does a sink that fails (its error is the conversion's). ffmpeg must
    take each write, and finish after the last, within `stall_timeout_s`
    (TimeoutError): an upload may take as long as its sender's pace allows,
    but a wedged ffmpeg is not waited for.
    """
    conversion = await Conversion.start(arguments, max_mp3_bytes, sink, stall_timeout_s)
    try:
        yield conversion
    finally:
        await conversion.close()


class Conversion:
    """A running ffmpeg: `write` WAV bytes, then `finish` for the MP3. Use through `converting`."""

    def __init__(
        self, process: asyncio.subprocess.Process, max_mp3_bytes: int, sink: Mp3Sink, stall_timeout_s: float
    ) -> None:
        self._process = process
        self._max_mp3_bytes = max_mp3_bytes
        self._stall_timeout_s = stall_timeout_s
        self._sink = sink
        self._digest = hashlib.sha256()
        self._size = 0
        self._head = b""
        self._stderr = bytearray()
        self._readers = asyncio.gather(self._collect_stdout(), self._collect_stderr())

    @classmethod
    async def start(
        cls, arguments: list[str], max_mp3_bytes: int, sink: Mp3Sink, stall_timeout_s: float
    ) -> "Conversion":
        process = await asyncio.create_subprocess_exec(
            *arguments,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        with contextlib.suppress(ProcessLookupError):  # it may already have failed and exited
            os.setpriority(os.PRIO_PROCESS, process.pid, FFMPEG_NICENESS)
        # A larger stdin pipe (the WAV is most of the traffic): ffmpeg and this
        # process wake each other per megabyte instead of per 64 KiB. asyncio
        # names the pipe "pipe", uvloop "socket".
        assert process.stdin is not None
        pipe = process.stdin.get_extra_info("pipe") or process.stdin.get_extra_info("socket")
        if pipe is not None:
            with contextlib.suppress(OSError):  # over /proc/sys/fs/pipe-max-size when not root
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        return cls(process, max_mp3_bytes, sink, stall_timeout_s)

    @property
    def pid(self) -> int:
        return self._process.pid

    async def _collect_stdout(self) -> None:
        assert self._process.stdout is not None
        while chunk := await self._process.stdout.read(READ_BYTES):
            if len(self._head) < 4:
                self._head += chunk[:4]
            self._size += len(chunk)
            if self._size > self._max_mp3_bytes:
                self._process.kill()
                return
            self._digest.update(chunk)
            try:
                await self._sink(chunk)
            except BaseException:
                self._process.kill()  # nothing reads its output any more
                raise

    async def _collect_stderr(self) -> None:
        assert self._process.stderr is not None
        while chunk := await self._process.stderr.read(READ_BYTES):
            self._stderr += chunk
            del self._stderr[:-STDERR_KEPT_BYTES]

    async def _failure(self) -> ConversionError | Mp3TooLargeError:
        returncode = await self._process.wait()
        await self._readers
        if self._size > self._max_mp3_bytes:
            return Mp3TooLargeError(f"ffmpeg's MP3 passed {self._max_mp3_bytes} bytes")
        return ConversionError(returncode, self._stderr.decode(errors="replace"))

    async def write(self, data: bytes) -> None:
        """Hand `data` to ffmpeg, waiting while its pipe is full (at most the stall timeout)."""
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(data)
            async with asyncio.timeout(self._stall_timeout_s):
                await self._process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise await self._failure() from None

    async def finish(self) -> Mp3:
        """Close ffmpeg's input and wait for the rest of the MP3 and its exit (at most the stall timeout)."""
        assert self._process.stdin is not None
        self._process.stdin.close()
        async with asyncio.timeout(self._stall_timeout_s):
            # If ffmpeg already exited the pipe is broken; its return code tells how it went.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await self._process.stdin.wait_closed()
            returncode = await self._process.wait()
            await self._readers
        if returncode != 0 or self._size == 0 or self._size > self._max_mp3_bytes:
            raise await self._failure()
        return Mp3(self._size, self._digest.digest(), read_frame_header(self._head))

    async def close(self) -> None:
        """Kill ffmpeg if it still runs, and reap it."""
        if self._process.returncode is None:
            self._process.kill()
        await self._process.wait()
        # With ffmpeg gone its pipes are at EOF, so the readers end on their own.
        with contextlib.suppress(Exception):
            await self._readers
