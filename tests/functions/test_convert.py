"""The ffmpeg command line and process: fixed, confined to pipes, always reaped."""

import asyncio
import errno
import os
import struct
from pathlib import Path
from typing import Literal

import psutil
import pytest

from functions.add_record.convert import FFMPEG_NICENESS, converting, ffmpeg_arguments
from functions.add_record.mp3 import read_frame_header
from functions.add_record.wav import WavFormat
from tests.support.audio import Wav, probe_mp3
from tests.support.sinks import Collected

STEREO_44K = WavFormat("pcm", 2, 44_100, 16, 4, 44, None)


def test_command_line_is_fixed_and_confined_to_pipes() -> None:
    arguments = ffmpeg_arguments(STEREO_44K, "192k")
    assert arguments[0] == "ffmpeg"
    assert "-nostdin" in arguments
    # The input format is forced and only the pipe protocol may be opened, before the input is named.
    input_at = arguments.index("-i")
    assert arguments[input_at + 1] == "pipe:0"
    # Raw samples in the validated format: no demuxer ever reads the client's container.
    assert option(arguments[:input_at], "-f") == "s16le"
    assert option(arguments[:input_at], "-ar") == "44100"
    assert option(arguments[:input_at], "-ac") == "2"
    assert option(arguments[:input_at], "-protocol_whitelist") == "pipe"
    assert "pipe:1" in arguments
    assert option(arguments, "-acodec") == "libmp3lame"
    assert option(arguments, "-b:a") == "192k"
    assert "-ac" not in output_options(arguments)
    assert "-ar" not in output_options(arguments)


def option(arguments: list[str], name: str) -> str:
    return arguments[arguments.index(name) + 1]


def output_options(arguments: list[str]) -> list[str]:
    return arguments[arguments.index("-i") + 2 :]


@pytest.mark.parametrize(
    ("encoding", "bits", "raw"),
    [("pcm", 8, "u8"), ("pcm", 24, "s24le"), ("pcm", 32, "s32le"), ("float", 32, "f32le"), ("float", 64, "f64le")],
)
def test_ffmpeg_is_told_the_sample_format(encoding: Literal["pcm", "float"], bits: int, raw: str) -> None:
    arguments = ffmpeg_arguments(WavFormat(encoding, 1, 8_000, bits, bits // 8, 44, None), "64k")
    assert option(arguments[: arguments.index("-i")], "-f") == raw


@pytest.mark.parametrize(
    ("channels", "rate", "downmix", "resample"),
    [(1, 8_000, False, False), (2, 48_000, False, False), (6, 44_100, True, False), (2, 96_000, False, True)],
)
def test_channels_and_rates_are_only_changed_when_mp3_needs_it(
    channels: int, rate: int, downmix: bool, resample: bool
) -> None:
    arguments = output_options(ffmpeg_arguments(WavFormat("pcm", channels, rate, 16, channels * 2, 44, None), "128k"))
    assert ("-ac" in arguments) is downmix
    assert ("-ar" in arguments) is resample
    if resample:
        assert option(arguments, "-ar") == "48000"


def convert(data: bytes, wav: WavFormat = STEREO_44K) -> bytes:
    async def run() -> bytes:
        mp3 = Collected()
        async with (
            asyncio.timeout(20),
            converting(ffmpeg_arguments(wav, "192k"), 10**9, mp3, stall_timeout_s=60) as conversion,
        ):
            await conversion.write(data)
            await conversion.finish()
            return bytes(mp3.data)

    return asyncio.run(run())


def test_the_mp3_comes_in_ffmpegs_buffers_not_frame_by_frame() -> None:
    """Each write into the pipe wakes this process; a frame is 627 bytes, ffmpeg's buffer 32 KiB.

    Frame by frame, 10 s came in ~380 pieces; in buffers, ~8. The bound leaves
    room for a buffer split by a full pipe.
    """

    async def run() -> Collected:
        mp3 = Collected()
        async with converting(ffmpeg_arguments(STEREO_44K, "192k"), 10**9, mp3, stall_timeout_s=60) as conversion:
            await conversion.write(Wav(duration_s=10, sample_rate=44_100, channels=2).samples())
            await conversion.finish()
        return mp3

    mp3 = asyncio.run(run())
    assert len(mp3.data) > 200_000
    assert mp3.pieces <= len(mp3.data) // 8_192 + 1


def test_frame_header_agrees_with_ffprobe() -> None:
    for wav in (Wav(sample_rate=44_100, channels=2), Wav(sample_rate=8_000, channels=1)):
        fmt = WavFormat("pcm", wav.channels, wav.sample_rate, 16, wav.channels * 2, 44, None)
        mp3 = convert(wav.samples(), fmt)
        stream = read_frame_header(mp3[:4])
        probe = probe_mp3(mp3)
        assert (stream.sample_rate, stream.channels) == (probe.sample_rate, probe.channels)
    assert read_frame_header(bytes.fromhex("fffbb064")).bitrate_kbps == 192


def test_frame_header_rejects_what_is_not_layer_iii() -> None:
    for head in (b"ID3\x04", b"\xff\xfd\x90\x00", b""):
        with pytest.raises(ValueError, match=r"MP3|Layer III"):
            read_frame_header(head)


def test_floats_far_out_of_range_clip_instead_of_crashing_lame() -> None:
    """lame asserts (SIGABRT) on such samples; they reach it as clipped 16-bit ones."""
    wild = struct.pack("<4f", 3.4e38, -3.4e38, float("nan"), float("inf")) * 20_000
    mp3 = convert(wild, WavFormat("float", 2, 44_100, 32, 8, 44, None))
    assert probe_mp3(mp3).duration_s > 0


def test_playlist_pointing_at_a_local_file_is_never_opened(tmp_path: Path) -> None:
    """Even fed straight to ffmpeg (the parser would refuse it first), a playlist is only samples."""
    target = tmp_path / "secret.wav"
    os.mkfifo(target)  # opening it for reading would block: a hang here would be the proof
    playlist = f"#EXTM3U\n#EXTINF:1,\n{target}\nfile:{target}\n".encode()
    assert probe_mp3(convert(playlist * 100)).duration_s > 0  # noise, read as 16-bit stereo
    with pytest.raises(OSError, match="No such device") as no_reader:
        os.open(target, os.O_WRONLY | os.O_NONBLOCK)
    assert no_reader.value.errno == errno.ENXIO


def test_leaving_early_kills_and_reaps_ffmpeg() -> None:
    async def run() -> int:
        async with converting(
            ffmpeg_arguments(STEREO_44K, "192k"), 10**9, Collected(), stall_timeout_s=60
        ) as conversion:
            await conversion.write(Wav(duration_s=0.2).to_bytes()[:1000])
            return conversion.pid

    pid = asyncio.run(run())
    assert not psutil.pid_exists(pid)


def test_ffmpeg_runs_below_the_priority_of_requests() -> None:
    async def run() -> int:
        async with converting(
            ffmpeg_arguments(STEREO_44K, "192k"), 10**9, Collected(), stall_timeout_s=60
        ) as conversion:
            return os.getpriority(os.PRIO_PROCESS, conversion.pid)

    assert asyncio.run(run()) == FFMPEG_NICENESS
