"""Where a conversion's MP3 goes in tests that run ffmpeg without the database."""

from dataclasses import dataclass, field


@dataclass
class Collected:
    """A sink for `converting`: keeps the MP3's bytes."""

    data: bytearray = field(default_factory=bytearray)
    #: How many pieces it came in.
    pieces: int = 0

    async def __call__(self, chunk: bytes) -> None:
        self.data += chunk
        self.pieces += 1
