"""The ffmpeg command line and process: fixed, confined to pipes, always reaped."""

import asyncio
import errno
import os
from pathlib import Path

import psutil
import pytest

from functions.add_record.convert import (
    FFMPEG_NICENESS,
    ConversionError,
    converting,
    ffmpeg_arguments,
    read_frame_header,
)
from functions.add_record.wav import WavFormat
from tests.audio import Wav, probe_mp3

STEREO_44K = WavFormat("pcm", 2, 44_100, 16, 4, 44, None)


def test_command_line_is_fixed_and_confined_to_pipes() -> None:
    arguments = ffmpeg_arguments(STEREO_44K, "192k")
    assert arguments[0] == "ffmpeg"
    assert "-nostdin" in arguments
    # The input format is forced and only the pipe protocol may be opened, before the input is named.
    input_at = arguments.index("-i")
    assert arguments[input_at + 1] == "pipe:0"
    assert arguments[arguments.index("-f") + 1] == "wav"
    assert arguments.index("-f") < input_at
    assert arguments[arguments.index("-protocol_whitelist") + 1] == "pipe"
    assert arguments.index("-protocol_whitelist") < input_at
    assert "pipe:1" in arguments
    assert arguments[arguments.index("-acodec") + 1] == "libmp3lame"
    assert arguments[arguments.index("-b:a") + 1] == "192k"
    assert "-ac" not in arguments
    assert "-ar" not in arguments


@pytest.mark.parametrize(
    ("channels", "rate", "downmix", "resample"),
    [(1, 8_000, False, False), (2, 48_000, False, False), (6, 44_100, True, False), (2, 96_000, False, True)],
)
def test_channels_and_rates_are_only_changed_when_mp3_needs_it(
    channels: int, rate: int, downmix: bool, resample: bool
) -> None:
    arguments = ffmpeg_arguments(WavFormat("pcm", channels, rate, 16, channels * 2, 44, None), "128k")
    assert ("-ac" in arguments) is downmix
    assert ("-ar" in arguments) is resample
    if resample:
        assert arguments[arguments.index("-ar") + 1] == "48000"


def convert(data: bytes, wav: WavFormat = STEREO_44K) -> bytes:
    async def run() -> bytes:
        async with asyncio.timeout(20), converting(ffmpeg_arguments(wav, "192k")) as conversion:
            await conversion.write(data)
            mp3 = await conversion.finish()
            return mp3.spool.read()

    return asyncio.run(run())


def test_frame_header_agrees_with_ffprobe() -> None:
    for wav in (Wav(sample_rate=44_100, channels=2), Wav(sample_rate=8_000, channels=1)):
        fmt = WavFormat("pcm", wav.channels, wav.sample_rate, 16, wav.channels * 2, 44, None)
        mp3 = convert(wav.to_bytes(), fmt)
        stream = read_frame_header(mp3[:4])
        probe = probe_mp3(mp3)
        assert (stream.sample_rate, stream.channels) == (probe.sample_rate, probe.channels)
    assert read_frame_header(bytes.fromhex("fffbb064")).bitrate_kbps == 192


def test_frame_header_rejects_what_is_not_layer_iii() -> None:
    for head in (b"ID3\x04", b"\xff\xfd\x90\x00", b""):
        with pytest.raises(ValueError, match=r"MP3|Layer III"):
            read_frame_header(head)


def test_playlist_pointing_at_a_local_file_is_never_opened(tmp_path: Path) -> None:
    """Even fed straight to ffmpeg (the parser would refuse it first), a playlist opens nothing."""
    target = tmp_path / "secret.wav"
    os.mkfifo(target)  # opening it for reading would block: a hang here would be the proof
    playlist = f"#EXTM3U\n#EXTINF:1,\n{target}\nfile:{target}\n".encode()
    with pytest.raises(ConversionError):
        convert(playlist)
    with pytest.raises(OSError, match="No such device") as no_reader:
        os.open(target, os.O_WRONLY | os.O_NONBLOCK)
    assert no_reader.value.errno == errno.ENXIO


def test_leaving_early_kills_and_reaps_ffmpeg() -> None:
    async def run() -> int:
        async with converting(ffmpeg_arguments(STEREO_44K, "192k")) as conversion:
            await conversion.write(Wav(duration_s=0.2).to_bytes()[:1000])
            return conversion.pid

    pid = asyncio.run(run())
    assert not psutil.pid_exists(pid)


def test_ffmpeg_runs_below_the_priority_of_requests() -> None:
    async def run() -> int:
        async with converting(ffmpeg_arguments(STEREO_44K, "192k")) as conversion:
            return os.getpriority(os.PRIO_PROCESS, conversion.pid)

    assert asyncio.run(run()) == FFMPEG_NICENESS
