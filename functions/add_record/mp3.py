"""MPEG audio as far as this service reads it: the rates a stream can have, and its first frame's header.

lame writes the stream; this reads back what it wrote (bitrate, sample rate,
channels), since lame lowers the bitrate where the sample rate allows less.
"""

import struct
from dataclasses import dataclass

from common.config import MP3_BITRATES_KBPS

#: Sample rates an MP3 can carry (MPEG-2.5, -2 and -1); any other is resampled to the nearest one below it.
MP3_SAMPLE_RATES = (8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)
#: Bitrates of MPEG-2 and -2.5 Layer III, the streams of sample rates under 32 kHz.
MPEG2_BITRATES_KBPS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)

# MPEG audio frame header tables, indexed by the header's bit fields.
_BITRATES_KBPS = {
    "mpeg1": (0, *MP3_BITRATES_KBPS),  # index 0 is "free format", which lame never writes
    "mpeg2": (0, *MPEG2_BITRATES_KBPS),
}
_SAMPLE_RATES = {3: (44_100, 48_000, 32_000), 2: (22_050, 24_000, 16_000), 0: (11_025, 12_000, 8_000)}


@dataclass(frozen=True)
class Mp3Stream:
    bitrate_kbps: int
    sample_rate: int
    channels: int


def read_frame_header(head: bytes) -> Mp3Stream:
    """Bitrate, sample rate and channels from the first MPEG Layer III frame header.

    lame lowers the bitrate where the sample rate allows less, so the stream,
    not the setting, says what was stored.
    """
    if len(head) < 4:
        raise ValueError("no MP3 frame header")
    (word,) = struct.unpack(">I", head[:4])
    version = (word >> 19) & 0b11
    if word >> 21 != 0x7FF or version == 1 or (word >> 17) & 0b11 != 0b01:
        raise ValueError("not an MPEG Layer III frame header")
    table = "mpeg1" if version == 3 else "mpeg2"
    bitrate = _BITRATES_KBPS[table][(word >> 12) & 0b1111]
    sample_rate = _SAMPLE_RATES[version][(word >> 10) & 0b11]
    channels = 1 if (word >> 6) & 0b11 == 0b11 else 2
    return Mp3Stream(bitrate, sample_rate, channels)
