"""What counts as a WAV, decided from the bytes alone (never a file name or Content-Type).

The RIFF header is parsed as it arrives: `RIFF`, a size, `WAVE`, then chunks
(id, little-endian size, body padded to an even length) until `data`, which
must come after `fmt `. Accepted: PCM of 8/16/24/32 bits, IEEE float of 32/64
bits, and WAVE_FORMAT_EXTENSIBLE whose sub-format is one of those two.
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
# Metadata chunks (LIST, bext, iXML, JUNK) before `data` are small; a megabyte is plenty.
MAX_HEADER_BYTES = 1024 * 1024


class UnsupportedWavError(ValueError):
    """Not a WAV of a kind this service converts (HTTP 415)."""


class InvalidWavError(ValueError):
    """A WAV whose header cannot be right, or that holds no audio (HTTP 422)."""


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


def parse_header(buffer: bytes) -> WavFormat | None:
    """The format once `buffer` holds the whole header, None while more bytes are needed.

    Raises UnsupportedWavError or InvalidWavError as soon as the bytes seen so far decide it.
    """
    if buffer[:4] != b"RIFF"[: len(buffer)]:
        raise UnsupportedWavError("the file is not a RIFF/WAVE file")
    if len(buffer) < 12:
        return None
    if buffer[8:12] != b"WAVE":
        raise UnsupportedWavError("the file is a RIFF container but not WAVE audio")
    offset = 12
    fmt: tuple[Literal["pcm", "float"], int, int, int, int] | None = None
    while len(buffer) >= offset + 8:
        chunk_id = buffer[offset : offset + 4]
        (size,) = struct.unpack_from("<I", buffer, offset + 4)
        body = offset + 8
        if chunk_id == b"data":
            if fmt is None:
                raise InvalidWavError("the data chunk comes before the fmt chunk")
            encoding, channels, sample_rate, bits, block_align = fmt
            data_size = None if size in STREAMING_SIZES else size
            if data_size is not None and data_size < block_align:
                raise InvalidWavError("the data chunk holds no audio frames")
            return WavFormat(encoding, channels, sample_rate, bits, block_align, body, data_size)
        if body + size > MAX_HEADER_BYTES:
            raise InvalidWavError(f"the header is larger than {MAX_HEADER_BYTES} bytes before the data chunk")
        if chunk_id == b"fmt ":
            if len(buffer) < body + size:
                return None
            fmt = parse_fmt(buffer[body : body + size])
        offset = body + size + (size & 1)
    return None


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


class TooLongError(ValueError):
    """More audio than MAX_DURATION_S allows (HTTP 413)."""


class WavReader:
    """Follows one upload's bytes: holds them back until the header parses, then counts the audio."""

    def __init__(self, max_duration_s: int) -> None:
        self.max_duration_s = max_duration_s
        self.format: WavFormat | None = None
        self._pending = b""
        self._received = 0

    def feed(self, data: bytes) -> bytes:
        """The bytes that may go on to the converter (none until the header is complete)."""
        self._received += len(data)
        if self.format is None:
            self._pending += data
            self.format = parse_header(self._pending)
            if self.format is None:
                return b""
            self._check_declared_duration(self.format)
            data, self._pending = self._pending, b""
        if self.format.duration_s(self.audio_bytes) > self.max_duration_s:
            raise TooLongError(f"the recording is longer than {self.max_duration_s} s")
        return data

    def _check_declared_duration(self, wav: WavFormat) -> None:
        # Refuse a declared length up front rather than after converting an hour of it.
        if wav.data_size is not None and wav.duration_s(wav.data_size) > self.max_duration_s:
            raise TooLongError(f"the recording is longer than {self.max_duration_s} s")

    @property
    def audio_bytes(self) -> int:
        """Audio received so far: what follows the header, up to the declared size."""
        if self.format is None:
            return 0
        audio = max(0, self._received - self.format.data_offset)
        return audio if self.format.data_size is None else min(audio, self.format.data_size)

    def finish(self) -> WavFormat:
        """The format of a complete upload, which must hold at least one audio frame."""
        if self._received == 0:
            raise InvalidWavError("the file is empty")
        if self.format is None:
            raise InvalidWavError("the file ends inside the WAV header")
        if self.format.frames(self.audio_bytes) == 0:
            raise InvalidWavError("the file holds no audio frames")
        return self.format
