"""The pure HTTP rules of a download: ranges, validators, the file name."""

from datetime import UTC, datetime
from urllib.parse import unquote

import pytest

from functions.get_record.headers import (
    ByteRange,
    UnsatisfiableRangeError,
    content_disposition,
    entity_tag,
    http_date,
    if_range_holds,
    mp3_name,
    none_match,
    requested_range,
)

SIZE = 1000
ETAG = entity_tag(bytes(range(32)))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=500-", ByteRange(500, 999)),
        ("bytes=-100", ByteRange(900, 999)),
        ("bytes=-5000", ByteRange(0, 999)),
        ("bytes=990-5000", ByteRange(990, 999)),
        ("bytes=999-999", ByteRange(999, 999)),
        (" bytes=1-2 ", ByteRange(1, 2)),
        ("bytes=0-" + "9" * 4400, ByteRange(0, 999)),  # past int's digit limit
        ("bytes=-" + "9" * 4400, ByteRange(0, 999)),
        ("bytes=" + "0" * 4400 + "7-8", ByteRange(7, 8)),
    ],
)
def test_single_ranges(header: str, expected: ByteRange) -> None:
    assert requested_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header", [None, "bytes=0-1,5-6", "bytes=-", "items=0-5", "bytes=5-1", "bytes=a-b", "bytes 0-5", ""]
)
def test_what_is_not_one_valid_range_is_ignored(header: str | None) -> None:
    assert requested_range(header, SIZE) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=-0", "bytes=" + "4" * 4400 + "-"])
def test_ranges_past_the_end_are_unsatisfiable(header: str) -> None:
    with pytest.raises(UnsatisfiableRangeError):
        requested_range(header, SIZE)


def test_content_range_and_length() -> None:
    assert ByteRange(10, 19).content_range(SIZE) == "bytes 10-19/1000"
    assert ByteRange(10, 19).length == 10


def test_entity_tag_is_strong_and_quoted() -> None:
    assert '"' + bytes(range(32)).hex() + '"' == ETAG


@pytest.mark.parametrize(
    ("header", "matches"),
    [(None, False), (ETAG, True), (f"W/{ETAG}", True), (f'"other", {ETAG}', True), ("*", True), ('"other"', False)],
)
def test_if_none_match_uses_weak_comparison(header: str | None, matches: bool) -> None:
    assert none_match(header, ETAG) is matches


def test_if_range_needs_a_strong_match_or_the_exact_date() -> None:
    modified = http_date(datetime(2026, 11, 22, 10, 0, 0, 123, tzinfo=UTC))
    assert modified == "Sun, 22 Nov 2026 10:00:00 GMT"
    assert if_range_holds(None, ETAG, modified)
    assert if_range_holds(ETAG, ETAG, modified)
    assert not if_range_holds(f"W/{ETAG}", ETAG, modified)
    assert not if_range_holds('"other"', ETAG, modified)
    assert if_range_holds(modified, ETAG, modified)
    assert not if_range_holds("Sun, 22 Nov 2026 10:00:01 GMT", ETAG, modified)
    assert not if_range_holds("yesterday", ETAG, modified)


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        ("memo.wav", "memo.mp3"),
        ("my.song.WAV", "my.song.mp3"),
        ("noext", "noext.mp3"),
        ("../../etc/passwd.wav", "passwd.mp3"),
        ("C:\\Users\\me\\take.wav", "take.mp3"),
        ('quo"te.wav', "quote.mp3"),
        ("line\r\nbreak.wav", "linebreak.mp3"),
        (".wav", "record.mp3"),
        ("", "record.mp3"),
        ("Запись.wav", "Запись.mp3"),
    ],
)
def test_mp3_name_replaces_the_extension_and_strips_the_dangerous(original: str, expected: str) -> None:
    assert mp3_name(original) == expected


def test_content_disposition_has_an_ascii_fallback_and_the_exact_name() -> None:
    assert content_disposition("memo.wav") == "attachment; filename=\"memo.mp3\"; filename*=UTF-8''memo.mp3"
    header = content_disposition("Запись «1».wav")
    assert header.startswith('attachment; filename="')
    fallback = header.split('filename="')[1].split('"')[0]
    assert fallback.isascii()
    assert fallback.endswith(".mp3")
    assert "filename*=UTF-8''%D0%97%D0%B0%D0%BF%D0%B8%D1%81%D1%8C%20%C2%AB1%C2%BB.mp3" in header
    assert "\r" not in header
    assert "\n" not in header
    assert content_disposition("été.wav").startswith('attachment; filename="ete.mp3"')


#: Legal 255-character names that expand the most: NFKD (U+FDFA is 18 letters), UTF-8 and percent-encoding.
WORST_NAMES = ["\ufdfa" * 255, "😀" * 255, "%" * 255, "\ufdfa" * 127 + "😀" * 128]


@pytest.mark.parametrize("name", WORST_NAMES, ids=["nfkd", "emoji", "percent", "mixed"])
def test_content_disposition_stays_bounded_whatever_the_name(name: str) -> None:
    header = content_disposition(name)
    assert len(header) < 1024
    ascii_part, _, exact = header.partition("; filename*=UTF-8''")
    assert ascii_part.endswith('.mp3"')
    assert exact.endswith(".mp3")
    assert unquote(exact).removesuffix(".mp3") == name[: len(unquote(exact)) - 4]  # a prefix, cut at a character
