"""What counts as a WAV, decided from the bytes alone (never a file name or Content-Type).

A RIFF file is `RIFF`, a size, `WAVE`, then chunks: an id, a little-endian
size, a body padded to an even length. We read it as it arrives, once, in
order: exactly one `fmt ` (PCM of 8/16/24/32 bits, IEEE float of 32/64 bits,
or WAVE_FORMAT_EXTENSIBLE of either), any other chunks skipped unread, then
the first `data` chunk. Only that chunk's whole frames go on to the converter,
as raw samples whose format ffmpeg is told (convert.py): ffmpeg never sees the
client's container, so what it decodes is exactly what was validated and
counted. Whatever follows the declared data size (more chunks, a second
`data`, trailing bytes) is ignored. Layouts refused with 422: a second `fmt `,
`data` before `fmt `, more than MAX_CHUNKS chunks or MAX_HEADER_BYTES bytes
before `data`, a `fmt ` longer than MAX_FMT_BYTES.
"""

import struct
from dataclasses import dataclass
from typing import Literal

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# KSDATAFORMAT_SUBTYPE_* GUIDs share these last 14 bytes; the first two are the format tag.
SUBFORMAT_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
BITS_ACCEPTED = {"pcm": (8, 16, 24, 32), "float": (32, 64)}

MIN_CHANNELS, MAX_CHANNELS = 1, 8
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8_000, 192_000
# Writers of streaming WAVs do not know the length up front and put one of these instead.
STREAMING_SIZES = (0, 0xFFFFFFFF)
# Metadata chunks (LIST, bext, iXML, JUNK) before `data` are few and small.
MAX_HEADER_BYTES = 1024 * 1024
MAX_CHUNKS = 64
# WAVE_FORMAT_EXTENSIBLE's is 40 bytes; writers may add a little.
MAX_FMT_BYTES = 1024
# Less would resample to nothing at 192 kHz, and no one records it on purpose.
MIN_DURATION_S = 0.001
RIFF_HEADER_BYTES = 12
CHUNK_HEADER_BYTES = 8


class UnsupportedWavError(ValueError):
    """Not a WAV of a kind this service converts (HTTP 415)."""


class InvalidWavError(ValueError):
    """A WAV whose header cannot be right, or that holds no audio (HTTP 422)."""


class TooLongError(ValueError):
    """More audio than MAX_DURATION_S allows (HTTP 413)."""


@dataclass(frozen=True)
class WavFormat:
    encoding: Literal["pcm", "float"]
    channels: int
    sample_rate: int
    bits_per_sample: int
    block_align: int
    #: Bytes before the first audio byte.
    data_offset: int
    #: Bytes of audio the header declares; None for a streaming WAV, read to the end.
    data_size: int | None

    @property
    def byte_rate(self) -> int:
        return self.sample_rate * self.block_align

    def frames(self, audio_bytes: int) -> int:
        return audio_bytes // self.block_align

    def duration_s(self, audio_bytes: int) -> float:
        return self.frames(audio_bytes) / self.sample_rate


Fmt = tuple[Literal["pcm", "float"], int, int, int, int]


class WavReader:
    """Follows one upload's bytes in a single pass: validates the header, then passes on whole frames of audio.

    Work and memory are linear in the input however it is split: a chunk's body
    is skipped by counting, and only a partial chunk header, the `fmt ` body and
    a partial frame are ever held.
    """

    def __init__(self, max_duration_s: int) -> None:
        self.max_duration_s = max_duration_s
        self.format: WavFormat | None = None
        #: Audio bytes passed on so far: whole frames of the first `data` chunk.
        self.audio_bytes = 0
        self._received = 0
        self._offset = 0  # bytes of the file the header steps have consumed
        self._fmt: Fmt | None = None
        self._fmt_size = 0
        self._chunks = 0
        self._held = bytearray()  # an incomplete header, chunk header, `fmt ` body or frame
        self._need = RIFF_HEADER_BYTES  # bytes to hold before the next step
        self._step = self._riff_header
        self._skip = 0  # body bytes of a chunk we do not read
        self._audio_left: int | None = None  # of the declared data size; None: to the end

    def feed(self, data: bytes) -> bytes:
        """The audio in `data` that may go on to the converter (none until the header is complete)."""
        self._received += len(data)
        view = memoryview(data)
        audio = bytearray()
        while view:
            if self.format is not None:
                view = self._take_audio(view, audio)
                break
            if self._skip:
                skipped = min(self._skip, len(view))
                self._skip -= skipped
                self._offset += skipped
                view = view[skipped:]
                continue
            wanted = self._need - len(self._held)
            self._held += view[:wanted]
            self._offset += min(wanted, len(view))
            view = view[wanted:]
            if self._step == self._riff_header and not b"RIFF".startswith(self._held[:4]):
                raise UnsupportedWavError("the file is not a RIFF/WAVE file")  # said at the first wrong byte
            if len(self._held) < self._need:
                break
            held, self._held = bytes(self._held), bytearray()
            self._step(held)
        if self.format is not None and self.format.duration_s(self.audio_bytes) > self.max_duration_s:
            raise TooLongError(f"the recording is longer than {self.max_duration_s} s")
        return bytes(audio)

    def _riff_header(self, held: bytes) -> None:
        if held[:4] != b"RIFF":
            raise UnsupportedWavError("the file is not a RIFF/WAVE file")
        if held[8:12] != b"WAVE":
            raise UnsupportedWavError("the file is a RIFF container but not WAVE audio")
        self._expect_chunk()

    def _expect_chunk(self) -> None:
        self._need, self._step = CHUNK_HEADER_BYTES, self._chunk_header

    def _chunk_header(self, held: bytes) -> None:
        chunk_id = held[:4]
        (size,) = struct.unpack("<I", held[4:])
        self._chunks += 1
        if chunk_id == b"data":
            self._start_data(size)
            return
        if self._chunks > MAX_CHUNKS:
            raise InvalidWavError(f"more than {MAX_CHUNKS} chunks come before the data chunk")
        if self._offset + size > MAX_HEADER_BYTES:
            raise InvalidWavError(f"the header is larger than {MAX_HEADER_BYTES} bytes before the data chunk")
        if chunk_id == b"fmt ":
            if self._fmt is not None:
                raise InvalidWavError("the file has more than one fmt chunk")
            if size > MAX_FMT_BYTES:
                raise InvalidWavError(f"the fmt chunk is longer than {MAX_FMT_BYTES} bytes")
            self._fmt_size = size
            self._need, self._step = size + (size & 1), self._fmt_body
            if self._need == 0:
                self._fmt_body(b"")
            return
        self._skip = size + (size & 1)
        self._expect_chunk()

    def _fmt_body(self, held: bytes) -> None:
        self._fmt = parse_fmt(held[: self._fmt_size])
        self._expect_chunk()

    def _start_data(self, size: int) -> None:
        if self._fmt is None:
            raise InvalidWavError("the data chunk comes before the fmt chunk")
        encoding, channels, sample_rate, bits, block_align = self._fmt
        data_size = None if size in STREAMING_SIZES else size
        if data_size is not None and data_size < block_align:
            raise InvalidWavError("the data chunk holds no audio frames")
        self.format = WavFormat(encoding, channels, sample_rate, bits, block_align, self._offset, data_size)
        # Refuse a declared length up front rather than after converting an hour of it.
        if data_size is not None and self.format.duration_s(data_size) > self.max_duration_s:
            raise TooLongError(f"the recording is longer than {self.max_duration_s} s")
        self._audio_left = None if data_size is None else data_size - data_size % block_align

    def _take_audio(self, view: memoryview, audio: bytearray) -> memoryview:
        assert self.format is not None
        if self._audio_left is not None:
            view = view[: self._audio_left - self.audio_bytes - len(self._held)]
        self._held += view
        whole = len(self._held) - len(self._held) % self.format.block_align
        audio += self._held[:whole]
        del self._held[:whole]
        self.audio_bytes += whole
        return view[len(view) :]

    def finish(self) -> WavFormat:
        """The format of a complete upload, which must hold at least one audio frame."""
        if self._received == 0:
            raise InvalidWavError("the file is empty")
        if self.format is None:
            raise InvalidWavError("the file ends inside the WAV header")
        if self.audio_bytes == 0:
            raise InvalidWavError("the file holds no audio frames")
        if self.format.duration_s(self.audio_bytes) < MIN_DURATION_S:
            raise InvalidWavError(f"the file holds less than {MIN_DURATION_S * 1000:g} ms of audio")
        return self.format


def parse_header(buffer: bytes) -> WavFormat | None:
    """The format once `buffer` holds the whole header, None while more bytes are needed.

    Raises UnsupportedWavError or InvalidWavError as soon as the bytes seen so far decide it.
    """
    reader = WavReader(max_duration_s=2**62)
    reader.feed(buffer)
    return reader.format


def parse_fmt(chunk: bytes) -> tuple[Literal["pcm", "float"], int, int, int, int]:
    """(encoding, channels, sample rate, bits per sample, block align) from a `fmt ` chunk body."""
    if len(chunk) < 16:
        raise InvalidWavError("the fmt chunk is shorter than 16 bytes")
    tag, channels, sample_rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", chunk)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(chunk) < 40:
            raise InvalidWavError("the WAVE_FORMAT_EXTENSIBLE fmt chunk is shorter than 40 bytes")
        subformat = chunk[24:40]
        if subformat[2:] != SUBFORMAT_GUID_TAIL:
            raise UnsupportedWavError("the WAVE_FORMAT_EXTENSIBLE sub-format is not PCM or IEEE float")
        (tag,) = struct.unpack_from("<H", subformat)
    encoding: Literal["pcm", "float"]
    if tag == WAVE_FORMAT_PCM:
        encoding = "pcm"
    elif tag == WAVE_FORMAT_IEEE_FLOAT:
        encoding = "float"
    else:
        raise UnsupportedWavError(f"the audio format 0x{tag:04x} is not PCM or IEEE float")
    if bits == 0 or bits % 8:
        raise InvalidWavError(f"{bits} bits per sample is not a whole number of bytes")
    if bits not in BITS_ACCEPTED[encoding]:
        accepted = "/".join(map(str, BITS_ACCEPTED[encoding]))
        raise UnsupportedWavError(f"{bits}-bit {encoding} is not supported ({accepted}-bit are)")
    if not MIN_CHANNELS <= channels <= MAX_CHANNELS:
        raise InvalidWavError(f"{channels} channels is outside {MIN_CHANNELS} to {MAX_CHANNELS}")
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise InvalidWavError(f"a sample rate of {sample_rate} Hz is outside {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz")
    if block_align != channels * bits // 8:
        raise InvalidWavError(f"block align {block_align} does not match {channels} channels of {bits} bits")
    return encoding, channels, sample_rate, bits, block_align
