"""What was validated is what is converted: for every WAV accepted, whatever its chunk layout,
the duration we store is the MP3's decoded length, and none exceeds MAX_DURATION_S.

Hypothesis builds hostile layouts (chunks of any kind before and after `fmt `, a
second `fmt `, several `data` chunks, declared sizes that lie, trailing bytes,
any split into reads); each goes through WavReader and the real ffmpeg, and
ffprobe counts the MP3's frames.
"""

import asyncio
import json
import struct
import subprocess
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.add_record.convert import converting, ffmpeg_arguments
from functions.add_record.wav import InvalidWavError, TooLongError, UnsupportedWavError, WavReader
from tests.support.audio import Wav, riff_chunk
from tests.support.sinks import Collected

MAX_DURATION_S = 1
FORMATS = [("pcm", 8), ("pcm", 16), ("pcm", 24), ("pcm", 32), ("float", 32), ("float", 64)]
# lame's encoder delay: every MP3 it writes starts with this many samples of silence (576 + 529).
LAME_DELAY_SAMPLES = 1105
OTHER_CHUNKS = [b"LIST", b"JUNK", b"XMA2", b"bext", b"fact", b"data", b"fmt ", b"\x00\x00\x00\x00"]


@st.composite
def layouts(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """A WAV with hostile chunks around a valid core, and where its reads split."""
    encoding, bits = draw(st.sampled_from(FORMATS))
    wav = Wav(
        duration_s=draw(st.floats(0, 1.3)),
        sample_rate=draw(st.sampled_from([8_000, 22_050, 44_100, 96_000])),
        channels=draw(st.sampled_from([1, 2, 6])),
        bits=bits,
        encoding=encoding,
        extensible=draw(st.booleans()),
    )

    def chunks() -> list[tuple[bytes, bytes]]:
        kinds = draw(st.lists(st.sampled_from(OTHER_CHUNKS), max_size=3))
        return [(kind, draw(st.binary(max_size=300))) for kind in kinds if kind != b"data"]

    before_fmt, before_data = chunks(), chunks()
    header = b"".join(riff_chunk(kind, body) for kind, body in [*before_fmt, (b"fmt ", wav.fmt_chunk()), *before_data])
    audio = wav.samples()
    declared = draw(
        st.one_of(
            st.just(len(audio)),
            st.sampled_from([0, 0xFFFFFFFF]),  # streaming: read to the end
            st.integers(0, len(audio) + 5000),  # a size that lies
        )
    )
    trailing = draw(
        st.one_of(
            st.just(b""),
            st.binary(max_size=2000),
            st.builds(riff_chunk, st.just(b"data"), st.binary(min_size=1000, max_size=50_000)),
            st.just(riff_chunk(b"fmt ", Wav(channels=1, sample_rate=8_000).fmt_chunk())),
        )
    )
    data = b"RIFF" + struct.pack("<I", 0) + b"WAVE" + header + b"data" + struct.pack("<I", declared) + audio + trailing
    splits = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    return data, splits


async def convert(data: bytes, splits: list[int]) -> tuple[float, bytes] | None:
    """(stored duration, MP3) as add_record makes them, or None when the WAV is refused."""
    reader = WavReader(MAX_DURATION_S)
    pieces = [data[start:end] for start, end in zip([0, *splits], [*splits, len(data)], strict=True)]
    try:
        audio = b"".join(reader.feed(piece) for piece in pieces)
        wav = reader.finish()
    except (UnsupportedWavError, InvalidWavError, TooLongError):
        return None
    mp3 = Collected()
    async with (
        asyncio.timeout(60),
        converting(ffmpeg_arguments(wav, "128k"), 10**9, mp3, stall_timeout_s=60) as conversion,
    ):
        await conversion.write(audio)
        await conversion.finish()
        return wav.duration_s(reader.audio_bytes), bytes(mp3.data)


def decoded_duration_s(mp3: bytes) -> tuple[float, float, int]:
    """(seconds the MP3 decodes to, seconds of one of its frames, its sample rate), counted frame by frame."""
    with tempfile.NamedTemporaryFile(suffix=".mp3") as file:
        file.write(mp3)
        file.flush()
        result = subprocess.run(
            ["ffprobe", "-v", "error", "-f", "mp3", "-count_packets", "-of", "json",
             "-show_entries", "stream=nb_read_packets,sample_rate", file.name],
            capture_output=True,
            check=True,
        )  # fmt: skip
    stream = json.loads(result.stdout)["streams"][0]
    rate = int(stream["sample_rate"])
    frame_s = (1152 if rate >= 32_000 else 576) / rate
    return int(stream["nb_read_packets"]) * frame_s, frame_s, rate


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(layouts())
def test_stored_duration_is_the_mp3_s_and_within_the_limit(layout: tuple[bytes, list[int]]) -> None:
    converted = asyncio.run(convert(*layout))
    if converted is None:
        return
    stored_s, mp3 = converted
    assert 0 < stored_s <= MAX_DURATION_S
    decoded_s, frame_s, rate = decoded_duration_s(mp3)
    # Beyond lame's fixed delay, the MP3 is the stored duration and the padding of its last frame:
    # under one frame, plus lame's own minimum (seen up to 0.08 of a frame).
    beyond_delay_s = decoded_s - LAME_DELAY_SAMPLES / rate - stored_s
    assert 0 <= beyond_delay_s <= 1.1 * frame_s, (stored_s, decoded_s)
