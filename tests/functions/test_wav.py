"""The RIFF/WAVE header parser: what it accepts, what it refuses, and with which error."""

import struct

import pytest

from functions.add_record.wav import (
    InvalidWavError,
    TooLongError,
    UnsupportedWavError,
    WavFormat,
    WavReader,
    parse_header,
)
from tests.support.audio import Wav, riff_chunk


def parsed(wav: Wav) -> WavFormat:
    result = parse_header(wav.to_bytes())
    assert result is not None
    return result


@pytest.mark.parametrize(
    ("wav", "encoding", "bits"),
    [
        (Wav(bits=8), "pcm", 8),
        (Wav(bits=16), "pcm", 16),
        (Wav(bits=24), "pcm", 24),
        (Wav(bits=32), "pcm", 32),
        (Wav(bits=32, encoding="float"), "float", 32),
        (Wav(bits=64, encoding="float"), "float", 64),
        (Wav(bits=24, extensible=True), "pcm", 24),
        (Wav(bits=32, encoding="float", extensible=True), "float", 32),
    ],
)
def test_accepted_encodings(wav: Wav, encoding: str, bits: int) -> None:
    result = parsed(wav)
    assert (result.encoding, result.bits_per_sample, result.channels, result.sample_rate) == (
        encoding,
        bits,
        wav.channels,
        wav.sample_rate,
    )
    assert result.data_size == wav.frames * wav.channels * bits // 8


def test_other_chunks_are_skipped_with_their_padding() -> None:
    wav = Wav(
        chunks_before_fmt=[(b"JUNK", b"\0" * 28), (b"LIST", b"INFOodd")],  # 7 bytes: padded to 8
        chunks_before_data=[(b"bext", b"x" * 3), (b"iXML", b"<x/>")],
    )
    data = wav.to_bytes()
    result = parsed(wav)
    assert data[result.data_offset - 8 : result.data_offset - 4] == b"data"


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF])
def test_streaming_sizes_mean_read_to_the_end(size: int) -> None:
    assert parsed(Wav(declared_size=size)).data_size is None


def test_header_is_found_whatever_the_split() -> None:
    data = Wav(chunks_before_fmt=[(b"LIST", b"x" * 101)]).to_bytes()
    expected = parse_header(data)
    for cut in range(len(data[:200])):
        assert parse_header(data[:cut]) in (None, expected)


@pytest.mark.parametrize(
    "data",
    [
        b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb" * 100,  # an MP3
        b"#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n",  # a playlist
        b"RIFF\x00\x00\x00\x00AVI LIST",  # AVI, another RIFF
        b"\x8f\x13\xa2\x00random bytes\xff" * 10,
        b"riff\x00\x00\x00\x00wave",
        b"X",
    ],
    ids=["mp3", "playlist", "avi", "random", "lowercase", "one-byte"],
)
def test_non_wav_bytes_are_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedWavError):
        parse_header(data)


@pytest.mark.parametrize(
    "wav",
    [
        Wav(format_tag=0x0055),  # MP3 inside WAV
        Wav(format_tag=0x0002),  # MS ADPCM
        Wav(format_tag=0x0006),  # A-law
        Wav(bits=16, encoding="float"),  # half floats
        Wav(bits=40),
    ],
    ids=["mp3-in-wav", "adpcm", "alaw", "float16", "pcm40"],
)
def test_other_codecs_are_unsupported(wav: Wav) -> None:
    with pytest.raises(UnsupportedWavError):
        parse_header(wav.to_bytes())


def test_extensible_with_another_subformat_is_unsupported() -> None:
    data = bytearray(Wav(extensible=True).to_bytes())
    subformat = data.index(bytes.fromhex("000000001000800000aa00389b71")) - 2
    data[subformat : subformat + 2] = struct.pack("<H", 0x0055)
    with pytest.raises(UnsupportedWavError):
        parse_header(bytes(data))


@pytest.mark.parametrize(
    "wav",
    [
        Wav(channels=0, block_align=2),
        Wav(channels=9),
        Wav(sample_rate=7_999),
        Wav(sample_rate=192_001),
        Wav(sample_rate=0),
        Wav(block_align=3),
        Wav(bits=0, block_align=0),
        Wav(fmt_override={"bits": 12}),
    ],
    ids=["0-channels", "9-channels", "rate-too-low", "rate-too-high", "rate-0", "block-align", "0-bits", "12-bits"],
)
def test_impossible_headers_are_invalid(wav: Wav) -> None:
    with pytest.raises(InvalidWavError):
        parse_header(wav.to_bytes())


def test_data_before_fmt_is_invalid() -> None:
    data = b"RIFF\x00\x00\x00\x00WAVE" + riff_chunk(b"data", b"\0" * 8) + riff_chunk(b"fmt ", Wav().fmt_chunk())
    with pytest.raises(InvalidWavError, match="before the fmt"):
        parse_header(data)


def test_short_fmt_chunk_is_invalid() -> None:
    with pytest.raises(InvalidWavError):
        parse_header(b"RIFF\x00\x00\x00\x00WAVE" + riff_chunk(b"fmt ", b"\x01\x00\x02\x00"))


def test_endless_chunk_before_data_is_invalid() -> None:
    data = b"RIFF\x00\x00\x00\x00WAVE" + b"LIST" + struct.pack("<I", 0xFFFFFFF0)
    with pytest.raises(InvalidWavError, match="header is larger"):
        parse_header(data)


def test_declared_data_shorter_than_a_frame_is_invalid() -> None:
    data = Wav(duration_s=0).to_bytes()
    assert parse_header(data) is not None  # a streaming-looking 0 size reads to the end...
    reader = WavReader(max_duration_s=60)
    reader.feed(data)
    with pytest.raises(InvalidWavError, match="no audio frames"):  # ...and there is nothing there
        reader.finish()


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"RIFF\x10\x00\x00\x00WAVEfmt ", "ends inside"), (Wav(duration_s=0).to_bytes(), "no audio")],
    ids=["empty", "truncated-header", "header-only"],
)
def test_reader_refuses_uploads_without_audio(data: bytes, message: str) -> None:
    reader = WavReader(max_duration_s=60)
    assert reader.feed(data) == b""
    with pytest.raises(InvalidWavError, match=message):
        reader.finish()


def test_reader_passes_on_the_audio_alone_in_whole_frames_whatever_the_split() -> None:
    wav = Wav(duration_s=0.5, channels=2, bits=24, chunks_before_fmt=[(b"LIST", b"x" * 101)])
    data = wav.to_bytes()
    reader = WavReader(max_duration_s=60)
    pieces = [reader.feed(data[i : i + 7]) for i in range(0, len(data), 7)]
    assert all(len(piece) % 6 == 0 for piece in pieces)
    assert b"".join(pieces) == wav.samples()
    assert reader.finish().frames(reader.audio_bytes) == wav.frames


def test_what_follows_the_declared_data_is_never_passed_on() -> None:
    """A second data chunk, a late fmt, junk: only the first data chunk's frames are audio."""
    wav = Wav(duration_s=0.25, channels=1, bits=16)
    trailing = riff_chunk(b"data", b"\x7f" * 44_100) + riff_chunk(b"fmt ", Wav(channels=2).fmt_chunk()) + b"junk"
    reader = WavReader(max_duration_s=1)
    passed = reader.feed(wav.to_bytes() + trailing)
    assert passed == wav.samples()
    assert reader.audio_bytes == len(wav.samples())


def test_less_than_a_millisecond_of_audio_is_invalid() -> None:
    reader = WavReader(max_duration_s=1)
    reader.feed(Wav(duration_s=0.0005, sample_rate=96_000).to_bytes())
    with pytest.raises(InvalidWavError, match="less than 1 ms"):
        reader.finish()


def test_a_partial_last_frame_is_not_passed_on() -> None:
    wav = Wav(duration_s=0.01, channels=2, bits=16)
    data = wav.to_bytes()
    reader = WavReader(max_duration_s=1)
    assert reader.feed(data[:-1]) == wav.samples()[:-4]


@pytest.mark.parametrize(
    ("wav", "message"),
    [
        (Wav(chunks_before_data=[(b"fmt ", Wav(channels=1).fmt_chunk())]), "more than one fmt"),
        (Wav(chunks_before_fmt=[(b"JUNK", b"")] * 64), "more than 64 chunks"),
        (Wav(chunks_before_fmt=[(b"fmt ", b"\x01\x00" * 600)]), "longer than 1024"),
    ],
    ids=["two-fmt", "too-many-chunks", "huge-fmt"],
)
def test_ambiguous_or_bloated_layouts_are_invalid(wav: Wav, message: str) -> None:
    with pytest.raises(InvalidWavError, match=message):
        parse_header(wav.to_bytes())


def test_a_megabyte_of_tiny_chunks_is_refused_after_a_few() -> None:
    """The header cost is bounded by MAX_CHUNKS, not by how many chunks a client sends."""
    flood = riff_chunk(b"JUNK", b"") * (1024 * 1024 // 8)
    reader = WavReader(max_duration_s=60)
    reader.feed(b"RIFF\x00\x00\x00\x00WAVE")
    reader.feed(flood[:512])  # 64 chunks: the most allowed
    with pytest.raises(InvalidWavError, match="chunks"):
        reader.feed(flood[512:1024])  # refused at the next, not a megabyte later


def test_declared_duration_over_the_limit_is_refused_up_front() -> None:
    data = Wav(duration_s=3).to_bytes()
    reader = WavReader(max_duration_s=2)
    with pytest.raises(TooLongError):
        reader.feed(data[:200])


def test_streamed_duration_over_the_limit_is_refused_when_crossed() -> None:
    data = Wav(duration_s=3, sample_rate=8_000, declared_size=0xFFFFFFFF).to_bytes()
    reader = WavReader(max_duration_s=2)
    two_seconds = 2 * 8_000 * 4  # 16-bit stereo at 8 kHz; with the header, just under two seconds of audio
    reader.feed(data[:two_seconds])
    with pytest.raises(TooLongError):
        reader.feed(data[2 * 8_000 * 4 : 3 * 8_000 * 4])
