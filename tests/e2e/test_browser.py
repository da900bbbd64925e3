"""A person in a real browser: Debian's chromium, driven by Playwright (no browser download).

Registers, uploads generated WAVs through the page, sees the player, reads
the link, lists, plays and deletes recordings; screenshots are kept in test-artifacts/. Conditions are polled with
`page.evaluate` rather than `page.wait_for_function`: the latter runs its
predicate through `eval` in the page, which the page's own CSP refuses.
"""

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, Dialog, Page, sync_playwright
from sqlalchemy import Engine

from common.storage.backend import Backend
from devstack.seed import create_user, seed_record
from devstack.topology import ROOT
from tests.support.audio import Wav
from tests.support.stacks import Stack, wait_for

# Bytes are touched here: every test runs on a stack of each backend.
pytestmark = pytest.mark.every_backend

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What the machine's notes ask of a headless chromium here: no sandbox as root, no network chatter.
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # The test starts playback from a script, not a click.
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip
ARTIFACTS = ROOT / "test-artifacts"
SEEKABLE_TO_1_5_S = "(p => p.seekable.length > 0 && p.seekable.end(0) >= 1.5)(document.querySelector('#player'))"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    page = browser.new_page()
    page.goto(f"{stack.base_url}/")
    yield page
    page.close()


def register(page: Page, name: str) -> None:
    page.fill("#name", name)
    page.click("#register-button")
    page.wait_for_selector("#upload-step:not([hidden])")


def test_register_upload_and_listen_in_a_browser(page: Page, stack: Stack, tmp_path: Path) -> None:
    register(page, "Browser user")
    assert page.text_content("#user-id")
    assert len(page.text_content("#token") or "") == 36

    wav = tmp_path / "memo.wav"
    wav.write_bytes(Wav(duration_s=2, sample_rate=44_100).to_bytes())
    page.set_input_files("#file", str(wav))
    page.click("#upload-button")
    page.wait_for_selector("#result-step:not([hidden])", timeout=30_000)

    link = page.text_content("#link") or ""
    assert link.startswith(f"{stack.base_url}/record?id=")
    assert page.get_attribute("#download-link", "href") == link
    # The player loaded the MP3 (its duration is the WAV's) and can seek, via Range requests.
    assert wait_for(lambda: page.evaluate("document.querySelector('#player').readyState >= 1"))
    duration = page.evaluate("document.querySelector('#player').duration")
    assert 1.9 < duration < 2.3
    page.evaluate("document.querySelector('#player').currentTime = 1.5")
    assert wait_for(lambda: page.evaluate(SEEKABLE_TO_1_5_S))
    assert "Done: 2 s of audio" in (page.text_content("#progress-text") or "")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-upload.png"), full_page=True)


def test_errors_are_shown_in_words(page: Page, tmp_path: Path) -> None:
    register(page, "Careless user")
    not_a_wav = tmp_path / "song.wav"
    not_a_wav.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb" * 500)
    page.set_input_files("#file", str(not_a_wav))
    page.click("#upload-button")
    page.wait_for_selector("#error:not([hidden])")
    message = page.text_content("#error") or ""
    assert "(415)" in message
    assert "not a WAV" in message
    assert page.is_hidden("#result-step")


def test_the_docs_render_the_api_description(browser: Browser, stack: Stack) -> None:
    """Under the page's own Content-Security-Policy: Swagger UI needs nothing it forbids."""
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    try:
        page.goto(f"{stack.base_url}/docs")  # redirected to /docs/
        page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
        assert "Records" in (page.text_content(".swagger-ui .info .title") or "")
        operations = page.locator(".opblock-summary-path").all_text_contents()
        assert {"/register", "/record"} <= {path.strip() for path in operations}
        assert [text for text in console if "Content Security Policy" in text] == []
    finally:
        page.close()


def upload(page: Page, path: Path) -> None:
    page.set_input_files("#file", str(path))
    page.click("#upload-button")
    assert wait_for(lambda: (page.text_content("#progress-text") or "").startswith("Done"), timeout_s=30)
    page.evaluate("document.querySelector('#progress-text').textContent = ''")


def listed_names(page: Page) -> list[str]:
    return page.locator("#recordings .recording-name").all_text_contents()


def test_my_recordings_list_play_delete_and_the_link_dies(page: Page, stack: Stack, tmp_path: Path) -> None:
    register(page, "Collector")
    for name in ("one", "two", "three"):
        wav = tmp_path / f"{name}.wav"
        wav.write_bytes(Wav(duration_s=1, sample_rate=22_050).to_bytes())
        upload(page, wav)
    assert wait_for(lambda: listed_names(page) == ["three.wav", "two.wav", "one.wav"])
    facts = page.locator("#recordings .recording-facts").first.text_content() or ""
    assert facts.startswith("0:01 · ")

    # Play the newest: it plays through the gateway, from its link.
    page.evaluate("document.querySelector('#recordings audio').play()")
    assert wait_for(lambda: page.evaluate("document.querySelector('#recordings audio').currentTime > 0.2"))

    second = page.locator("#recordings .recording").nth(1)
    link = second.locator(".download").get_attribute("href") or ""
    assert link.startswith(f"{stack.base_url}/record?id=")
    assert httpx2.get(link).status_code == 200
    dialogs: list[str] = []

    def confirm(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    second.locator(".delete").click()
    assert wait_for(lambda: listed_names(page) == ["three.wav", "one.wav"])
    assert "two.wav" in dialogs[0]
    assert httpx2.get(link).status_code == 404

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-recordings.png"), full_page=True)

    # The tab remembers who you are across a reload, until you say otherwise.
    page.reload()
    assert wait_for(lambda: listed_names(page) == ["three.wav", "one.wav"])
    page.click("#forget-button")
    assert page.is_visible("#register-form")
    assert page.is_hidden("#recordings-step")
    assert page.evaluate("sessionStorage.length") == 0


def test_a_deletion_declined_deletes_nothing(page: Page, stack: Stack, engine: Engine, record_backend: Backend) -> None:
    user_id, token = create_user(engine, "Hesitant")
    seed_record(record_backend, user_id, b"mp3", "keep.wav")
    sign_in(page, token)
    assert wait_for(lambda: listed_names(page) == ["keep.wav"])
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("#recordings .delete").click()
    page.reload()
    assert wait_for(lambda: listed_names(page) == ["keep.wav"])


def sign_in(page: Page, token: str) -> None:
    page.fill("#sign-in-token", token)
    page.click("#sign-in-button")


def test_more_recordings_load_as_the_list_scrolls(page: Page, engine: Engine, record_backend: Backend) -> None:
    user_id, token = create_user(engine, "Prolific")
    for n in range(25):
        seed_record(record_backend, user_id, b"mp3", f"take {n:02}.wav")
    sign_in(page, token)
    assert wait_for(lambda: len(listed_names(page)) == 20)
    page.locator("#more-button").scroll_into_view_if_needed()
    assert wait_for(lambda: len(listed_names(page)) == 25)
    assert listed_names(page) == [f"take {n:02}.wav" for n in reversed(range(25))]
    assert page.is_hidden("#more-button")


def test_an_unknown_token_is_explained_in_words(page: Page) -> None:
    sign_in(page, "00000000-0000-4000-8000-000000000000")
    page.wait_for_selector("#error:not([hidden])")
    assert "not one this service knows" in (page.text_content("#error") or "")
    assert page.is_hidden("#recordings-step")


def test_replace_my_token_shows_the_new_one_and_the_old_one_dies(page: Page, stack: Stack) -> None:
    register(page, "Leaky")
    old = page.text_content("#token") or ""
    dialogs: list[str] = []

    def confirm(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", confirm)
    page.click("#rotate-button")
    page.wait_for_selector("#rotated:not([hidden])")
    new = page.text_content("#token") or ""
    assert "stops working" in dialogs[0]
    assert len(new) == 36
    assert new != old
    assert page.evaluate("JSON.parse(sessionStorage.getItem('records.identity')).token") == new
    with httpx2.Client(base_url=stack.base_url, timeout=10) as client:
        assert client.get("/records", headers={"authorization": f"Bearer {old}"}).status_code == 401
        assert client.get("/records", headers={"authorization": f"Bearer {new}"}).status_code == 200
