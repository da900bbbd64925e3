"""Audio the tests make themselves: WAVs written byte by byte, MP3s read back with ffprobe."""

import json
import math
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field

PCM, IEEE_FLOAT, EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
SUBFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")


@dataclass(frozen=True)
class Wav:
    """A tone of `duration_s`; every header field can be overridden to make it wrong on purpose."""

    duration_s: float = 1.0
    sample_rate: int = 44_100
    channels: int = 2
    bits: int = 16
    encoding: str = "pcm"  # or "float"
    extensible: bool = False
    #: Chunks placed before `fmt ` and between `fmt ` and `data`, as (id, body).
    chunks_before_fmt: Sequence[tuple[bytes, bytes]] = ()
    chunks_before_data: Sequence[tuple[bytes, bytes]] = ()
    #: Written in place of the real RIFF and data sizes (0 or 0xFFFFFFFF for streaming WAVs).
    declared_size: int | None = None
    format_tag: int | None = None
    block_align: int | None = None
    fmt_override: dict[str, int] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return round(self.duration_s * self.sample_rate)

    def samples(self) -> bytes:
        """One period of a 441 Hz-ish tone, repeated: cheap to make, not silence."""
        period = max(1, round(self.sample_rate / 441))
        frame_bytes = []
        for i in range(period):
            value = 0.5 * math.sin(2 * math.pi * i / period)
            frame_bytes.append(encode_sample(value, self.bits, self.encoding) * self.channels)
        block = b"".join(frame_bytes)
        repeats, rest = divmod(self.frames, period)
        return block * repeats + block[: rest * len(frame_bytes[0])]

    def fmt_chunk(self) -> bytes:
        block_align = self.block_align if self.block_align is not None else self.channels * self.bits // 8
        tag = self.format_tag if self.format_tag is not None else (PCM if self.encoding == "pcm" else IEEE_FLOAT)
        values = {
            "tag": EXTENSIBLE if self.extensible else tag,
            "channels": self.channels,
            "sample_rate": self.sample_rate,
            "byte_rate": self.sample_rate * block_align,
            "block_align": block_align,
            "bits": self.bits,
        } | self.fmt_override
        body = struct.pack("<HHIIHH", *values.values())
        if self.extensible:
            mask = (1 << self.channels) - 1
            body += struct.pack("<HHI", 22, self.bits, mask) + struct.pack("<H", tag) + SUBFORMAT_TAIL
        return body

    def to_bytes(self) -> bytes:
        audio = self.samples()
        chunks = [*self.chunks_before_fmt, (b"fmt ", self.fmt_chunk()), *self.chunks_before_data]
        header = b"".join(riff_chunk(chunk_id, body) for chunk_id, body in chunks)
        data_size = len(audio) if self.declared_size is None else self.declared_size
        riff_size = 4 + len(header) + 8 + len(audio) if self.declared_size is None else self.declared_size
        return (
            b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + header + b"data" + struct.pack("<I", data_size) + audio
        )


def riff_chunk(chunk_id: bytes, body: bytes) -> bytes:
    """A chunk with its size, padded to an even length as RIFF requires."""
    return chunk_id + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


def encode_sample(value: float, bits: int, encoding: str) -> bytes:
    if encoding == "float":
        return struct.pack("<f" if bits == 32 else "<d", value)
    if bits == 8:
        return bytes([128 + round(value * 127)])
    scaled: int = round(value * (2 ** (bits - 1) - 1))
    return scaled.to_bytes(bits // 8, "little", signed=True)


@dataclass(frozen=True)
class Probe:
    duration_s: float
    sample_rate: int
    channels: int
    codec: str


def probe_mp3(data: bytes) -> Probe:
    """What ffprobe makes of `data`, as a file (its size is how ffprobe estimates a CBR duration)."""
    with tempfile.NamedTemporaryFile(suffix=".mp3") as file:
        file.write(data)
        file.flush()
        result = subprocess.run(
            [
                "ffprobe", "-v", "error", "-f", "mp3", "-i", file.name, "-of", "json",
                "-show_entries", "format=duration:stream=sample_rate,channels,codec_name",
            ],
            capture_output=True,
            check=True,
        )  # fmt: skip
    parsed = json.loads(result.stdout)
    stream = parsed["streams"][0]
    return Probe(
        float(parsed["format"]["duration"]), int(stream["sample_rate"]), int(stream["channels"]), stream["codec_name"]
    )


def mp3_frame_s(sample_rate: int) -> float:
    """One MP3 frame: 1152 samples for MPEG-1 (32 kHz and up), 576 below."""
    return (1152 if sample_rate >= 32_000 else 576) / sample_rate


def durations_match(mp3_s: float, wav_s: float, mp3_rate: int) -> bool:
    """The MP3 is as long as the WAV, give or take the encoder's delay and last-frame padding."""
    return -0.01 <= mp3_s - wav_s <= 0.05 + 2 * mp3_frame_s(mp3_rate)
