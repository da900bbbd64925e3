"""Hypothesis against the RIFF parser: whatever the bytes, only our two errors (415/422) come out."""

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.add_record.wav import (
    InvalidWavError,
    TooLongError,
    UnsupportedWavError,
    WavFormat,
    WavReader,
    parse_header,
)
from tests.support.audio import Wav

EXPECTED = (UnsupportedWavError, InvalidWavError, TooLongError)


def fmt_chunk(draw: st.DrawFn) -> bytes:
    values = struct.pack(
        "<HHIIHH",
        draw(st.sampled_from([0x0001, 0x0003, 0xFFFE, 0x0055, 0x0000, 0xFFFF])),
        draw(st.integers(0, 0xFFFF)),
        draw(st.one_of(st.sampled_from([8_000, 44_100, 192_000]), st.integers(0, 0xFFFFFFFF))),
        draw(st.integers(0, 0xFFFFFFFF)),
        draw(st.integers(0, 0xFFFF)),
        draw(st.sampled_from([0, 7, 8, 12, 16, 24, 32, 64, 0xFFFF])),
    )
    return values + draw(st.binary(max_size=40))


@st.composite
def riff_files(draw: st.DrawFn) -> bytes:
    """Mostly well-formed RIFF/WAVE skeletons with hostile values in every field."""
    chunks = b""
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from([b"fmt ", b"data", b"LIST", b"JUNK", b"\x00\x00\x00\x00"]))
        body = fmt_chunk(draw) if kind == b"fmt " else draw(st.binary(max_size=64))
        size = draw(st.one_of(st.just(len(body)), st.integers(0, 0xFFFFFFFF)))
        chunks += kind + struct.pack("<I", size) + body
    riff = draw(st.sampled_from([b"RIFF", b"RIFX", b"RF64"]))
    form = draw(st.sampled_from([b"WAVE", b"AVI ", b"wave"]))
    return riff + struct.pack("<I", draw(st.integers(0, 0xFFFFFFFF))) + form + chunks


def parse_everything(data: bytes, split: int) -> None:
    """The parser on the whole, and the reader fed in two pieces, as an upload would arrive."""
    try:
        result = parse_header(data)
        assert result is None or isinstance(result, WavFormat)
    except EXPECTED:
        pass
    reader = WavReader(max_duration_s=3600)
    try:
        reader.feed(data[:split])
        reader.feed(data[split:])
        assert isinstance(reader.finish(), WavFormat)
    except EXPECTED:
        pass


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(riff_files(), st.integers(0, 200))
def test_hostile_headers_only_raise_wav_errors(data: bytes, split: int) -> None:
    parse_everything(data, split)


@settings(max_examples=300)
@given(st.binary(max_size=300), st.integers(0, 300))
def test_random_bytes_only_raise_wav_errors(data: bytes, split: int) -> None:
    parse_everything(data, split)


@settings(max_examples=200)
@given(st.integers(0, 10_000), st.binary(min_size=1, max_size=8))
def test_a_valid_wav_with_bytes_flipped_only_raises_wav_errors(position: int, garbage: bytes) -> None:
    data = bytearray(Wav(duration_s=0.01).to_bytes())
    position %= len(data)
    data[position : position + len(garbage)] = garbage
    parse_everything(bytes(data), position)
